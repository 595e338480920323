"""Launching a sweep: every check, then Ray (on its own thread), the parent run and the study,
then the loop; the page and the report once it ends.

The CLI resolves `Settings` (orchestrator/stores/settings.py) and calls `launch`; tests call it
the same way.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

from orchestrator.cluster.raystart import RayStart, check_address
from orchestrator.driver.context import SweepContext
from orchestrator.driver.data import prepare_data, read_extractor
from orchestrator.driver.signals import Interrupted, StopOnSignal
from orchestrator.errors import SpecError, describe
from orchestrator.layout import (
    CONFIRM_OF_ATTR,
    LAUNCH_ATTR,
    ROLE_CONFIRM,
    ROLE_TRIAL,
    TAG_BEST_TRIAL,
)
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.checks import check_storage, check_tracking_uri
from orchestrator.stores.redact import mask_secrets, redact_uri
from orchestrator.stores.settings import Settings
from orchestrator.stores.uris import local_file
from orchestrator.study.record import LaunchRecord, check_same_extractor
from orchestrator.study.samplers import fit_search
from orchestrator.study.studies import open_storage, open_study, orphaned_trials, trials_used

LEASE_LOST = "another driver took the sweep over"


def launch(spec: SweepSpec, settings: Settings,
           on_update: Callable | None = None, notice: Callable[[str], None] = print,
           enqueue_from: str | None = None, confirm_of: str | None = None):
    """Run the sweep until its trial budget is met; returns the final `SweepStats`, or None
    when the budget was already met. Trials an earlier driver left RUNNING are resumed first.
    Stores are checked before Ray starts; a sweep another live driver is running is refused.
    Raises `Interrupted` after a first SIGINT / SIGTERM once in-flight chunks checkpointed.
    `confirm_of`: this is `gansweep confirm`'s study for that sweep (registry/confirm.py): its
    runs are children of that sweep's parent run, with role `confirm`."""
    from orchestrator.driver.lease import DriverLease

    spec = fit_search(spec, notice)
    extractor = read_extractor(settings.feature_extractor)
    problem = check_tracking_uri(settings.tracking_uri)  # nothing is created before the checks
    if problem:
        raise SpecError(f"--tracking-uri: {problem}")
    enqueued = None
    if enqueue_from:
        from orchestrator.tracking.runs import params_from_run

        enqueued = params_from_run(settings.tracking_uri, enqueue_from, spec)
    check_storage(settings.storage)
    check_address(settings.address)
    data = prepare_data(spec, settings.cache_dir, extractor, notice)
    ray_start = RayStart(spec, settings, data.payload)  # Ray and the actors, meanwhile:
    try:
        _import_driver_modules()
        from orchestrator.tracking.tracker import SweepTracker

        try:
            tracker = SweepTracker(settings.tracking_uri, spec.experiment,
                                   confirm_of or spec.name,
                                   ROLE_CONFIRM if confirm_of else ROLE_TRIAL)
        except Exception as exc:
            raise SpecError(f"--tracking-uri: cannot use {redact_uri(settings.tracking_uri)}: "
                            f"{mask_secrets(describe(exc), settings.tracking_uri)}") from None
        pool = ray_start.pool(notice)  # a cluster too small is refused before the study is made
        check_same_sweep(spec.name, settings.storage, tracker)  # before the study is made
        study = open_study(spec, settings.storage)
        lease = DriverLease(settings.storage, study.study_name)
        check_same_extractor(study, extractor)
        confirms = study.user_attrs.get(CONFIRM_OF_ATTR)
        if confirms and confirms != confirm_of:
            raise SpecError(f"sweep {spec.name!r} is `gansweep confirm {confirms}`'s study: "
                            f"continue it with that command, or rename this sweep")
        lease.acquire()
        try:
            study.set_user_attr(LAUNCH_ATTR,
                                LaunchRecord.of(spec, settings, extractor).to_dict())
            if enqueued:
                study.enqueue_trial(enqueued)  # always, even when tried before
            ctx = SweepContext(spec, settings, study, tracker, data, on_update, notice,
                               pool_done=ray_start.end_soon)
            return _launch(ctx, pool, lease)
        finally:
            lease.release()
    finally:
        ray_start.end()


def _import_driver_modules() -> None:
    """MLflow, the parent run's page and the report's modules, imported while Ray starts (the
    checks before it need none of them). Here, in a frame that holds nothing: optuna.visualization's
    first import keeps its caller's frames alive in a traceback (see `_run`)."""
    import orchestrator.tracking.page  # noqa: F401
    import orchestrator.tracking.report  # noqa: F401
    import orchestrator.tracking.tracker  # noqa: F401


def check_same_sweep(name: str, storage: str, tracker) -> None:
    """A sweep with no trial in `storage` whose trials already have runs in MLflow is the same
    sweep launched against another (or a lost) study storage, such as a re-run job whose
    GANSWEEP_STORAGE was not set: going on would make a second trial-0000 run and clear trial
    0's checkpoints. Asked before the study is created, so a refusal leaves nothing behind."""
    import optuna

    file = local_file(storage)
    if file is not None and not file.exists():
        started = False
    else:
        try:
            study = optuna.load_study(study_name=name, storage=open_storage(storage))
            started = any(t.state != optuna.trial.TrialState.WAITING for t in study.trials)
        except KeyError:  # no such study yet
            started = False
    if not started and tracker.trial_runs_exist():
        raise SpecError(f"--storage: sweep {name!r} has no trial in "
                        f"{redact_uri(storage)}, but MLflow experiment {tracker.experiment_id} "
                        f"already has trial runs of it: its study lives in another storage. "
                        f"Give that storage (GANSWEEP_STORAGE / --storage), or rename the sweep")


def _launch(ctx: SweepContext, pool, lease):
    """Run the sweep inside its MLflow parent run; the run ends KILLED if the driver stops."""
    from orchestrator.tracking.page import open_page
    from orchestrator.tracking.report import sweep_artifacts
    from orchestrator.tracking.report import warm_up as warm_up_report

    spec, tracker = ctx.spec, ctx.tracker
    if tracker.role != ROLE_TRIAL:  # a confirm: the sweep's page, report and status stay its own
        tracker.parent_run_id = tracker.find_sweep_run()
        if tracker.parent_run_id is None:
            raise SpecError(f"sweep {tracker.sweep!r} has no parent run in MLflow experiment "
                            f"{tracker.experiment_id}: give the sweep's --tracking-uri")
        return _run(ctx, pool, lease)
    tracker.open_sweep_run(spec.text, Path(spec.path).name if spec.path else "spec.yaml")
    page = open_page(tracker, ctx.study, spec, ctx.settings.storage)  # kept current from now
    warming = threading.Thread(target=warm_up_report, name="report-warm-up", daemon=True)
    warming.start()  # so that the report is quick to write once the last trial ends
    try:
        stats = _run(dataclasses.replace(ctx, page=page), pool, lease)
    except BaseException:
        try:
            page.close(final=False)
        finally:
            tracker.close_sweep("KILLED")
        raise
    best = stats.best_trial if stats else None
    try:  # a Ctrl-C while the page and report are written still ends the run
        page.close(final=stats is not None)  # its last update, before the report it links to
        if stats is not None:
            warming.join()
            tracker.log_files(sweep_artifacts(ctx.study, [o.metric for o in spec.objectives]))
    finally:
        tracker.close_sweep(tags=None if best is None else {TAG_BEST_TRIAL: best})
    return stats


def _run(ctx: SweepContext, pool, lease):
    from orchestrator.driver.scheduler import Scheduler

    spec, study, data = ctx.spec, ctx.study, ctx.data
    if trials_used(study) >= spec.budget.trials and not orphaned_trials(study):
        ctx.notice(f"{spec.name}: budget met ({spec.budget.trials} trials); raise --trials to "
                   f"run more")
        return None
    if ctx.tracker.role == ROLE_TRIAL:  # a confirm's data (more samples) is not the sweep's floor
        ctx.tracker.log_sweep_facts(data.sweep_metrics, data.tags)
    else:
        ctx.tracker.trial_tags = dict(data.tags)
    scheduler = Scheduler(ctx, pool)
    signals = StopOnSignal(scheduler.request_stop, lambda: bool(scheduler.stop_requested),
                           ctx.notice)
    lease.on_lost = lambda: scheduler.request_stop(LEASE_LOST)  # no trial driven twice
    if lease.lost.is_set():
        scheduler.request_stop(LEASE_LOST)
    try:
        with signals:
            stats = scheduler.run()
    except BaseException as exc:  # a second Ctrl-C, or a bug: no run left RUNNING in MLflow
        scheduler.abort(f"driver stopped: {type(exc).__name__}")
        raise
    finally:  # the lease may outlive the sweep (optuna.visualization's first import keeps
        lease.on_lost = None  # its caller's frames in a traceback): it must not hold the actors
    ctx.pool_done()  # every actor flushed: Ray shuts down while the page and report are written
    if scheduler.stop_requested == LEASE_LOST:
        raise SpecError(f"sweep {spec.name!r}: this driver's heartbeat did not reach the study "
                        f"storage for {lease.ttl_s:.0f} s and another driver took the sweep "
                        f"over; this one stopped, its {len(scheduler.suspended)} trial(s) in "
                        f"flight checkpointed for the other to resume")
    if scheduler.stop_requested:
        raise Interrupted(spec.name, signals.signum, scheduler.suspended)
    return stats
