"""`gansweep confirm NAME --top K --seeds S`: is the sweep's winner a good config, or a lucky seed?

The top K completed trials' params are retrained on S fresh seeds each, as trials of a second
study, `NAME-confirm`, in the same storage. It runs through `launch` like any sweep (same actor
pool, checkpoints and resume guarantees: run the same command again to continue it), with no
pruner, and each confirm run is a child of the sweep's parent run with `gansweep.role=confirm`.
Running it again with a larger K or S adds only the missing (config, seed) pairs, and those
whose run failed. A sweep whose spec has `budget.confirm` runs the same phase itself when its
search ends: the confirm sweep, its pairs and its table (what it gives, how `promote` reads it)
are orchestrator/driver/confirm.py's.
"""

from __future__ import annotations

from orchestrator.driver.confirm import (  # noqa: F401 - re-exported: what `confirm` needs
    SAMPLES_FACTOR,
    ConfirmPlan,
    confirm_spec,
    enqueue_missing,
    fresh_seed,
    log_table,
    plan_pairs,
    table_csv,
    table_text,
)
from orchestrator.errors import SpecError
from orchestrator.layout import ROLE_TRIAL
from orchestrator.stores.settings import Settings
from orchestrator.study.ranking import ConfirmRow, top_trials
from orchestrator.study.record import launch_record
from orchestrator.study.studies import confirm_name, load_study


def check_request(top: int, seeds: int) -> None:
    for flag, value, least in (("--top", top, 1), ("--seeds", seeds, 2)):
        if value < least:
            raise SpecError(f"{flag}: must be >= {least}, got {value}"
                            + (" (a spread needs two seeds)" if flag == "--seeds" else ""))


def plan_confirm(name: str, top: int, seeds: int, storage: str) -> ConfirmPlan:
    """Open sweep NAME's confirm study in `storage` and enqueue the (config, seed) pairs it
    lacks (a pair whose trial failed or was pruned is tried again)."""
    check_request(top, seeds)
    sweep = launch_record(name, storage).sweep_spec()
    return plan_pairs(sweep, top_trials(load_study(name, storage), top), seeds, storage)


def report_confirm(name: str, plan: ConfirmPlan, settings: Settings,
                   at: str = "last") -> list[ConfirmRow]:
    """The table, logged to the sweep's parent run (its table files and the confirmed-trial
    tags); returned best bound first."""
    from orchestrator.tracking.page import SweepPage
    from orchestrator.tracking.tracker import SweepTracker

    sweep = load_study(name, settings.storage)
    confirm = load_study(confirm_name(name), settings.storage)
    tracker = SweepTracker(settings.tracking_uri, plan.sweep.experiment, name, ROLE_TRIAL)
    tracker.parent_run_id = tracker.find_sweep_run()
    rows = log_table(tracker, sweep, confirm, plan.sweep, at)
    SweepPage(tracker, sweep, plan.sweep, settings.storage).update(final=True)  # shows the table
    return rows
