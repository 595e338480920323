"""Launching a sweep: resolve the embedded defaults, start Ray, open study and parent run, run.

The CLI parses flags into `Settings` and calls `launch`; tests call it the same way.
"""

from __future__ import annotations

import os
import reprlib
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.actor.checkpoints import pinned_root, resolve_root
from orchestrator.cluster.raystart import RayStart, check_address
from orchestrator.driver.context import SweepContext
from orchestrator.driver.data import default_cache_dir, prepare_data, read_extractor
from orchestrator.spec.sweep import SpecError, SweepSpec
from orchestrator.stores.redact import ROOT_SECRET, mask_secrets, redact_uri
from orchestrator.stores.uris import check_tracking_uri, resolve_tracking_uri, sqlite_file
from orchestrator.study.record import LAUNCH_ATTR, LaunchRecord, check_same_extractor
from orchestrator.study.studies import (
    absolute_sqlite,
    absolute_storage,
    check_storage,
    local_file,
    open_storage,
    open_study,
    orphaned_trials,
    resolve_storage,
    trials_used,
)
from trainers.params import describe

JOB_ENV_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray for a submitted job's driver


class Interrupted(Exception):
    """The sweep stopped on a signal after its in-flight chunks checkpointed; it resumes."""

    def __init__(self, sweep: str, signum: int, suspended: list[int]):
        super().__init__(f"{sweep}: stopped by {signal.Signals(signum).name}")
        self.sweep, self.signum, self.suspended = sweep, signum, suspended


@dataclass(frozen=True)
class Settings:
    """Where things live: study storage, tracking server, Ray cluster, checkpoints."""

    storage: str
    tracking_uri: str
    address: str | None = None
    checkpoint_root: str = "checkpoints"
    cache_dir: str = ""  # feature networks, by dataset content hash
    feature_extractor: str | None = None  # a user's TorchScript file: eval/fid in its space
    require_gpu: bool = False  # refuse to fall back to CPU when the cluster has no GPU

    @classmethod
    def resolve(cls, storage: str | None = None, tracking_uri: str | None = None,
                address: str | None = None, checkpoint_root: str | None = None,
                cache_dir: str | None = None, feature_extractor: str | None = None,
                require_gpu: bool = False) -> Settings:
        """Flags, else environment, else the embedded defaults; local paths made absolute
        because Ray workers do not share the driver's working directory."""
        return cls(storage=absolute_storage(resolve_storage(storage)),
                   tracking_uri=absolute_sqlite(resolve_tracking_uri(tracking_uri)),
                   address=address or os.environ.get("RAY_ADDRESS") or None,
                   checkpoint_root=_absolute_path(checkpoint_root or "checkpoints"),
                   cache_dir=str(Path(cache_dir or default_cache_dir()).expanduser().resolve()),
                   feature_extractor=(str(Path(feature_extractor).expanduser().resolve())
                                      if feature_extractor else None),
                   require_gpu=require_gpu)


def check_job_stores(storage: str | None, tracking_uri: str | None) -> None:
    """A sweep's driver running as a Ray Job (`submit`, a KubeRay RayJob) gets no default
    store: a file on the head would vanish with it, and a re-run would start the sweep over."""
    if not os.environ.get(JOB_ENV_VAR):
        return
    for flag, value, var in (("--storage", storage, "GANSWEEP_STORAGE"),
                             ("--tracking-uri", tracking_uri, "MLFLOW_TRACKING_URI")):
        if value is None and not os.environ.get(var):  # "" is refused as an unset variable
            raise SpecError(f"{flag}: this sweep runs as a Ray Job, and {var} is not set on "
                            f"the cluster: give the shared store (for KubeRay, in the secret "
                            f"the head's envFrom reads)")


def _absolute_path(uri: str) -> str:
    if redact_uri(uri) != uri:
        raise SpecError(f"--checkpoint-root: {redact_uri(uri)}: {ROOT_SECRET}")
    try:
        fs_root = resolve_root(uri)[1]  # refuses here a URI that pyarrow.fs cannot open
    except Exception as exc:
        raise SpecError(f"--checkpoint-root: cannot open {redact_uri(uri)}: {exc}") from None
    return pinned_root(uri) if "://" in uri else fs_root  # every actor: the same S3 endpoint


def launch(spec: SweepSpec, settings: Settings,
           on_update: Callable | None = None, notice: Callable[[str], None] = print,
           enqueue_from: str | None = None, confirm_of: str | None = None):
    """Run the sweep until its trial budget is met; returns the final `SweepStats`, or None
    when the budget was already met. Trials an earlier driver left RUNNING are resumed first.
    Stores are checked before Ray starts; a sweep another live driver is running is refused.
    Raises `Interrupted` after a first SIGINT / SIGTERM once in-flight chunks checkpointed.
    `confirm_of`: this is `gansweep confirm`'s study for that sweep (orchestrator/confirm.py):
    its runs are children of that sweep's parent run, with role `confirm`."""
    from orchestrator.driver.lease import DriverLease

    spec = _fit_search(spec, notice)
    extractor = read_extractor(settings.feature_extractor)
    problem = check_tracking_uri(settings.tracking_uri)  # nothing is created before the checks
    if problem:
        raise SpecError(f"--tracking-uri: {problem}")
    enqueued = params_from_run(settings.tracking_uri, enqueue_from, spec) if enqueue_from else None
    check_storage(settings.storage)
    check_address(settings.address)
    data = prepare_data(spec, settings.cache_dir, extractor, notice)
    ray_start = RayStart(spec, settings, data.payload)  # Ray and the actors, meanwhile:
    try:
        _import_driver_modules()
        from orchestrator.tracking.tracker import SweepTracker

        try:
            tracker = SweepTracker(settings.tracking_uri, spec.experiment,
                                   confirm_of or spec.name, "confirm" if confirm_of else "trial")
        except Exception as exc:
            raise SpecError(f"--tracking-uri: cannot use {redact_uri(settings.tracking_uri)}: "
                            f"{mask_secrets(describe(exc), settings.tracking_uri)}") from None
        pool = ray_start.pool(notice)  # a cluster too small is refused before the study is made
        check_same_sweep(spec.name, settings.storage, tracker)  # before the study is made
        study = open_study(spec, settings.storage)
        lease = DriverLease(settings.storage, study)
        check_same_extractor(study, extractor)
        confirms = study.user_attrs.get("gansweep.confirm_of")  # orchestrator.registry.confirm's
        if confirms and confirms != confirm_of:
            raise SpecError(f"sweep {spec.name!r} is `gansweep confirm {confirms}`'s study: "
                            f"continue it with that command, or rename this sweep")
        lease.acquire()
        try:
            study.set_user_attr(LAUNCH_ATTR,
                                LaunchRecord.of(spec, settings, extractor).to_dict())
            if enqueued:
                study.enqueue_trial(enqueued)  # always, even when tried before
            return _launch(SweepContext(spec, settings, study, tracker, pool, data, on_update,
                                        notice, ray_start.end_soon), lease)
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


def _launch(ctx: SweepContext, lease):
    """Run the sweep inside its MLflow parent run; the run ends KILLED if the driver stops."""
    from orchestrator.tracking.page import open_page
    from orchestrator.tracking.report import sweep_artifacts
    from orchestrator.tracking.report import warm_up as warm_up_report

    spec, tracker = ctx.spec, ctx.tracker
    if tracker.role != "trial":  # a confirm: the sweep's page, report and status stay its own
        tracker.parent_run_id = tracker.find_sweep_run()
        if tracker.parent_run_id is None:
            raise SpecError(f"sweep {tracker.sweep!r} has no parent run in MLflow experiment "
                            f"{tracker.experiment_id}: give the sweep's --tracking-uri")
        return _run(ctx, lease)
    tracker.open_sweep_run(spec.text, Path(spec.path).name if spec.path else "spec.yaml")
    page = open_page(tracker, ctx.study, spec)  # the parent run's page, kept current
    warming = threading.Thread(target=warm_up_report, name="report-warm-up", daemon=True)
    warming.start()  # so that the report is quick to write once the last trial ends
    try:
        stats = _run(ctx, lease)
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
        tracker.close_sweep(tags=None if best is None else {"gansweep.best_trial": best})
    return stats


LEASE_LOST = "another driver took the sweep over"


def _run(ctx: SweepContext, lease):
    from orchestrator.driver.scheduler import Scheduler

    spec, study, data = ctx.spec, ctx.study, ctx.data
    if trials_used(study) >= spec.budget.trials and not orphaned_trials(study):
        ctx.notice(f"{spec.name}: budget met ({spec.budget.trials} trials); raise --trials to "
                   f"run more")
        return None
    if ctx.tracker.role == "trial":  # a confirm's data (more samples) is not the sweep's floor
        ctx.tracker.log_sweep_facts(data.sweep_metrics, data.tags)
    else:
        ctx.tracker.trial_tags = dict(data.tags)
    scheduler = Scheduler(ctx)
    signals = _StopOnSignal(scheduler, ctx.notice)
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


class _StopOnSignal:
    """SIGINT / SIGTERM once: stop gracefully (no new chunks; in-flight ones checkpoint).
    Twice: KeyboardInterrupt at once. Installed only on the main thread, where Python allows."""

    def __init__(self, scheduler, notice: Callable[[str], None]):
        self.scheduler, self.notice = scheduler, notice
        self.signum = signal.SIGINT
        self.previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.scheduler.stop_requested:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.signum = signum
        name = signal.Signals(signum).name
        self.scheduler.request_stop(f"stopped by {name}")
        self.notice(f"{name}: no new chunks; the ones in flight finish and checkpoint "
                    f"(send it again to stop at once)")


def _fit_search(spec: SweepSpec, notice: Callable[[str], None]) -> SweepSpec:
    """Say what a sampler will not do, and cap a grid's budget at the grid's size."""
    from orchestrator.spec.search import grid_size

    categorical = [p.name for p in spec.space if p.kind == "categorical"]
    if spec.sampler.name == "cmaes" and categorical:
        notice(f"warning: CMA-ES models numbers only: {', '.join(categorical)} fall back to "
               f"independent random sampling")
    if spec.sampler.name == "grid" and grid_size(spec.space) < spec.budget.trials:
        notice(f"the grid has {grid_size(spec.space)} points: budget capped at that")
        return spec.with_trials(grid_size(spec.space))
    return spec


def params_from_run(tracking_uri: str, run_id: str, spec: SweepSpec) -> dict:
    """An earlier run's values of this spec's searched params, typed as the space says; read
    before anything is created (a sqlite file that is not there holds no run)."""
    file = sqlite_file(tracking_uri)
    try:
        if file is not None and not file.exists():
            raise LookupError(run_id)
        from mlflow import MlflowClient

        logged = MlflowClient(tracking_uri).get_run(run_id).data.params
    except Exception:
        raise SpecError(f"--enqueue-from: no MLflow run {reprlib.repr(run_id)} in "
                        f"{redact_uri(tracking_uri)}") from None
    params = {}
    for p in spec.space:
        if p.name not in logged:
            continue
        text = logged[p.name]
        if p.kind == "categorical":
            matches = [c for c in p.choices if str(c) == text]
            if not matches:
                raise SpecError(f"--enqueue-from: {p.name}={reprlib.repr(text)} is not one of "
                                f"space.{p.name}.choices")
            params[p.name] = matches[0]
            continue
        try:
            params[p.name] = int(float(text)) if p.kind == "int" else float(text)
        except ValueError:
            raise SpecError(f"--enqueue-from: {p.name}={reprlib.repr(text)} in run {run_id} "
                            f"is not a number") from None
    if not params:
        raise SpecError(f"--enqueue-from: run {run_id} has none of this spec's parameters")
    return params
