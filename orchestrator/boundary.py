"""The Ray boundary: everything that crosses between the driver and a trial actor, in one module
that imports only the standard library.

The driver sends a `TrialSpec` (never an Optuna trial) and asks for chunks of training; the
actor answers each chunk with a `ChunkResult` (no tensors travel back). A trial ends on its
actor with one of the run states below. A call to an actor that died raises `ActorLost` on the
driver, whatever the actor system. So the driver's decisions (orchestrator/driver/decide.py)
read and test without Ray, MLflow, torch or Optuna (tests/orchestrator/test_boundary.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How a trial's run ends, as the driver tells its actor (`finish(state)`); each of the first three
# is also the trial's Optuna state. RUNNING: the sweep stopped with the trial unfinished, its run
# KILLED until a resume reopens it.
COMPLETE, PRUNED, FAIL, RUNNING = "COMPLETE", "PRUNED", "FAIL", "RUNNING"
DIVERGED = "diverged"  # a ChunkResult's error: a NaN or inf loss or weight

# What a trial actor imports before it says it is ready (`TrialWorker.ready`), so that its first
# trial trains at once: torch and the trainers, Pillow for the sample pictures, the actor's own
# code. MLflow is not among them: an actor imports it on its logging thread while its first
# chunk trains (orchestrator/actor/runlog.py).
ACTOR_PRELOAD = ("PIL.Image", "trainers", "trainers.grids", "orchestrator.actor.worker")


@dataclass(frozen=True)
class TrialSpec:
    """One trial as its actor runs it: what to build, where to log and checkpoint, how long."""

    sweep: str
    number: int
    trainer: str  # a built-in name or module:Class (entry points resolved by the driver)
    params: dict[str, Any]
    seed: int
    run_id: str  # the trial's MLflow run, made by the driver when it asked the trial
    checkpoint_root: str
    total_steps: int
    log_every: int
    attempt: int = 1  # 2 and up: resume from the trial's last checkpoint
    keep_checkpoints: int = 2
    objective: str = ""  # the metric sample titles show and the best-step generator follows
    maximize: bool = False
    # population-based training (orchestrator/driver/population.py) and its replay by confirm:
    mutable: tuple[str, ...] = ()  # params that may change mid-run, logged as hp/NAME metrics
    resume: bool = False  # continue from the last checkpoint (a member going on after a round)
    first_params: dict[str, Any] | None = None  # the run's params when `params` changed since
    schedule: tuple[tuple[int, dict[str, Any]], ...] = ()  # (from step, params) to replay

    @property
    def run_params(self) -> dict[str, Any]:
        """What the trial's run shows as params: its params (its first ones, when they change as
        it trains: MLflow params never change) and its seed."""
        return {**(self.first_params or self.params), "seed": self.seed}


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk of training came back with: the step reached, the eval's metrics, or why
    the trial cannot go on (DIVERGED, or the exception that ended it)."""

    number: int
    step: int
    metrics: dict[str, float]
    error: str | None = None
    train: dict[str, float] = field(default_factory=dict)  # the chunk's train/ means (health)


class ActorLost(Exception):  # noqa: N818 - a happening, as Ray's own ActorDiedError
    """A call to an actor that died (its process killed, its node gone), raised on the driver.

    `what`: the actor system's name for it (Ray's error type); str(): its first line."""

    def __init__(self, what: str, detail: str = ""):
        super().__init__(detail or what)
        self.what = what
