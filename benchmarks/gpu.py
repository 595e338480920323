"""DCGAN on one GPU: images/s and peak memory per precision and memory format, trainer processes
sharing the GPU, and the trainer's checks (finite losses, bitwise resume, evaluation) on CUDA.

Needs torch and this repo's `trainers/` only (with the numpy, Pillow and pyarrow it imports): no
Ray, Optuna, MLflow or click, so it runs on a bare GPU box. Data: random uint8 images, 3
channels, 1,024 of them per size (the trainer maps them to [-1, 1]), made in memory. Model: the
default DCGANConfig (base width 64, batch 64, ns loss, spectral-norm D, EMA of G) with n_blocks =
log2(size) - 2, so the smallest map is 4x4 as in DCGAN.

- Matrix: each size x fp32 / bf16 autocast x channels_last off / on, one trainer in this process:
  `train_for(warmup)`, then a timed `train_for(steps)` between `torch.cuda.synchronize()` calls.
  images/s = batch_size * G steps / s (training-batch images; each G step also runs d_steps D
  steps on batch_size real and batch_size fake images). Peak = `torch.cuda.max_memory_allocated`
  over building and training, reset per row. DCGANConfig has no precision or memory-format
  option: on CUDA the stock trainer always runs bf16 autocast with channels_last, on CPU fp32
  contiguous. The rows that differ come from a subclass here that sets the trainer's `_amp` and
  `_memory_format` before its models are built (`stock` marks the row a trial runs). "fp32"
  convolutions on CUDA use TF32 when `torch.backends.cudnn.allow_tf32` is on (torch's default).
- Sharing: 1, 2, 4 ... processes (spawned; what `gpus_per_trial: 0.5 / 0.25` packs on one GPU,
  without MPS: the GPU time-slices between their CUDA contexts), each the stock trainer with its
  own seed; after warming up they start together at a barrier. Total images/s = all images / (last
  end - first start); speedup = total / the 1-process total.
- Augmentation: the stock trainer's images/s with each DiffAugment policy (none, translation +
  cutout, colour + translation + cutout), timed as the matrix is.
- Metrics: seconds for FD and for the sample metrics (KID, precision/recall, density/coverage,
  trainers/image_metrics.py) of 10,000 fake against 10,000 real 64-d features on the device.
- Checks, per size, last (on CUDA in a spawned process with CUBLAS_WORKSPACE_CONFIG=:4096:8,
  which deterministic cuBLAS needs): losses finite; state_dict() -> torch.save / torch.load
  (weights_only) -> a fresh trainer's load_state_dict() gives back the same tensors bitwise, and
  both trainers then train k more steps: metrics, eval samples and state compared exactly, once
  with torch's default algorithms and once under torch.use_deterministic_algorithms (CUDA's
  default convolution algorithms need not be deterministic; on CPU both must match); evaluate()
  on the device gives finite samples, scored by trainers.scoring.score with an untrained feature
  net (its FD means nothing: scoring only has to run).

    PYTHONPATH=. python benchmarks/gpu.py [--sizes 32,64] [--procs 1,2,4] [--steps 200]
    .venv/bin/python benchmarks/gpu.py --device cpu --quick   # a smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import multiprocessing as mp
import os
import platform
import queue as queue_module
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from trainers.dcgan import DCGANTrainer  # noqa: E402
from trainers.feature_net import feature_net_state, fit_feature_net  # noqa: E402
from trainers.frechet import frechet_distance, gaussian_stats  # noqa: E402
from trainers.image_data import ImageDataset  # noqa: E402
from trainers.image_metrics import sample_metrics  # noqa: E402
from trainers.image_task import ImageTask  # noqa: E402
from trainers.params import describe  # noqa: E402
from trainers.scoring import score  # noqa: E402

CHANNELS = 3
N_TRAIN, N_TEST = 1024, 256
SEED = 0
FULL = {"sizes": "32,64", "procs": "1,2,4", "steps": 200, "warmup": 20, "batch_size": 64,
        "base_width": 64, "check_steps": 5, "n_eval": 256, "threads": None,
        "metric_samples": 10_000}
QUICK = {"sizes": "32", "procs": "1,2", "steps": 3, "warmup": 1, "batch_size": 16,
         "base_width": 8, "check_steps": 2, "n_eval": 32, "threads": 1, "metric_samples": 500}
AUGMENT_POLICIES = ("none", "translation_cutout", "color_translation_cutout")
FEATURE_DIM = 64  # the digits classifier's feature size
BARRIER_S = 600  # how long a sharing worker waits for the others to be ready
WORKER_S = 1800  # how long the parent waits for a spawned process's result


# -- data and trainers ---------------------------------------------------------------------------
def synthetic_task(size: int, n_eval: int, feature_state: dict | None = None) -> ImageTask:
    """Random uint8 images (N, 3, size, size) as an ImageTask, made in memory."""
    rng = np.random.default_rng(SEED)
    train = rng.integers(0, 256, (N_TRAIN, CHANNELS, size, size), dtype=np.uint8)
    test = rng.integers(0, 256, (N_TEST, CHANNELS, size, size), dtype=np.uint8)
    dataset = ImageDataset(f"random{size}", train, None, test, None, 0)
    return ImageTask(dataset, feature_state or {}, n_eval=n_eval)


def dcgan_config(size: int, opts: dict) -> dict:
    return {"n_blocks": int(math.log2(size)) - 2, "base_width": opts["base_width"],
            "batch_size": opts["batch_size"]}


class VariantDCGAN(DCGANTrainer):
    """The stock DCGAN trainer with bf16 autocast and channels_last chosen here instead of by the
    device (it reads `_amp` and `_memory_format`, set in AdversarialTrainer.__init__, when it
    builds its models and at every step)."""

    def __init__(self, config, data, seed: int, device: str, bf16: bool, channels_last: bool):
        self._variant = (bf16, channels_last)
        super().__init__(config, data, seed, device)

    def _build(self, make_models, n_eval: int, fused: bool = False) -> None:
        bf16, channels_last = self._variant
        self._amp = bool(bf16)
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        super()._build(make_models, n_eval, fused)


def stock_variant(device: str) -> tuple[str, bool]:
    """(precision, channels_last) of the unmodified trainer on `device`."""
    return ("bf16", True) if torch.device(device).type == "cuda" else ("fp32", False)


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def peak_mib(device: str) -> float | None:
    if torch.device(device).type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def losses(metrics: dict) -> dict:
    return {k.removeprefix("train/"): v for k, v in metrics.items() if k.startswith("train/")}


def finite(metrics: dict) -> bool:
    return all(math.isfinite(v) for v in losses(metrics).values())


# -- matrix ----------------------------------------------------------------------------------------
def matrix_row(size: int, bf16: bool, channels_last: bool, opts: dict) -> dict:
    device = opts["device"]
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    task = synthetic_task(size, opts["n_eval"])
    trainer = VariantDCGAN(dcgan_config(size, opts), task, SEED, device, bf16, channels_last)
    trainer.train_for(opts["warmup"])
    sync(device)
    start = time.perf_counter()
    metrics = trainer.train_for(opts["steps"])
    sync(device)
    seconds = time.perf_counter() - start
    precision = "bf16" if bf16 else "fp32"
    row = {"size": size, "precision": precision, "channels_last": channels_last,
           "stock": (precision, channels_last) == stock_variant(device),
           "batch_size": opts["batch_size"], "steps": opts["steps"], "seconds": round(seconds, 4),
           "steps_per_s": round(opts["steps"] / seconds, 2),
           "images_per_s": round(opts["batch_size"] * opts["steps"] / seconds, 1),
           "peak_mib": peak_mib(device), "losses": losses(metrics), "finite": finite(metrics)}
    del trainer
    return row


# -- augmentation and metrics ----------------------------------------------------------------------
def augment_row(size: int, policy: str, opts: dict) -> dict:
    """images/s of the stock trainer on `device` with a DiffAugment policy."""
    device = opts["device"]
    task = synthetic_task(size, opts["n_eval"])
    trainer = DCGANTrainer({**dcgan_config(size, opts), "augment": policy}, task, SEED, device)
    trainer.train_for(opts["warmup"])
    sync(device)
    start = time.perf_counter()
    metrics = trainer.train_for(opts["steps"])
    sync(device)
    seconds = time.perf_counter() - start
    return {"size": size, "augment": policy, "steps": opts["steps"],
            "images_per_s": round(opts["batch_size"] * opts["steps"] / seconds, 1),
            "finite": finite(metrics)}


def metric_row(opts: dict) -> dict:
    """Seconds for FD and for the sample metrics (KID, precision/recall, density/coverage) of
    `metric_samples` fake against as many real features (64-d, as the digits classifier's)."""
    device, n = opts["device"], opts["metric_samples"]
    generator = torch.Generator().manual_seed(SEED)
    real = torch.randn(n, FEATURE_DIM, generator=generator, dtype=torch.float64).to(device)
    fake = (torch.randn(n, FEATURE_DIM, generator=generator, dtype=torch.float64) * 1.1).to(device)
    start = time.perf_counter()
    fd = frechet_distance(*gaussian_stats(real.cpu().numpy()), *gaussian_stats(fake.cpu().numpy()))
    fd_s = time.perf_counter() - start
    sync(device)
    start = time.perf_counter()
    values = sample_metrics(real, fake)
    sync(device)
    return {"samples": n, "feature_dim": FEATURE_DIM, "fd_s": round(fd_s, 4),
            "sample_metrics_s": round(time.perf_counter() - start, 4), "fd": round(fd, 4),
            **{k.removeprefix("eval/"): round(v, 4) for k, v in values.items()}}


# -- sharing ---------------------------------------------------------------------------------------
def share_worker(rank: int, procs: int, size: int, opts: dict, barrier, queue) -> None:
    """One trial-like process: the stock trainer, warmed up, then timed once all are ready."""
    try:
        device = opts["device"]
        torch.set_num_threads(opts["threads"] or max(1, (os.cpu_count() or 1) // procs))
        trainer = DCGANTrainer(dcgan_config(size, opts), synthetic_task(size, opts["n_eval"]),
                               SEED + rank, device)
        trainer.train_for(opts["warmup"])
        sync(device)
        barrier.wait(BARRIER_S)
        start = time.time()  # wall clock: compared across processes
        metrics = trainer.train_for(opts["steps"])
        sync(device)
        queue.put({"rank": rank, "start": start, "end": time.time(), "finite": finite(metrics),
                   "peak_mib": peak_mib(device)})
    except BaseException as exc:  # the parent reports it; the others stop waiting
        barrier.abort()
        queue.put({"rank": rank, "error": describe(exc)})


def collect(processes: list, queue, what: str) -> list[dict]:
    """One result from each started process; a process that dies without one (killed for memory,
    a crash in CUDA) is reported instead of waited for, and the others are then killed."""
    results, deadline = [], time.monotonic() + WORKER_S
    try:
        while len(results) < len(processes):
            try:
                results.append(queue.get(timeout=2))
            except queue_module.Empty:
                dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"{what}: a process died with exit code {dead[0]}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{what}: no result after {WORKER_S} s") from None
    finally:
        for p in processes:
            if len(results) < len(processes) and p.is_alive():
                p.kill()
            p.join()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"{what}: {errors[0]}")
    return results


def sharing_row(size: int, procs: int, opts: dict) -> dict:
    ctx = mp.get_context("spawn")  # a fresh interpreter and CUDA context each, as Ray's actors
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=share_worker, args=(rank, procs, size, opts, barrier, queue))
               for rank in range(procs)]
    for w in workers:
        w.start()
    results = sorted(collect(workers, queue, f"sharing, {procs} processes at {size} px"),
                     key=lambda r: r["rank"])
    images = opts["batch_size"] * opts["steps"]
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    precision, channels_last = stock_variant(opts["device"])
    return {"size": size, "procs": procs, "precision": precision, "channels_last": channels_last,
            "batch_size": opts["batch_size"], "steps": opts["steps"],
            "seconds": round(span, 4), "total_images_per_s": round(procs * images / span, 1),
            "per_proc_images_per_s": [round(images / (r["end"] - r["start"]), 1)
                                      for r in results],
            "peak_mib_per_proc": [r["peak_mib"] for r in results],
            "finite": all(r["finite"] for r in results)}


# -- checks ----------------------------------------------------------------------------------------
def same(a, b) -> bool:
    """Bitwise equality of nested state: dicts, lists, tuples, tensors (any device), values."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a.detach().cpu(), b.detach().cpu()))
    return a == b


def round_trip(size: int, opts: dict, task: ImageTask) -> dict:
    """Train, checkpoint through bytes, restore into a fresh trainer, train both k steps more."""
    device, k = opts["device"], opts["check_steps"]
    config = dcgan_config(size, opts)
    a = DCGANTrainer(config, task, SEED, device)
    before = a.train_for(k)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    b = DCGANTrainer(config, task, SEED, device)
    b.load_state_dict(state)
    restored = same(b.state_dict(), state)
    after_a, after_b = a.train_for(k), b.train_for(k)
    samples_a, samples_b = a.evaluate().samples, b.evaluate().samples
    return {"state_restored": restored, "metrics_equal": losses(after_a) == losses(after_b),
            "samples_equal": torch.equal(samples_a, samples_b),
            "state_equal": same(a.state_dict(), b.state_dict()),
            "samples_max_abs_diff": float((samples_a - samples_b).abs().max()),
            "finite": finite(before) and finite(after_a) and finite(after_b)}


def checked_evaluation(size: int, opts: dict, task: ImageTask) -> dict:
    trainer = DCGANTrainer(dcgan_config(size, opts), task, SEED, opts["device"])
    trainer.train_for(opts["check_steps"])
    evaluation = trainer.evaluate()
    samples = evaluation.samples
    scored = score(evaluation, task, opts["device"])  # the evaluator on the trial's device
    return {"samples_shape": list(samples.shape),
            "scored_on": str(task.evaluator(opts["device"]).device),
            "generated_on": str(next(trainer.g.parameters()).device),
            "samples_finite": bool(torch.isfinite(samples).all()),
            "in_range": bool(samples.abs().max() <= 1), "scored": scored.metrics,
            "scored_finite": all(math.isfinite(v) for v in scored.metrics.values()),
            "grid_png_bytes": len(scored.image or b"")}


def all_checks(sizes: list[int], opts: dict) -> list[dict]:
    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    out = []
    for size in sizes:
        plain = synthetic_task(size, opts["n_eval"])
        default = round_trip(size, opts, plain)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            deterministic = round_trip(size, opts, plain)
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        deterministic["nondeterministic_ops"] = sorted(
            {str(w.message).splitlines()[0][:160] for w in caught
             if "deterministic" in str(w.message)})
        # an untrained feature net (max_steps=0): scoring runs, its FD means nothing
        net = fit_feature_net(plain.dataset.train, None, 0, seed=SEED, max_steps=0)
        scored_task = synthetic_task(size, opts["n_eval"], feature_net_state(net))
        evaluation = checked_evaluation(size, opts, scored_task)
        out.append({"size": size, "round_trip_default": default,
                    "round_trip_deterministic": deterministic, "evaluation": evaluation})
    return out


def check_worker(sizes: list[int], opts: dict, queue) -> None:
    try:
        queue.put({"checks": all_checks(sizes, opts)})
    except BaseException as exc:
        queue.put({"error": describe(exc)})


def bitwise(trip: dict) -> bool:
    return all(trip[k] for k in ("state_restored", "metrics_equal", "samples_equal",
                                 "state_equal"))


def run_checks(sizes: list[int], opts: dict) -> list[dict]:
    """The checks, last: on CUDA in a spawned process whose cuBLAS is deterministic (it reads
    CUBLAS_WORKSPACE_CONFIG when it starts), on CPU in this one."""
    if torch.device(opts["device"]).type != "cuda":
        result = {"checks": all_checks(sizes, opts)}
    else:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        old = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"  # inherited by the child alone
        try:
            worker = ctx.Process(target=check_worker, args=(sizes, opts, queue))
            worker.start()
        finally:
            if old is None:
                os.environ.pop("CUBLAS_WORKSPACE_CONFIG")
            else:
                os.environ["CUBLAS_WORKSPACE_CONFIG"] = old
        [result] = collect([worker], queue, "checks")
    for check in result["checks"]:
        check["bitwise_default"] = bitwise(check["round_trip_default"])
        check["bitwise_deterministic"] = bitwise(check["round_trip_deterministic"])
        check["passed"] = bool(
            check["bitwise_deterministic"] and check["round_trip_default"]["finite"]
            and check["evaluation"]["samples_finite"] and check["evaluation"]["scored_finite"])
    return result["checks"]


# -- main ------------------------------------------------------------------------------------------
def environment(device: str) -> dict:
    env = {"device": device, "torch": torch.__version__, "cpu_count": os.cpu_count(),
           "python": platform.python_version()}
    if torch.device(device).type == "cuda":
        env.update(device_name=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(),
                   bf16_supported=torch.cuda.is_bf16_supported(),
                   cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                   matmul_precision=torch.get_float32_matmul_precision())
    else:
        env["device_name"] = platform.processor() or platform.machine()
    return env


def options(args: argparse.Namespace) -> dict:
    base = QUICK if args.quick else FULL
    opts = {key: getattr(args, key) if getattr(args, key) is not None else default
            for key, default in base.items()}
    opts["sizes"] = [int(s) for s in str(opts["sizes"]).split(",")]
    opts["procs"] = [int(p) for p in str(opts["procs"]).split(",")]
    opts["device"] = args.device
    return opts


def print_tables(result: dict) -> None:
    err = sys.stderr
    print(f"{result['environment']['device_name']}, torch {result['environment']['torch']}",
          file=err)
    base = {r["size"]: r["images_per_s"] for r in result["matrix"]
            if r["precision"] == "fp32" and not r["channels_last"]}
    print(f"{'size':>4} {'precision':>9} {'ch_last':>7} {'images/s':>10} {'vs fp32':>7} "
          f"{'peak MiB':>9} {'finite':>6}", file=err)
    for r in result["matrix"]:
        peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.1f}"
        ratio = r["images_per_s"] / base[r["size"]] if base.get(r["size"]) else math.nan
        mark = "*" if r["stock"] else " "
        print(f"{r['size']:>4} {r['precision']:>9} {('on' if r['channels_last'] else 'off'):>7} "
              f"{r['images_per_s']:>10.1f} {ratio:>7.2f} {peak:>9} {str(r['finite']):>6}{mark}",
              file=err)
    print("(* the stock trainer on this device)", file=err)
    print(f"{'size':>4} {'procs':>5} {'total images/s':>14} {'per process':>20} {'speedup':>7}",
          file=err)
    for r in result["sharing"]:
        per = "/".join(f"{v:.0f}" for v in r["per_proc_images_per_s"])
        speedup = "-" if r["speedup_vs_1"] is None else f"{r['speedup_vs_1']:.2f}"
        print(f"{r['size']:>4} {r['procs']:>5} {r['total_images_per_s']:>14.1f} {per:>20} "
              f"{speedup:>7}", file=err)
    print(f"{'size':>4} {'augment':>24} {'images/s':>10} {'vs none':>7}", file=err)
    for r in result["augment"]:
        none = next(a["images_per_s"] for a in result["augment"]
                    if a["size"] == r["size"] and a["augment"] == "none")
        print(f"{r['size']:>4} {r['augment']:>24} {r['images_per_s']:>10.1f} "
              f"{r['images_per_s'] / none:>7.2f}", file=err)
    m = result["metrics"]
    print(f"metrics of {m['samples']} x {m['feature_dim']}-d features: FD {m['fd_s']:.3f} s, "
          f"KID + precision/recall + density/coverage {m['sample_metrics_s']:.3f} s", file=err)
    print(f"{'size':>4} {'resume bitwise (default/determ.)':>33} {'eval finite':>11} "
          f"{'scored':>7} {'passed':>6}", file=err)
    for c in result["checks"]:
        both = f"{c['bitwise_default']}/{c['bitwise_deterministic']}"
        print(f"{c['size']:>4} {both:>33} {str(c['evaluation']['samples_finite']):>11} "
              f"{str(c['evaluation']['scored_finite']):>7} {str(c['passed']):>6}", file=err)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    parser.add_argument("--sizes", default=None, help="image sizes, e.g. 32,64 (default)")
    parser.add_argument("--procs", default=None, help="processes sharing the device: 1,2,4")
    parser.add_argument("--steps", type=int, default=None, help="timed G steps (200)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed G steps first (20)")
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    parser.add_argument("--base-width", dest="base_width", type=int, default=None)
    parser.add_argument("--check-steps", dest="check_steps", type=int, default=None,
                        help="steps before and after the checkpoint round trip (5)")
    parser.add_argument("--n-eval", dest="n_eval", type=int, default=None,
                        help="images evaluate() returns (256)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads per process (default: torch's own in this "
                             "process, CPUs / processes when sharing)")
    parser.add_argument("--metric-samples", dest="metric_samples", type=int, default=None,
                        help="fake and real features the metrics are timed on (10000)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny: 3 steps, 32 px, 1 and 2 processes, base width 8, batch 16, "
                             "1 thread")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the JSON here")
    args = parser.parse_args()
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        print(f"gpu.py: --device {args.device} but CUDA is not available to torch "
              f"{torch.__version__} (use --device cpu for a smoke run)", file=sys.stderr)
        sys.exit(2)
    opts = options(args)
    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    matrix = [matrix_row(size, bf16, channels_last, opts)
              for size in opts["sizes"] for bf16 in (False, True)
              for channels_last in (False, True)]
    gc.collect()
    if torch.device(args.device).type == "cuda":
        torch.cuda.empty_cache()  # this process keeps no cached blocks while the others run
    sharing = [sharing_row(size, procs, opts) for size in opts["sizes"] for procs in opts["procs"]]
    for r in sharing:
        one = next((s for s in sharing if s["size"] == r["size"] and s["procs"] == 1), None)
        r["speedup_vs_1"] = (round(r["total_images_per_s"] / one["total_images_per_s"], 3)
                             if one else None)
    augments = [augment_row(size, policy, opts) for size in opts["sizes"]
                for policy in AUGMENT_POLICIES]
    metrics = metric_row(opts)
    checks = run_checks(opts["sizes"], opts)
    result = {"environment": environment(args.device),
              "config": {**{k: v for k, v in opts.items() if k != "device"},
                         "channels": CHANNELS, "n_train": N_TRAIN,
                         "n_blocks": {s: int(math.log2(s)) - 2 for s in opts["sizes"]}},
              "matrix": matrix, "sharing": sharing, "augment": augments, "metrics": metrics,
              "checks": checks}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_path:
        Path(args.json_path).write_text(text + "\n")
    print_tables(result)


if __name__ == "__main__":
    main()
