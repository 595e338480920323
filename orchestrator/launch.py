"""Launching a sweep: resolve the embedded defaults, start Ray, open study and parent run, run.

The CLI parses flags into `Settings` and calls `launch`; tests call it the same way.
"""

from __future__ import annotations

import contextlib
import os
import reprlib
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.checkpoints import pinned_root, resolve_root
from orchestrator.context import SweepContext
from orchestrator.data import default_cache_dir, prepare_data, read_extractor
from orchestrator.paths import sqlite_file
from orchestrator.record import LAUNCH_ATTR, LaunchRecord, check_same_extractor
from orchestrator.redact import ROOT_SECRET, mask_secrets, redact_uri
from orchestrator.report import sweep_artifacts  # at import (see `_run`)
from orchestrator.spec import SpecError, SweepSpec
from orchestrator.study import (
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
from orchestrator.sweep_page import open_page
from orchestrator.tracking import SweepTracker, check_tracking_uri, resolve_tracking_uri
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


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + SETTINGS


def check_address(address: str | None, timeout_s: float = 10.0) -> None:
    """Refuse, within `timeout_s`, a Ray address where no Ray head answers: `ray.init` retries
    for ten minutes and more, whether nothing listens there or another service does (the
    dashboard's 8265 given for the GCS port). A head's GCS, like the Ray Client server, speaks
    gRPC: sent HTTP/2's preface, it answers with a SETTINGS frame."""
    if not address or address in ("local", "auto"):
        return
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise SpecError(f"--address: {reprlib.repr(address)}: expected HOST:PORT (the head's "
                        f"GCS port, 6379 by default) or ray://HOST:10001")
    reply = b""
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as conn:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return  # TLS first: no plain preface to send
            conn.sendall(H2_PREFACE)
            with contextlib.suppress(OSError):  # a service that answers nothing: timed out
                while len(reply) < 9 and (chunk := conn.recv(9 - len(reply))):
                    reply += chunk
    except (OSError, OverflowError) as exc:  # refused, timed out, no such host, port > 65535
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise SpecError(f"--address: cannot connect to Ray at {address}: {why} (is a Ray head "
                        f"running there? `ray start --head` prints its address)") from None
    if len(reply) < 9 or reply[3] != 4:
        raise SpecError(f"--address: {address} answers, but not as a Ray head: give the head's "
                        f"GCS port (6379 by default; 8265 is its dashboard, for `submit`)")


def init_ray(address: str | None) -> bool:
    """Connect to `address` (with the user's Ray token, when there is one), or start a local
    Ray; returns True when this call started it."""
    import ray

    from orchestrator.raytoken import HOW_TO_SET, auth_problem, use_token_auth

    if ray.is_initialized():
        return False
    if address and address != "local":
        use_token_auth()
    try:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR",
                 configure_logging=True, log_to_driver=True)
    except Exception as exc:  # unreachable, not a Ray head, or a token refused
        problem = auth_problem(exc)
        if problem is None:
            problem = describe(exc)
            if os.environ.get("RAY_AUTH_MODE") != "token":
                problem += f" (if the cluster uses token auth: {HOW_TO_SET})"
        raise SpecError(f"--address: cannot connect to Ray at {address}: {problem}") from None
    return True


def launch(spec: SweepSpec, settings: Settings,
           on_update: Callable | None = None, notice: Callable[[str], None] = print,
           enqueue_from: str | None = None, confirm_of: str | None = None):
    """Run the sweep until its trial budget is met; returns the final `SweepStats`, or None
    when the budget was already met. Trials an earlier driver left RUNNING are resumed first.
    Stores are checked before Ray starts; a sweep another live driver is running is refused.
    Raises `Interrupted` after a first SIGINT / SIGTERM once in-flight chunks checkpointed.
    `confirm_of`: this is `gansweep confirm`'s study for that sweep (orchestrator/confirm.py):
    its runs are children of that sweep's parent run, with role `confirm`."""
    from orchestrator.lease import DriverLease

    spec = _fit_search(spec, notice)
    extractor = read_extractor(settings.feature_extractor)
    problem = check_tracking_uri(settings.tracking_uri)  # nothing is created before the checks
    if problem:
        raise SpecError(f"--tracking-uri: {problem}")
    enqueued = params_from_run(settings.tracking_uri, enqueue_from, spec) if enqueue_from else None
    check_storage(settings.storage)
    check_address(settings.address)
    data = prepare_data(spec, settings.cache_dir, extractor, notice)
    started_ray = init_ray(settings.address)
    try:
        n_workers, actor_options = _plan_cluster(spec, settings, notice)
        try:
            tracker = SweepTracker(settings.tracking_uri, spec.experiment,
                                   confirm_of or spec.name, "confirm" if confirm_of else "trial")
        except Exception as exc:
            raise SpecError(f"--tracking-uri: cannot use {redact_uri(settings.tracking_uri)}: "
                            f"{mask_secrets(describe(exc), settings.tracking_uri)}") from None
        check_same_sweep(spec.name, settings.storage, tracker)  # before the study is made
        study = open_study(spec, settings.storage)
        lease = DriverLease(settings.storage, study)
        check_same_extractor(study, extractor)
        confirms = study.user_attrs.get("gansweep.confirm_of")  # orchestrator.confirm's
        if confirms and confirms != confirm_of:
            raise SpecError(f"sweep {spec.name!r} is `gansweep confirm {confirms}`'s study: "
                            f"continue it with that command, or rename this sweep")
        lease.acquire()
        try:
            study.set_user_attr(LAUNCH_ATTR,
                                LaunchRecord.of(spec, settings, extractor).to_dict())
            if enqueued:
                study.enqueue_trial(enqueued)  # always, even when tried before
            return _launch(SweepContext(spec, settings, study, tracker, n_workers, actor_options,
                                        data, on_update, notice), lease)
        finally:
            lease.release()
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _plan_cluster(spec: SweepSpec, settings: Settings, notice: Callable[[str], None]):
    """Size the actor pool from the cluster; refuse what cannot work on it."""
    import ray

    from orchestrator.plugins import actor_runtime_env
    from orchestrator.pool import pool_plan

    cluster = ray.cluster_resources()
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    n_workers, actor_options = pool_plan(spec, nodes)
    runtime_env = actor_runtime_env(spec)
    if runtime_env is not None:  # the user's plug-in modules, uploaded for every actor
        actor_options = {**actor_options, "runtime_env": runtime_env}
    if n_workers < 1:
        raise SpecError(f"{spec.path or spec.name}: resources: the cluster has "
                        f"{cluster.get('CPU', 0):g} CPUs and {cluster.get('GPU', 0):g} GPUs, "
                        f"fewer than one trial needs")
    if spec.resources.actors and cluster.get("GPU", 0) < spec.resources.gpus_per_trial:
        notice(f"the cluster has no GPU free yet: {n_workers} actors wait for the autoscaler "
               f"to add GPU nodes")
    elif actor_options["num_gpus"] == 0 and spec.resources.gpus_per_trial > 0:
        if settings.require_gpu:
            raise SpecError("--require-gpu: the Ray cluster has no GPU (resources: "
                            f"{cluster.get('CPU', 0):g} CPUs); start GPU workers, or drop "
                            "--require-gpu to train on CPU")
        notice("no GPU in the Ray cluster: trials run on CPU")
    hosts = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
    problem, warning = shared_store_problems(len(hosts), settings.tracking_uri,
                                             settings.checkpoint_root)
    if problem:
        raise SpecError(problem)
    if warning:
        notice(warning)
    return n_workers, actor_options


def shared_store_problems(n_hosts: int, tracking_uri: str,
                          checkpoint_root: str) -> tuple[str | None, str | None]:
    """(error, warning) for stores on a cluster of `n_hosts` machines: actors elsewhere cannot
    write to a file on the driver's machine."""
    if n_hosts <= 1:
        return None, None
    scheme = tracking_uri.split(":", 1)[0] if "://" in tracking_uri else "file"
    if scheme in ("sqlite", "file"):
        return (f"--tracking-uri: {redact_uri(tracking_uri)} is a file on this machine, and the "
                f"Ray cluster spans {n_hosts} hosts whose actors log there: run an MLflow "
                f"tracking server every node reaches and pass --tracking-uri http://HOST:5000 (see "
                f"clusters/README.md)"), None
    if "://" not in checkpoint_root:
        return None, (f"checkpoints go to {checkpoint_root} on each node: with {n_hosts} hosts "
                      f"that must be a shared mount, or use --checkpoint-root s3://... so that "
                      f"a trial can resume on another node")
    return None, None


def check_same_sweep(name: str, storage: str, tracker: SweepTracker) -> None:
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
    spec, tracker = ctx.spec, ctx.tracker
    if tracker.role != "trial":  # a confirm: the sweep's page, report and status stay its own
        tracker.parent_run_id = tracker.find_sweep_run()
        if tracker.parent_run_id is None:
            raise SpecError(f"sweep {tracker.sweep!r} has no parent run in MLflow experiment "
                            f"{tracker.experiment_id}: give the sweep's --tracking-uri")
        return _run(ctx, lease)
    tracker.open_sweep_run(spec.text, Path(spec.path).name if spec.path else "spec.yaml")
    page = open_page(tracker, ctx.study, spec)  # the parent run's page, kept current
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
            tracker.log_files(sweep_artifacts(ctx.study, [o.metric for o in spec.objectives]))
    finally:
        tracker.close_sweep(tags=None if best is None else {"gansweep.best_trial": best})
    return stats


LEASE_LOST = "another driver took the sweep over"


def _run(ctx: SweepContext, lease):
    import ray

    from orchestrator.scheduler import Scheduler

    spec, study, data = ctx.spec, ctx.study, ctx.data
    if trials_used(study) >= spec.budget.trials and not orphaned_trials(study):
        ctx.notice(f"{spec.name}: budget met ({spec.budget.trials} trials); raise --trials to "
                   f"run more")
        return None
    if ctx.tracker.role == "trial":  # a confirm's data (more samples) is not the sweep's floor
        ctx.tracker.log_sweep_facts(data.sweep_metrics, data.tags)
    else:
        ctx.tracker.trial_tags = dict(data.tags)
    data_ref = ray.put(data.payload)  # read once; actors on a node share it zero-copy
    scheduler = Scheduler(ctx, data_ref)
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
    from orchestrator.search import grid_size

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
