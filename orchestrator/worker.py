"""The Ray actor that trains trials, and the plain dataclasses that cross the Ray boundary.

The driver sends a `TrialSpec` (never an Optuna trial) and asks for chunks of training; the actor
keeps the trainer's state between chunks, logs metrics, sample plots and checkpoints itself, and
returns a small `ChunkResult`. No tensors travel back to the driver.
"""

from __future__ import annotations

import socket
import traceback
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.checkpoints import TrialCheckpoints
from orchestrator.tracking import TAG_FINISH_ERROR, TAG_GPUS, TAG_NODE, RunLogger


@dataclass(frozen=True)
class TrialSpec:
    sweep: str
    number: int
    trainer: str
    params: dict[str, Any]
    seed: int
    run_id: str
    checkpoint_root: str
    total_steps: int
    eval_every: int
    log_every: int


@dataclass(frozen=True)
class ChunkResult:
    number: int
    step: int
    metrics: dict[str, float]
    error: str | None = None


class TrialWorker:
    """One per actor; trains one trial at a time and is reused for the next."""

    def __init__(self, data: Any, tracking_uri: str, num_threads: int):
        import torch

        torch.set_num_threads(max(1, num_threads))
        self.data = data
        self.logger = RunLogger(tracking_uri)
        self.spec: TrialSpec | None = None
        self.trainer = None
        self.start_error: str | None = None
        self.last_image: bytes | None = None
        self.checkpoints: TrialCheckpoints | None = None

    def placement(self) -> dict[str, str]:
        """Where this actor runs: the node and the GPU ids Ray assigned (CUDA_VISIBLE_DEVICES)."""
        import ray

        gpus = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
        return {TAG_NODE: socket.gethostname(), TAG_GPUS: ",".join(map(str, gpus))}

    def start(self, spec: TrialSpec) -> None:
        """Build the trial's trainer; a failure is reported by the next `train` call."""
        import torch

        from trainers import build_trainer

        self.spec, self.trainer, self.start_error, self.last_image = spec, None, None, None
        try:
            self.checkpoints = TrialCheckpoints(spec.checkpoint_root, spec.sweep, spec.number)
            self.logger.set_tags(spec.run_id, self.placement())
            device = "cuda" if torch.cuda.is_available() else "cpu"
            self.trainer = build_trainer(spec.trainer, spec.params, self.data, spec.seed, device)
        except Exception as exc:
            self.start_error = f"{type(exc).__name__}: {exc}"
            self._log_traceback()

    def train(self, n_steps: int) -> ChunkResult:
        """Train up to `n_steps` more steps, evaluate, log and checkpoint; never raises."""
        spec, trainer = self.spec, self.trainer
        if trainer is None:
            return ChunkResult(spec.number, 0, {}, error=self.start_error)
        try:
            n_steps = min(n_steps, spec.total_steps - trainer.step)
            rows: list[tuple[int, dict[str, float]]] = []
            while n_steps > 0:  # train metrics at a fixed cadence, written in one batch below
                k = min(spec.log_every, n_steps)
                rows.append((trainer.step + k, trainer.train_for(k)))
                n_steps -= k
            metrics = trainer.evaluate()
            rows.append((trainer.step, metrics))
            self.logger.log_metrics(spec.run_id, rows)
            image = trainer.sample_image()
            if image is not None:
                self.logger.log_image(spec.run_id, image, key="samples", step=trainer.step)
                self.last_image = image
            self.checkpoints.save(self._payload(), trainer.step)
            return ChunkResult(spec.number, trainer.step, metrics)
        except Exception as exc:  # the trial fails; the actor lives on for the next trial
            self._log_traceback()
            return ChunkResult(spec.number, trainer.step, {}, error=f"{type(exc).__name__}: {exc}")

    def finish(self, state: str, reason: str = "") -> None:
        """End the trial's run; a COMPLETE trial also leaves its checkpoint and generator."""
        spec, trainer = self.spec, self.trainer
        try:
            if self.last_image is not None:
                self.logger.log_bytes(spec.run_id, self.last_image, "samples/final.png")
            if state == "COMPLETE" and trainer is not None:
                final = self.checkpoints.latest_bytes()
                if final is not None:
                    self.logger.log_bytes(spec.run_id, final, "checkpoints/final.pt")
                generator = trainer.generator()
                if generator is not None:
                    self.logger.log_model(spec.run_id, generator, trainer.z_dim)
        except Exception as exc:  # the result stands; say on the run what could not be saved
            self.logger.set_tags(spec.run_id, {TAG_FINISH_ERROR: f"{type(exc).__name__}: {exc}"})
        finally:
            self.logger.end_run(spec.run_id, state, reason)
            self.spec = self.trainer = self.checkpoints = self.last_image = None

    def flush(self) -> None:
        self.logger.flush()

    def _log_traceback(self) -> None:
        self.logger.log_bytes(self.spec.run_id, traceback.format_exc().encode(),
                              "errors/traceback.txt")

    def _payload(self) -> dict[str, Any]:
        spec = self.spec
        return {"trainer": self.trainer.state_dict(), "step": self.trainer.step,
                "spec": asdict(spec), "run_id": spec.run_id, "attempt": 1}
