"""The values a launched sweep's driver works with, made once by `launch` and handed down whole
(as click's context object is to subcommands) instead of in long positional lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no import of optuna, MLflow or Ray here: launch.py imports this early
    import optuna

    from orchestrator.cluster.raystart import ActorPool
    from orchestrator.driver.data import PreparedData
    from orchestrator.driver.launch import Settings
    from orchestrator.driver.stats import SweepStats
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.tracking.tracker import SweepTracker


@dataclass(frozen=True)
class SweepContext:
    """One sweep's driver: what it runs, where things live, and whom it tells."""

    spec: SweepSpec
    settings: Settings  # the stores; the scheduler reads checkpoint_root
    study: optuna.Study
    tracker: SweepTracker  # the parent run's and the trial runs' MLflow writes
    pool: ActorPool  # the trial actors, made while the study and the parent run were opened
    data: PreparedData | None = None  # the sweep's data facts (the actors have its payload)
    on_update: Callable[[SweepStats], None] | None = None  # the progress display, per event
    notice: Callable[[str], None] = print  # one-line messages to the user
    pool_done: Callable[[], None] = lambda: None  # the sweep is over: Ray may go (`RayStart`)
