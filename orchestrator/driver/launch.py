"""Launching a sweep: every check, then Ray (on its own thread), the parent run and the study,
then the loop; the page and the report once it ends.

The CLI resolves `Settings` (orchestrator/stores/settings.py) and calls `launch`; tests call it
the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from orchestrator.cluster.raystart import RayStart, check_address
from orchestrator.driver.context import SweepContext
from orchestrator.driver.data import prepare_data, read_extractor
from orchestrator.driver.signals import Interrupted, StopOnSignal
from orchestrator.errors import OutOfSpace, SpecError, describe
from orchestrator.layout import (
    CONFIRM_OF_ATTR,
    LAUNCH_ATTR,
    ROLE_CONFIRM,
    ROLE_TRIAL,
    RUN_ATTR,
    TAG_BEST_TRIAL,
)
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.checks import (
    check_checkpoint_root,
    check_storage,
    check_tracking_uri,
    deleted_experiment,
)
from orchestrator.stores.redact import mask_secrets, redact_uri
from orchestrator.stores.settings import Settings
from orchestrator.stores.uris import local_file
from orchestrator.study.record import (
    LaunchRecord,
    check_same_extractor,
    check_same_spec,
    existing_study,
)
from orchestrator.study.samplers import fit_search
from orchestrator.study.studies import confirm_name, open_study, orphaned_trials, trials_used

LEASE_LOST = "another driver took the sweep over"


def launch(spec: SweepSpec, settings: Settings,
           on_update: Callable | None = None, notice: Callable[[str], None] = print,
           enqueue_from: str | None = None, confirm_of: str | None = None,
           allow_changed_spec: bool = False, on_started: Callable[[], None] | None = None):
    """Run the sweep until its trial budget is met, then its confirm phase (`budget.confirm`:
    orchestrator/driver/confirm.py) on the same actors; returns the search's final
    `SweepStats`, or None when its budget was already met (and confirmed). Trials an
    earlier driver left RUNNING are resumed first.
    Stores are checked before Ray starts; a sweep another live driver is running is refused.
    Raises `Interrupted` after a first SIGINT / SIGTERM once in-flight chunks checkpointed.
    `confirm_of`: this is `gansweep confirm`'s study for that sweep (registry/confirm.py): its
    runs are children of that sweep's parent run, with role `confirm`.
    `allow_changed_spec`: continue a sweep whose space, objective, trainer, dataset or fixed
    params changed since it was launched (refused otherwise). `on_started`: called once every
    check passed and the stores exist, before the first trial."""
    from orchestrator.driver.lease import DriverLease

    spec = fit_search(spec, notice)
    extractor = read_extractor(settings.feature_extractor)
    problem = check_tracking_uri(settings.tracking_uri)  # nothing is created before the checks
    if problem:
        raise SpecError(f"--tracking-uri: {problem}")
    problem = deleted_experiment(settings.tracking_uri, spec.experiment)
    if problem:
        raise SpecError(f"{Path(spec.path).name or spec.name}: experiment: {problem}")
    enqueued = None
    if enqueue_from:
        from orchestrator.tracking.runs import params_from_run

        enqueued = params_from_run(settings.tracking_uri, enqueue_from, spec)
    check_storage(settings.storage)
    check_checkpoint_root(settings.checkpoint_root)
    earlier = None if confirm_of else existing_study(spec.name, settings.storage)
    changed = None if earlier is None else check_same_spec(earlier, spec, allow_changed_spec)
    confirm_left = 0 if confirm_of else _confirm_left(spec, earlier, settings.storage)
    if earlier is not None and budget_met(earlier, spec.budget.trials) and not confirm_left:
        used = trials_used(earlier)  # before Ray starts
        if spec.scheduler is not None:  # a population trains once
            notice(f"{spec.name}: its population of {used} has trained; give the sweep "
                   f"another name to train a new one")
            return None
        notice(f"{spec.name}: budget met, {used} of {spec.budget.trials} trials done; "
               f"--trials {used + spec.budget.trials} runs {spec.budget.trials} more")
        return None
    check_address(settings.address)
    data = prepare_data(spec, settings.cache_dir, extractor, notice)
    ray_start = RayStart(spec, settings, data.payload)  # Ray and the actors, meanwhile:
    try:
        _import_driver_modules()
        from orchestrator.tracking.tracker import DeletedExperiment, SweepTracker

        ray_start.check(notice)  # a cluster that cannot run the sweep: refused, nothing made
        try:
            tracker = _open_tracker(SweepTracker, settings, spec.experiment,
                                    confirm_of or spec.name,
                                    ROLE_CONFIRM if confirm_of else ROLE_TRIAL)
        except DeletedExperiment as exc:
            raise SpecError(f"{Path(spec.path).name or spec.name}: experiment: {exc}") from None
        except Exception as exc:
            raise SpecError(f"--tracking-uri: cannot use {redact_uri(settings.tracking_uri)}: "
                            f"{mask_secrets(describe(exc), settings.tracking_uri)}") from None
        pool = ray_start.pool(notice)
        check_same_sweep(spec.name, settings.storage, tracker)  # before the study is made
        study = open_study(spec, settings.storage)
        lease = DriverLease(settings.storage, study.study_name)
        check_same_extractor(study, extractor)
        confirms = study.user_attrs.get(CONFIRM_OF_ATTR)
        if confirms and confirms != confirm_of:
            raise SpecError(f"sweep {spec.name!r} is `gansweep confirm {confirms}`'s study: "
                            f"continue it with that command, or rename this sweep")
        lease.acquire()
        if on_started is not None:
            on_started()
        if changed:
            notice(f"{spec.name}: continued with a changed spec ({changed}); its earlier "
                   f"trials stay in the study and inform the sampler")
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


def _open_tracker(tracker_cls, settings: Settings, experiment: str, sweep: str, role: str):
    """The sweep's tracker. A local sqlite store is opened while this process holds an
    exclusive lock on its folder: two first launches of a sweep at the same instant would
    otherwise both run MLflow's table creation on one file (a half-made migration table then
    breaks the store for good), and the file exists as soon as the first one starts making it;
    the second waits, finds the store made, and the lease, not a store error, decides which
    launch runs."""
    file = local_file(settings.tracking_uri)
    if file is None or not file.parent.is_dir():
        return tracker_cls(settings.tracking_uri, experiment, sweep, role)
    with _folder_lock(file.parent):  # even when the file exists: it may be half made
        return tracker_cls(settings.tracking_uri, experiment, sweep, role)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock of `folder` itself (no lock file left behind); released on close or
    when the process dies."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _confirm_left(spec: SweepSpec, earlier, storage: str) -> int:
    """The runs the sweep's confirm phase has left (0 without `budget.confirm`): a sweep whose
    search is done but whose confirm is not goes on to Ray and runs it. Refuses a confirm study
    that is another sweep's, before anything is created."""
    if spec.budget.confirm is None:
        return 0
    from orchestrator.driver.confirm import pairs_left

    confirm = existing_study(confirm_name(spec.name), storage)
    if confirm is not None and confirm.user_attrs.get(CONFIRM_OF_ATTR) != spec.name:
        raise SpecError(f"sweep {confirm.study_name!r} in the same storage is not the confirm "
                        f"study of {spec.name!r}: rename one of the two sweeps")
    if earlier is None:
        return 1  # not searched yet
    return pairs_left(earlier, confirm, spec.budget.confirm.top, spec.budget.confirm.seeds)


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
    study = existing_study(name, storage)
    started = study is not None and trials_used(study) > 0
    if not started and tracker.trial_runs_exist():
        raise SpecError(f"--storage: sweep {name!r} has no trial in "
                        f"{redact_uri(storage)}, but MLflow experiment {tracker.experiment_id} "
                        f"already has trial runs of it: its study lives in another storage. "
                        f"Give that storage (GANSWEEP_STORAGE / --storage), or rename the sweep")
    for trial in orphaned_trials(study) if started else []:  # to resume in their own runs
        run_id = trial.user_attrs.get(RUN_ATTR)
        if run_id and not tracker.has_run(run_id):
            raise SpecError(f"--tracking-uri: trial {trial.number} of sweep {name!r} is left "
                            f"running in MLflow run {run_id}, which "
                            f"{redact_uri(tracker.uri)} does not hold: the sweep ran "
                            f"with another tracking store; give that one")


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
        stats, confirmed = _phases(dataclasses.replace(ctx, page=page), pool, lease)
    except BaseException:
        try:
            page.close(final=False)
        finally:
            tracker.close_sweep("KILLED")
        raise
    best = stats.best_trial if stats else _best_trial(ctx.study, spec)
    finished = stats is not None or confirmed
    try:  # a Ctrl-C while the page and report are written still ends the run
        page.close(final=finished)  # its last update, before the report it links to
        if finished:
            warming.join()
            tracker.log_files(sweep_artifacts(ctx.study, [o.metric for o in spec.objectives]))
    finally:
        tracker.close_sweep(tags=None if best is None else {TAG_BEST_TRIAL: best})
    return stats


def _phases(ctx: SweepContext, pool, lease):
    """The search, then with `budget.confirm` the confirm phase, on the actors the search used
    (held between the two) and in the same parent run; a search that stopped early raises
    before the confirm starts. Returns the search's stats (None: its budget was met before
    this launch) and whether a confirm phase ran."""
    spec = ctx.spec
    if spec.budget.confirm is None:
        return _run(ctx, pool, lease), False
    pool.hold()
    stats = None
    if budget_met(ctx.study, spec.budget.trials):  # searched by an earlier launch
        ctx.notice(f"{spec.name}: search done ({trials_used(ctx.study)} trials); its confirm "
                   f"phase goes on")
    else:  # Ray stays up for the confirm phase
        stats = _run(dataclasses.replace(ctx, pool_done=lambda: None), pool, lease)
    return stats, _confirm(ctx, pool)


def _confirm(ctx: SweepContext, pool) -> bool:
    """The confirm phase (orchestrator/driver/confirm.py): the top configs' (config, seed)
    pairs not run yet, as trials of the confirm study, on the held actors given data with more
    samples per eval; their runs are children of the sweep's parent run, role `confirm`, and
    the table and confirmed-trial tags go to that run. False when there was nothing to run."""
    from orchestrator.driver.confirm import SAMPLES_FACTOR, log_table, plan_phase
    from orchestrator.driver.data import scaled_payload
    from orchestrator.driver.lease import DriverLease

    spec, settings = ctx.spec, ctx.settings
    plan = plan_phase(spec, ctx.study, settings.storage, ctx.notice)
    study = None if plan is None else open_study(plan.spec, settings.storage)
    left = 0 if study is None else (plan.spec.budget.trials - trials_used(study)
                                    + len(orphaned_trials(study)))
    if not left:
        pool.let_go()
        ctx.pool_done()
        return False
    ctx.notice(f"{spec.name}: confirming the top {plan.configs} on "
               f"{spec.budget.confirm.seeds} fresh seeds ({left} runs, {SAMPLES_FACTOR}x the "
               f"eval samples)")
    lease = DriverLease(settings.storage, study.study_name)  # not with `gansweep confirm` too
    lease.acquire()
    try:
        study.set_user_attr(LAUNCH_ATTR, {**ctx.study.user_attrs[LAUNCH_ATTR],
                                          "trials": plan.spec.budget.trials})
        tracker = ctx.tracker.fork()
        tracker.role = ROLE_CONFIRM
        payload = scaled_payload(ctx.data.payload, plan.spec.budget.eval_scale)
        pool.reuse(payload, left)
        on_update = ctx.on_update and (
            lambda stats: ctx.on_update(dataclasses.replace(stats, phase="confirm")))
        _run(SweepContext(plan.spec, settings, study, tracker,
                          dataclasses.replace(ctx.data, payload=payload), on_update, ctx.notice,
                          pool_done=ctx.pool_done), pool, lease)
    finally:
        lease.release()
    log_table(ctx.tracker, ctx.study, study, spec)
    return True


def _best_trial(study, spec: SweepSpec) -> int | None:
    """The best completed trial's number (single objective), as the scheduler counts it."""
    from optuna.trial import TrialState

    from orchestrator.study.ranking import maximizes, ranked

    if spec.multi:
        return None
    found = ranked(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                   maximizes(study))
    return found[0].trial.number if found else None


def budget_met(study, trials: int) -> bool:
    """Every trial of the budget was started, and none is left RUNNING to resume."""
    return trials_used(study) >= trials and not orphaned_trials(study)


def _run(ctx: SweepContext, pool, lease):
    from orchestrator.driver.scheduler import Scheduler

    spec, study, data = ctx.spec, ctx.study, ctx.data
    if budget_met(study, spec.budget.trials):  # a confirm's, or met since the check above
        ctx.notice(f"{spec.name}: budget met ({spec.budget.trials} trials); raise --trials to "
                   f"run more")
        return None
    if ctx.tracker.role == ROLE_TRIAL:  # a confirm's data (more samples) is not the sweep's floor
        ctx.tracker.log_sweep_facts(data.sweep_metrics, data.tags)
    else:
        ctx.tracker.trial_tags = dict(data.tags)
    if spec.scheduler is not None:  # population-based training
        from orchestrator.driver.population import PopulationScheduler as Scheduler
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
    if scheduler.disk_full:
        raise OutOfSpace(spec.name, scheduler.disk_full, scheduler.suspended)
    if scheduler.stop_requested:
        raise Interrupted(spec.name, signals.signum, scheduler.suspended)
    return stats
