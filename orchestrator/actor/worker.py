"""The Ray actor that trains trials: one per actor, reused trial after trial.

The driver sends a `TrialSpec` (orchestrator/boundary.py) and asks for chunks of training; the
actor keeps the trainer's state between chunks, logs metrics, sample plots and checkpoints itself,
and returns a small `ChunkResult`. No tensors travel back to the driver.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.actor.checkpoints import TrialCheckpoints
from orchestrator.actor.runlog import MetricRow, RunLogger, metric_rows, not_logged
from orchestrator.boundary import (
    ACTOR_PRELOAD,
    COMPLETE,
    DIVERGED,
    RUNNING,
    ChunkResult,
    TrialSpec,
)
from orchestrator.layout import (
    AT_BEST,
    AT_LAST,
    FINAL_CHECKPOINT,
    FINAL_SAMPLES,
    MAX_BATCH,
    PERF_CHUNK_S,
    PERF_EVAL_S,
    SAMPLES_KEY,
    SAMPLES_PNG,
    TAG_ATTEMPT,
    TAG_BEST_STEP,
    TAG_BEST_VALUE,
    TAG_DEVICE,
    TAG_DIVERGED_STEP,
    TAG_FINISH_ERROR,
    TAG_GPUS,
    TAG_NODE,
    TAG_PID,
    TAG_RAY_NODE,
    TAG_RESUMED_FROM,
    TAG_STARTED_AT,
    TRACEBACK,
)


@dataclass
class Best:
    """The trial's best evaluation so far: its step, objective value and generator (CPU)."""

    step: int
    value: float
    generator: Any
    metrics: tuple = ()  # its eval metrics (MetricRows), which its logged model carries


class TrialWorker:
    """One per actor; trains one trial at a time and is reused for the next."""

    def __init__(self, data: Any, tracking_uri: str, num_threads: int):
        import torch

        torch.set_num_threads(max(1, num_threads))
        self.data = data
        self.logger = RunLogger(tracking_uri)
        self.spec: TrialSpec | None = None
        self.run_id: str | None = None  # the current trial's MLflow run
        self.trainer = None
        self.device_name = "cpu"  # the torch device of the current trial
        self.start_error: str | None = None
        self.last_image: bytes | None = None
        self.checkpoints: TrialCheckpoints | None = None
        self.logged: dict[str, int] = {}  # on a resumed trial: the last step MLflow has per key
        self.best: Best | None = None
        self.last_eval: list[MetricRow] = []  # the latest eval's metrics, for the last model
        self._since = 0.0  # perf_counter() at the trial's start or its last chunk's metrics

    def ready(self) -> bool:
        """Answers once the actor is placed, constructed and has imported what its first chunk
        needs (ACTOR_PRELOAD: the trainers and torch, Pillow), so that its first trial starts
        training at once; MLflow is imported by the logging thread meanwhile."""
        import importlib

        for name in ACTOR_PRELOAD:
            importlib.import_module(name)
        return True

    def use_data(self, data: Any) -> None:
        """The data of the trials this actor starts from now on: a sweep's confirm phase
        evaluates on more samples than its search (orchestrator/cluster/pool.py `reuse`)."""
        self.data = data

    def placement(self) -> dict[str, str]:
        """Where this actor runs: the node, the GPU ids Ray assigned it (Ray sets
        CUDA_VISIBLE_DEVICES to them), and the torch device it trains on."""
        import ray

        context = ray.get_runtime_context()
        gpus = context.get_accelerator_ids().get("GPU", [])
        return {TAG_NODE: socket.gethostname(), TAG_GPUS: ",".join(map(str, gpus)),
                TAG_RAY_NODE: context.get_node_id(), TAG_PID: str(os.getpid()),
                TAG_DEVICE: self.device(gpus)}

    @staticmethod
    def device(gpu_ids: list) -> str:
        """CUDA only on GPUs Ray assigned to this actor; cuda:0 is the first of them, since Ray
        set CUDA_VISIBLE_DEVICES. An actor given no GPU trains on CPU even on a GPU machine."""
        import torch

        return "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"

    def start(self, spec: TrialSpec) -> None:
        """Build the trial's trainer, from its last checkpoint when there is one; a failure is
        reported by the next `train` call."""
        from trainers import build_trainer
        from trainers.rng import seed_everything, set_process_rng_state

        self.spec, self.trainer, self.start_error, self.last_image = spec, None, None, None
        self.best, self.last_eval = None, []
        self.logged, self.run_id = {}, spec.run_id
        try:
            self.checkpoints = TrialCheckpoints(spec.checkpoint_root, spec.sweep, spec.number,
                                                spec.keep_checkpoints)
            tags = {**self.placement(), TAG_ATTEMPT: str(spec.attempt)}
            seed_everything(spec.seed)  # for trainers that draw from the global RNGs
            self.device_name = tags[TAG_DEVICE]  # training and scoring both run there
            resuming = spec.attempt > 1 or spec.resume
            payload = self.checkpoints.load_latest(self.run_id) if resuming else None
            # params that change mid-run: built as the checkpoint was written, then changed
            built = payload["spec"]["params"] if payload is not None and spec.mutable \
                else spec.params
            trainer = build_trainer(spec.trainer, built, self.data, spec.seed, self.device_name)
            if payload is not None:
                trainer.load_state_dict(payload["trainer"])
                set_process_rng_state(payload["rng"])
                self.best = _best_from(payload.get("best"), trainer)
                tags[TAG_RESUMED_FROM] = str(trainer.step)
            elif not resuming:
                self.checkpoints.clear()  # files an earlier sweep of this name left behind
            self.trainer = trainer
            due = self._due()  # a replayed schedule's params at this step, else the spec's
            if built != due:
                self._reconfigure(due)
            if resuming:  # metrics continue after what the run already has
                from orchestrator.tracking.runs import logged_steps

                self.logged = logged_steps(self.logger.client, self.run_id)
                if payload is not None:
                    self._log(_rows(payload["unwritten"]))
            tags[TAG_STARTED_AT] = f"{time.time():.3f}"
            self.logger.log_start(self.run_id, spec.run_params, tags, wait=resuming)
            self._log_hparams()
            self._since = time.perf_counter()
        except Exception as exc:
            self.trainer = None
            self.start_error = f"{type(exc).__name__}: {exc}"
            self._log_traceback()

    def _reconfigure(self, params: dict[str, Any]) -> None:
        """Train with `params` from the next step on (population-based training: the trainer's
        `reconfigure`, trainers/base.py); the checkpoints record them."""
        from trainers.base import build_config

        trainer = self.trainer
        trainer.reconfigure(build_config(type(trainer), params))
        self.spec = dataclasses.replace(self.spec, params=dict(params))

    def _due(self) -> dict[str, Any]:
        """The params in force at the trainer's step: a replayed schedule's (a PBT member's,
        retrained by confirm), else the spec's."""
        due = [params for step, params in self.spec.schedule if step <= self.trainer.step]
        return due[-1] if due else self.spec.params

    def _follow_schedule(self) -> None:
        """A replayed schedule reaches a step where its params change."""
        due = self._due()
        if due != self.spec.params:
            self._reconfigure(due)
            self._log_hparams()

    def _log_hparams(self) -> None:
        """The mutable params at the current step, as hp/NAME metrics: a run's schedule."""
        spec, step = self.spec, self.trainer.step
        rows = [MetricRow(f"hp/{name}", float(spec.params[name]), int(time.time() * 1000), step)
                for name in spec.mutable if isinstance(spec.params.get(name), (int, float))]
        if rows:
            self._log(rows)

    def train(self, n_steps: int) -> ChunkResult:
        """Train up to `n_steps` more steps, evaluate, checkpoint and log; never raises.

        The checkpoint is written before the chunk's metrics are logged and carries the metrics
        not yet written, so an actor that dies anywhere in here loses no logged step and logs
        none twice when the trial resumes.
        """
        from trainers.base import as_evaluation
        from trainers.scoring import score

        spec, trainer = self.spec, self.trainer
        if trainer is None:
            return ChunkResult(spec.number, 0, {}, error=self.start_error)
        self.logger.retry_unwritten()
        try:
            if spec.schedule:
                self._follow_schedule()
                spec = self.spec
            n_steps = min(n_steps, spec.total_steps - trainer.step)
            rows: list[tuple[int, dict[str, float]]] = []
            while n_steps > 0:  # train metrics at a fixed cadence, written in one batch below
                k, before = min(spec.log_every, n_steps), trainer.step
                row = trainer.train_for(k)  # a trainer may stop short, e.g. when it diverges
                rows.append((trainer.step, row))
                n_steps -= k
                if not _finite(rows[-1][1]):
                    return self._diverged(rows)
                if trainer.step != before + k:  # else the trial would repeat this step forever
                    raise RuntimeError(f"train_for({k}) moved step from {before} to "
                                       f"{trainer.step}: it must train n steps unless it "
                                       f"diverges (a NaN train/ metric)")
            evaluated_at = time.perf_counter()
            scored = score(as_evaluation(trainer.evaluate()), self.data,  # + free GAN metrics
                           self.device_name)
            now = time.perf_counter()
            # where the time goes: this eval, and the whole chunk since the last one's metrics
            metrics = {**scored.metrics, PERF_EVAL_S: now - evaluated_at,
                       PERF_CHUNK_S: now - self._since}
            self._since = now
            rows.append((trainer.step, metrics))
            value = metrics.get(spec.objective)
            state = trainer.state_dict()
            if not _finite_tensors(state):
                return self._diverged(rows)
            batch = metric_rows(rows)
            self.last_eval = [m for m in batch if m.step == trainer.step and _evaluated(m.key)]
            self._note_best(value)  # before the checkpoint, which carries it
            self.checkpoints.save(self._payload(state, batch), trainer.step)
            self._log(batch)
            if scored.image is not None:
                self._log_samples(scored.image, value)
            return ChunkResult(spec.number, trainer.step, metrics, train=train_means(rows))
        except Exception as exc:  # the trial fails; the actor lives on for the next trial
            self._log_traceback()
            return ChunkResult(spec.number, trainer.step, {}, error=f"{type(exc).__name__}: {exc}")

    def finish(self, state: str, reason: str = "") -> None:
        """End the trial's run; a COMPLETE trial also leaves its checkpoint and generator.

        state RUNNING: the sweep stopped; the run shows KILLED and resumes later."""
        try:
            if self.spec is not None:
                self._close_run(state, reason)
        finally:
            self.spec = self.trainer = self.checkpoints = self.last_image = self.run_id = None
            self.best = None

    def _close_run(self, state: str, reason: str) -> None:
        run_id, trainer = self.run_id, self.trainer
        try:
            if self.last_image is not None and state != RUNNING:
                self.logger.log_bytes(run_id, self.last_image, FINAL_SAMPLES)
            if state == COMPLETE and trainer is not None:
                final = self.checkpoints.latest_bytes()
                if final is not None:
                    self.logger.log_bytes(run_id, final, FINAL_CHECKPOINT)
                generator, best = trainer.generator(), self.best
                models = [] if generator is None else [(AT_LAST, generator, self.last_eval)]
                if best is not None:  # promote and confirm choose: --at best|last
                    models.append((AT_BEST, best.generator, list(best.metrics)))
                    self.logger.set_tags(run_id, {TAG_BEST_STEP: str(best.step),
                                                  TAG_BEST_VALUE: repr(best.value)})
                if models:  # off this actor's path: it takes its next trial meanwhile
                    self.logger.log_models(run_id, models, trainer.z_dim)
        except Exception as exc:  # the result stands; say on the run what could not be saved
            self.logger.set_tags(run_id, {TAG_FINISH_ERROR: f"{type(exc).__name__}: {exc}"})
        finally:
            self.logger.retry_unwritten()
            self.logger.end_run(run_id, state, reason)

    def flush(self) -> None:
        self.logger.flush()

    # -- helpers -------------------------------------------------------------------------------
    def _diverged(self, rows: list[tuple[int, dict[str, float]]]) -> ChunkResult:
        """NaN or inf in a loss or a weight: log what happened up to here; the trial fails."""
        spec, step = self.spec, self.trainer.step
        self._log(metric_rows(rows))
        self.logger.set_tags(self.run_id, {TAG_DIVERGED_STEP: str(step)})
        return ChunkResult(spec.number, step, {}, error=DIVERGED)

    def _note_best(self, value: float | None) -> None:
        """Keep a copy of the generator when the objective is the best this trial has seen."""
        spec, best = self.spec, self.best
        if value is None or not math.isfinite(value):
            return
        if best is not None and not (value > best.value if spec.maximize else value < best.value):
            return
        try:
            generator = self.trainer.generator()
        except Exception:  # the trial trains on; its end says what could not be saved
            self._log_traceback()
            self.spec = dataclasses.replace(spec, objective="")  # stop trying
            return
        if generator is not None:
            self.best = Best(self.trainer.step, value, generator, tuple(self.last_eval))

    def _log_samples(self, png: bytes, value: float | None) -> None:
        """The eval's picture, titled with trial, step and objective: on the run's image slider
        and as the run's top-level samples.png (the compare page shows top-level images).
        MLflow's slider opens on step 0, so the trial's first picture is shown there too."""
        from trainers.grids import titled_png

        spec, step = self.spec, self.trainer.step
        title = f"trial {spec.number} · step {step}"
        if value is not None:
            title += f" · {spec.objective}={value:.4g}"
        with contextlib.suppress(Exception):  # one Pillow cannot read: shown as it was made
            png = titled_png(png, title)
        if spec.attempt == 1 and not spec.resume and self.last_image is None:
            self.logger.log_image(self.run_id, png, key=SAMPLES_KEY, step=0)
        self.logger.log_image(self.run_id, png, key=SAMPLES_KEY, step=step)
        self.logger.log_bytes(self.run_id, png, SAMPLES_PNG)
        self.last_image = png

    def _log(self, rows: list[MetricRow]) -> None:
        """Log, skipping (key, step) pairs a resumed run already has: steps never repeat."""
        fresh = not_logged(rows, self.logged)
        if fresh:
            self.logger.log_metrics(self.run_id, fresh)

    def _log_traceback(self) -> None:
        self.logger.log_bytes(self.run_id, traceback.format_exc().encode(), TRACEBACK)

    def _payload(self, state: dict[str, Any], batch: list[MetricRow]) -> dict[str, Any]:
        """One self-describing checkpoint: trainer state (models, optimizers, EMA, its RNGs),
        the process RNGs, the trial's spec, run id and attempt, and metrics not yet written."""
        from trainers.rng import process_rng_state

        spec = self.spec
        unwritten = self.logger.unwritten(self.run_id) + batch
        best = self.best
        kept = None if best is None else {"step": best.step, "value": best.value,
                                          "state": best.generator.state_dict(),
                                          "metrics": [tuple(m) for m in best.metrics]}
        return {"trainer": state, "step": self.trainer.step, "spec": asdict(spec), "best": kept,
                "run_id": self.run_id, "attempt": spec.attempt, "rng": process_rng_state(),
                "unwritten": [tuple(m) for m in unwritten]}  # plain tuples: weights_only loads


def salvage_metrics(spec: TrialSpec, tracking_uri: str) -> str | None:
    """Write the metrics a dead actor had not written yet, from its trial's last checkpoint,
    into the trial's run; the driver has this run as a task where the actors run (it gives up
    on the trial). Returns why it could not, or None."""
    from mlflow import MlflowClient

    from orchestrator.actor.retry import with_retries
    from orchestrator.tracking.runs import logged_steps, metrics

    try:
        payload = TrialCheckpoints(spec.checkpoint_root, spec.sweep, spec.number,
                                   spec.keep_checkpoints).load_latest(spec.run_id)
        if payload is None:
            return None
        client = MlflowClient(tracking_uri)
        fresh = not_logged(_rows(payload["unwritten"]), logged_steps(client, spec.run_id))
        for i in range(0, len(fresh), MAX_BATCH):
            batch = metrics(fresh[i:i + MAX_BATCH])
            with_retries(lambda b=batch: client.log_batch(spec.run_id, metrics=b))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def copy_state(recipient: TrialSpec, donor: int, step: int) -> str | None:
    """Population-based training's exploit: the donor trial's checkpoint at `step` becomes the
    recipient's newest, written as the recipient's (its run id and spec; the donor's params,
    which its state was trained with; no best-step generator and no metrics of the donor's
    run), so that the recipient's actor resumes from it. Run as a task beside the driver, as
    `salvage_metrics`; returns why it could not, or None."""
    from orchestrator.actor.checkpoints import TrialCheckpoints

    try:
        source = TrialCheckpoints(recipient.checkpoint_root, recipient.sweep, donor,
                                  recipient.keep_checkpoints)
        payload = source.load(step)
        spec = dict(payload["spec"])
        spec.update(number=recipient.number, run_id=recipient.run_id)
        payload.update(spec=spec, run_id=recipient.run_id, best=None, unwritten=[],
                       attempt=recipient.attempt, donor=donor)
        mine = TrialCheckpoints(recipient.checkpoint_root, recipient.sweep, recipient.number,
                                recipient.keep_checkpoints)
        mine.save(payload, step)
        mine.drop_after(step)  # its own, a chunk past the round: not what it resumes from
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _best_from(kept: dict | None, trainer) -> Best | None:
    """The best-step generator a checkpoint kept, loaded into a copy of the trainer's."""
    generator = trainer.generator() if kept is not None else None
    if generator is None:
        return None
    generator.load_state_dict(kept["state"])
    return Best(int(kept["step"]), float(kept["value"]), generator,
                tuple(_rows(kept.get("metrics") or [])))


def _evaluated(key: str) -> bool:
    """An evaluation's metric (eval/...), which a logged generator carries: not its timing."""
    return key.startswith("eval/")


def _finite(row: dict[str, float]) -> bool:
    return all(math.isfinite(v) for k, v in row.items() if k.startswith("train/"))


def _finite_tensors(tree: Any) -> bool:
    """Every floating tensor in a (nested) state dict is free of NaN and inf."""
    import torch

    if isinstance(tree, torch.Tensor):
        return not tree.is_floating_point() or bool(torch.isfinite(tree).all())
    if isinstance(tree, dict):
        return all(_finite_tensors(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return all(_finite_tensors(v) for v in tree)
    return True


def _rows(found: list[tuple]) -> list[MetricRow]:
    """A checkpoint's unwritten metrics, as rows."""
    return [MetricRow(key, float(value), int(ts), int(step)) for key, value, ts, step in found]


def train_means(rows: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """The chunk's train/ metrics, each the mean over its log rows: what the driver's health
    rules read (a discriminator that wins, a generator loss that climbs)."""
    sums: dict[str, list[float]] = {}
    for _, row in rows:
        for key, value in row.items():
            if key.startswith("train/"):
                sums.setdefault(key, []).append(value)
    return {key: sum(values) / len(values) for key, values in sums.items()}
