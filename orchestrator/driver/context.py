"""What a launched sweep's driver works with: the values made once by `launch` and handed down
whole (as click's context object is to subcommands) instead of in long positional lists, and the
two interfaces the scheduler is given: the trial actors (`Actors`) and the sweep's page."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.boundary import TrialSpec

if TYPE_CHECKING:  # no import of optuna, MLflow or Ray here: launch.py imports this early
    import optuna

    from orchestrator.driver.data import PreparedData
    from orchestrator.driver.stats import SweepStats
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.stores.settings import Settings
    from orchestrator.tracking.tracker import SweepTracker


class Actors(Protocol):
    """The trial actors as the scheduler sees them. Every call returns at once: a ref (any
    hashable) whose result `get` returns once `wait` has seen it ready."""

    size: int  # actors made up front

    def take(self, n: int) -> dict[Hashable, Any]:
        """The first `n` actors made up front, by the refs of their `ready()`; the rest go."""

    def new_actor(self) -> tuple[Hashable, Any]:
        """A replacement: (its `ready()` ref, the actor)."""

    def start(self, actor: Any, spec: TrialSpec) -> None:
        """The actor builds the trial (before any call made after this one)."""

    def train(self, actor: Any, steps: int) -> Hashable:
        """A chunk of up to `steps` steps; its result is a `ChunkResult`."""

    def finish(self, actor: Any, state: str, reason: str) -> Hashable:
        """The actor ends the trial's run (COMPLETE, PRUNED, FAIL, or RUNNING: stopped)."""

    def flush(self, actor: Any) -> Hashable:
        """Everything the actor queued for MLflow, written."""

    def salvage(self, spec: TrialSpec) -> Hashable:
        """The metrics a dead actor left in its trial's checkpoint, written; the result is why
        that could not be done, or None."""

    def copy_state(self, recipient: TrialSpec, donor: int, step: int) -> Hashable:
        """PBT's exploit: trial `donor`'s checkpoint at `step` becomes the recipient's newest;
        the result is why that could not be done, or None."""

    def retire(self, actor: Any) -> None:
        """The actor ends once the calls it was given are done."""

    def kill(self, actor: Any) -> None:
        """The actor ends now."""

    def wait(self, refs: list[Hashable], timeout: float) -> Hashable | None:
        """The first of `refs` to be ready, or None after `timeout` seconds."""

    def get(self, ref: Hashable) -> Any:
        """A ready ref's result; raises `ActorLost` when its actor died."""


class PageUpdates(Protocol):
    """What the scheduler tells the sweep's page (orchestrator/tracking/page.py `SweepPage`)."""

    def request(self) -> None:
        """Something changed: rewrite the page soon (the page decides when)."""


class NoPage:
    """A sweep with no page of its own (a confirm writes its sweep's page when it ends)."""

    def request(self) -> None:
        pass


@dataclass(frozen=True)
class SweepContext:
    """One sweep's driver: what it runs, where things live, and whom it tells."""

    spec: SweepSpec
    settings: Settings  # the stores; the scheduler reads checkpoint_root
    study: optuna.Study
    tracker: SweepTracker  # the parent run's and the trial runs' MLflow writes
    data: PreparedData | None = None  # the sweep's data facts (the actors have its payload)
    on_update: Callable[[SweepStats], None] | None = None  # the progress display, per event
    notice: Callable[[str], None] = print  # one-line messages to the user
    page: PageUpdates = field(default_factory=NoPage)  # the parent run's page, kept current
    pool_done: Callable[[], None] = lambda: None  # the sweep is over: Ray may go (`RayStart`)
