"""What a gansweep trial costs a trainer: steps/s in a bare loop against the same config inside a
real gansweep trial (its actor, chunking, checkpoints, MLflow logging, the driver's round trips),
evaluations excluded, side by side in one run.

Bare: one thread, `trainer.train_for(steps)` in one call on the same config and seed. Trial: a
one-trial sweep on one actor with one CPU (so torch uses one thread too), MLflow and Optuna on
sqlite; its actor logs `perf/chunk_s` (its seconds per chunk, round trips, checkpoint and logging
included) and `perf/eval_s` (evaluation and scoring), so steps/s = steps / (sum of chunk_s - sum
of eval_s). The arms alternate, `--repeats` times each; ratio = median trial / median bare.
`outside_train_for` is the share of the trial's training time (evals excluded) spent outside
the trainer's own `train_for` calls, read from its `perf/steps_per_s` rows: gansweep's cost, apart
from how fast the machine happened to be during each arm.

    .venv/bin/python benchmarks/trainer_overhead.py [--repeats 3] [--only mlp_gan] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

CASES = {
    # the ring8 baseline (3x128 MLPs, batch 256, 2 D steps a G step)
    "mlp_gan": {"dataset": "ring8", "objective": "eval/score", "direction": "maximize",
                "fixed": {}, "steps": 2000, "eval_every": 500, "log_every": 50},
    # the digits16 baseline (DCGAN, base width 64, 2 blocks, batch 64), 16 px
    "dcgan": {"dataset": "digits16", "objective": "eval/fd", "direction": "minimize",
              "fixed": {}, "steps": 300, "eval_every": 100, "log_every": 20},
}
SEED = 0


def bare(name: str, case: dict) -> float:
    """Steps/s of train_for(steps) on one thread, the trainer built as a trial builds it."""
    import torch

    from orchestrator.driver.data import prepare_dataset
    from orchestrator.stores.settings import default_cache_dir
    from trainers import build_trainer
    from trainers.rng import seed_everything

    torch.set_num_threads(1)
    data = prepare_dataset(case["dataset"], name, default_cache_dir()).payload
    seed_everything(SEED)
    trainer = build_trainer(name, dict(case["fixed"]), data, SEED)
    start = time.perf_counter()
    trainer.train_for(case["steps"])
    return case["steps"] / (time.perf_counter() - start)


def in_trial(name: str, case: dict, workdir: Path) -> dict:
    """Steps/s inside a one-trial sweep, evaluations excluded, from the trial's perf metrics."""
    from mlflow import MlflowClient

    from orchestrator.driver.launch import launch
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.stores.settings import Settings

    spec = {"name": f"overhead-{name}", "dataset": case["dataset"], "trainer": name,
            "objective": {"metric": case["objective"], "direction": case["direction"]},
            "budget": {"trials": 1, "steps": case["steps"], "eval_every": case["eval_every"],
                       "log_every": case["log_every"]},
            "sampler": {"name": "random", "seed": SEED},
            "resources": {"gpus_per_trial": 0, "cpus_per_trial": 1, "actors": 1},
            "fixed": dict(case["fixed"]),
            "space": {"beta1": {"type": "categorical", "choices": [0.5]}}}  # one config
    settings = Settings.resolve(f"sqlite:///{workdir}/optuna.db",
                                f"sqlite:///{workdir}/mlflow.db",
                                checkpoint_root=str(workdir / "checkpoints"))
    launch(SweepSpec.parse(yaml.safe_dump(spec)), settings, notice=lambda m: None)
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(spec["name"]).experiment_id
    run = client.search_runs([experiment], "tags.`gansweep.role` = 'trial'")[0].info.run_id
    chunk = sum(m.value for m in client.get_metric_history(run, "perf/chunk_s"))
    evals = sum(m.value for m in client.get_metric_history(run, "perf/eval_s"))
    rows = client.get_metric_history(run, "perf/steps_per_s")  # one per log_every steps
    in_train_for = sum(case["log_every"] / m.value for m in rows)
    return {"steps_per_s": case["steps"] / (chunk - evals), "chunk_s": chunk, "eval_s": evals,
            "outside_train_for": 1 - in_train_for / (chunk - evals)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=sorted(CASES), default=None)
    parser.add_argument("--steps", type=int, default=None,
                        help="train this many steps in one chunk instead (a quick run)")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    results = []
    for name, case in CASES.items():
        if args.only and name != args.only:
            continue
        if args.steps:
            case = {**case, "steps": args.steps, "eval_every": args.steps,
                    "log_every": args.steps}
        bare_runs, trial_runs = [], []
        for _ in range(args.repeats):  # alternated: both arms see the same machine
            bare_runs.append(bare(name, case))
            with tempfile.TemporaryDirectory() as tmp:
                trial_runs.append(in_trial(name, case, Path(tmp)))
        bare_s = statistics.median(bare_runs)
        trial_s = statistics.median(r["steps_per_s"] for r in trial_runs)
        results.append({"trainer": name, "dataset": case["dataset"], "steps": case["steps"],
                        "eval_every": case["eval_every"], "log_every": case["log_every"],
                        "bare_steps_per_s": [round(v, 2) for v in bare_runs],
                        "trial_steps_per_s": [round(r["steps_per_s"], 2) for r in trial_runs],
                        "trial_eval_s": [round(r["eval_s"], 2) for r in trial_runs],
                        "outside_train_for": [round(r["outside_train_for"], 4)
                                              for r in trial_runs],
                        "ratio": round(trial_s / bare_s, 3)})
    ray.shutdown()
    print(json.dumps(results, indent=2))
    print(f"{'trainer':>8} {'bare steps/s':>13} {'trial steps/s':>14} {'ratio':>6} "
          f"{'outside train_for':>18}", file=sys.stderr)
    for r in results:
        print(f"{r['trainer']:>8} {statistics.median(r['bare_steps_per_s']):>13.1f} "
              f"{statistics.median(r['trial_steps_per_s']):>14.1f} {r['ratio']:>6} "
              f"{statistics.median(r['outside_train_for']):>18.2%}", file=sys.stderr)


if __name__ == "__main__":
    main()
