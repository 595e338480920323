"""`gansweep ui`: the MLflow UI on a sweep's tracking store, and the links into it.

What MLflow 3's UI (a hash router, mlflow/server/js) reads from a link:
- `#/experiments/<id>/runs` is the runs table. `workflowType=machine_learning` shows it in the
  "Model training" view. MLflow 3.17 takes the view from that URL parameter, else from what the
  browser last picked in the sidebar (localStorage `mlflow.workflowType_v1`, GenAI until then);
  the experiment's kind tag does not count there (newer versions follow it, so it is set too).
  The parameter is not carried on by the UI's own links, so every link gansweep writes holds it.
- `#/runs/<run id>` redirects to the run's experiment route without the parameter (the GenAI
  view), so a run's link names its experiment when it is known.
- Links in a run's description always open a new tab (MLflow's EditableNote adds
  target="_blank" to every anchor after sanitizing it: markdown cannot opt out).
- The table's filter and order come from the URL (`searchFilter`, `orderByKey` as
  metrics.`eval/x`, `orderByAsc`), its columns only from a saved view: an experiment tag
  `mlflow.sharedViewState.<key>` = {name, createdAt, updatedAt, state: JSON}, opened by
  `viewStateShareKey=<key>` (and ignored when the URL holds a filter too).
- `#/runs/<run id>` opens a run without its experiment id, so `best` links a run without MLflow.

The link builders are pure functions; this module imports neither MLflow nor Optuna at import
time (`best` uses it and imports Optuna only). The server is `mlflow server` in its own process
group, stopped as a group: Ctrl-C leaves no process behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from orchestrator.errors import SpecError
from orchestrator.layout import (
    EXPERIMENT_KIND_TAG,
    LAUNCH_ATTR,
    ROLE_TRIAL,
    TAG_ROLE,
    TAG_SWEEP,
    TRAINING_KIND,
    VIEW_TAG,
    view_key,
)
from orchestrator.stores.redact import mask_secrets, redact_uri
from orchestrator.stores.uris import DEFAULT_TRACKING_URI, sqlite_file

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5000
TRAINING_VIEW = {"workflowType": "machine_learning"}
# the runs table's leading columns, by the grid's ids (MLflow 3.17's runs table)
LEADING_COLUMNS = ("attributes.`Run Name`", "runDateAndNestInfo", "duration")
START_TIMEOUT_S, STOP_GRACE_S = 120.0, 10.0


# -- links -----------------------------------------------------------------------------------------
def address(host: str, port: int) -> str:
    """The browser address of a server listening on host:port (0.0.0.0: this machine's)."""
    shown = DEFAULT_HOST if host in ("", "0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def server_base(uri: str) -> str:
    """An http(s) tracking URI as a browser address: no credentials, no query, no final /."""
    parts = urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]  # the browser asks for credentials itself
    return redact_uri(urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")))


def training_route(route: str, params: dict[str, str] | None = None) -> str:
    """A UI route as a hash link that opens in the "Model training" view: `#/route?...`."""
    return f"#{route}?{urlencode({**(params or {}), **TRAINING_VIEW}, quote_via=quote)}"


def _link(base: str, route: str, params: dict[str, str]) -> str:
    return f"{base}/{training_route(route, params)}"


def experiments_url(base: str) -> str:
    return _link(base, "/experiments", TRAINING_VIEW)


def run_route(run_id: str, experiment_id: str | None = None) -> str:
    """A run's UI route: under its experiment when known (`/runs/<id>` alone redirects there,
    dropping the view's parameter)."""
    return f"/experiments/{experiment_id}/runs/{run_id}" if experiment_id else f"/runs/{run_id}"


def run_url(base: str, run_id: str, experiment_id: str | None = None) -> str:
    return _link(base, run_route(run_id, experiment_id), {})


def runs_url(base: str, experiment_id: str, view_key: str | None = None,
             facets: dict[str, str] | None = None) -> str:
    """The experiment's runs table: a saved view, else filter and order in the URL."""
    params = {"viewStateShareKey": view_key} if view_key else dict(facets or {})
    return _link(base, f"/experiments/{experiment_id}/runs", params)


def column(kind: str, name: str) -> str:
    """A runs-table column (and sort key) as the UI names it: metrics.`eval/fid`."""
    return f"{kind}.`{name}`"


def sweep_filter(sweep: str) -> str:
    """The trial runs of a sweep, in MLflow's search syntax (sweep names are [A-Za-z0-9_.-])."""
    return f"tags.`{TAG_SWEEP}` = '{sweep}' AND tags.`{TAG_ROLE}` = '{ROLE_TRIAL}'"


@dataclass(frozen=True)
class SweepView:
    """A sweep's trials in the runs table: sorted by its (first) objective, best first, with
    its metrics and params as columns."""

    sweep: str
    objective: str
    ascending: bool  # a minimized objective
    metrics: tuple[str, ...]
    params: tuple[str, ...]

    @property
    def key(self) -> str:
        return view_key(self.sweep)

    def facets(self) -> dict[str, str]:
        """Filter and order as URL params (no columns: the fallback when no view is saved)."""
        return {"searchFilter": sweep_filter(self.sweep),
                "orderByKey": column("metrics", self.objective),
                "orderByAsc": "true" if self.ascending else "false"}

    def columns(self) -> list[str]:
        """The metric columns, objectives first, then the params."""
        return ([column("metrics", m) for m in self.metrics]
                + [column("params", p) for p in self.params])

    def tag(self, now_ms: int) -> tuple[str, str]:
        """The experiment tag that saves this view, as the UI's "Save view" writes it. The
        table shows selected columns in its own order (metrics by name) unless the state
        orders them: `columnOrder` holds the grid's column ids, the leading ones included."""
        state = {**self.facets(), "orderByAsc": self.ascending,
                 "selectedColumns": self.columns(),
                 "columnOrder": [*LEADING_COLUMNS, *self.columns()]}
        return VIEW_TAG + self.key, json.dumps({
            "name": f"gansweep {self.sweep}", "createdAt": now_ms, "updatedAt": now_ms,
            "state": json.dumps(state)})


def sweep_view(study, metric_keys: set[str]) -> SweepView:
    """The view of a sweep's study: its objectives first, then the other `eval/` metrics its
    runs logged, then the params its trials searched."""
    from orchestrator.study.results import objectives

    goals = objectives(study)
    first = [g["metric"] for g in goals]
    evals = sorted(k for k in metric_keys if k.startswith("eval/") and k not in first)
    params = sorted({p for t in study.get_trials(deepcopy=False) for p in t.params})
    return SweepView(study.study_name, first[0], goals[0]["direction"] == "minimize",
                     tuple(first + evals), tuple(params))


def sweep_experiment(study) -> str:
    """The sweep's MLflow experiment: its spec's `experiment`, from the spec text the launch
    record keeps, else the sweep's name (the spec's default)."""
    from orchestrator.spec.sweep import load_yaml

    text = (study.user_attrs.get(LAUNCH_ATTR) or {}).get("spec")
    try:
        raw = load_yaml(text) if text else {}
    except Exception:  # a record this version cannot read: the default
        raw = {}
    found = raw.get("experiment") if isinstance(raw, dict) else None
    return found if isinstance(found, str) and found.strip() else study.study_name


def sweep_link(study, uri: str, base: str) -> str:
    """The link to the sweep's trials in the UI at `base`, after saving their view in the
    experiment (where the store refuses that write: sorted and filtered, without columns)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client, name = MlflowClient(uri), sweep_experiment(study)
    found = client.get_experiment_by_name(name)
    if found is None:
        was = recorded_tracking_uri(study)
        hint = f" (it was launched with {was})" if was and was != redact_uri(uri) else ""
        raise SpecError(f"sweep {study.study_name!r}: no MLflow experiment {name!r} in "
                        f"{redact_uri(uri)}{hint}: pass its --tracking-uri")
    runs = client.search_runs([found.experiment_id], sweep_filter(study.study_name),
                              max_results=200)
    view = sweep_view(study, {key for run in runs for key in run.data.metrics})
    try:
        client.set_experiment_tag(found.experiment_id, *view.tag(int(time.time() * 1000)))
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
    except MlflowException:
        return runs_url(base, found.experiment_id, facets=view.facets())
    return runs_url(base, found.experiment_id, view_key=view.key)


def run_urls(study, run_ids: list[str]) -> tuple[dict[str, str], str]:
    """Links to runs of a sweep, each under its experiment when the sweep's tracking store
    answers (else `#/runs/<id>`, which opens the GenAI view), and `runs_base`'s note."""
    base, note = runs_base(study)
    where = run_experiments(recorded_tracking_uri(study) or os.environ.get(
        "MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI, run_ids)
    return {r: run_url(base, r, where.get(r)) for r in run_ids}, note


def run_experiments(uri: str, run_ids: list[str]) -> dict[str, str]:
    """The experiment of each run the store at `uri` has; none where it cannot be read (a
    masked URI, a server down): the links fall back to `#/runs/<id>`."""
    db = sqlite_file(uri)
    if not run_ids or "***" in uri or (db is not None and not db.is_file()):
        return {}  # a store that is not there is not made by looking
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    before = {k: os.environ.get(k) for k in quick}
    os.environ.update(quick)  # a server that does not answer costs seconds, not minutes
    try:
        from mlflow import MlflowClient

        client = MlflowClient(uri)
        return {r: client.get_run(r).info.experiment_id for r in run_ids}
    except Exception:
        return {}
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def recorded_tracking_uri(study) -> str | None:
    """The tracking URI the sweep was launched with, as its launch record keeps it (masked)."""
    return (study.user_attrs.get(LAUNCH_ATTR) or {}).get("tracking_uri")


def runs_base(study) -> tuple[str, str]:
    """Where a sweep's runs open, and a note on it: its tracking server, else `gansweep ui`'s
    default address (a local store has no server until `gansweep ui` starts one)."""
    uri = (recorded_tracking_uri(study) or os.environ.get("MLFLOW_TRACKING_URI")
           or DEFAULT_TRACKING_URI)
    if uri.startswith(("http://", "https://")):
        return server_base(uri), ""
    return (address(DEFAULT_HOST, DEFAULT_PORT),
            f"with `gansweep ui {study.study_name}` running; at the port it prints")


# -- the server ------------------------------------------------------------------------------------
def port_free(host: str, port: int) -> bool:
    """Whether a server can listen on host:port now. A host that is not an address of this
    machine is refused in one line."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            s.bind((host, port))
        return True
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return False
        raise SpecError(f"--host {host}: cannot listen there ({exc.strerror or exc})") from None


def pick_port(host: str, port: int | None) -> int:
    """--port when free (taken: one line); without it 5000, else a free port."""
    if port is not None:
        if not port_free(host, port):
            raise SpecError(f"--port {port}: already in use on {host} (another MLflow UI?): "
                            f"pass another, or leave --port out to get a free one")
        return port
    if port_free(host, DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket(socket.getaddrinfo(host, 0)[0][0], socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class UiServer:
    proc: subprocess.Popen
    url: str
    log: Path
    uri: str  # the store it serves, for masking its secrets in messages


def start_server(uri: str, host: str, port: int, artifacts: Path | None) -> UiServer:
    """`mlflow server` on the store, one worker, in a new process group. The store goes through
    the environment, not argv (a database URI may hold a password); no job runner (a viewer)."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port),
           "--workers", "1"]
    if artifacts is not None:  # what the UI itself uploads lands beside gansweep's artifacts
        cmd += ["--artifacts-destination", str(artifacts)]
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": uri,
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    fd, log = tempfile.mkstemp(prefix="gansweep-ui-", suffix=".log")
    with os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return UiServer(proc, address(host, port), Path(log), uri)


def wait_ready(server: UiServer, timeout: float = START_TIMEOUT_S) -> None:
    """Until the server answers /health; its last log line in one error if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SpecError(f"the MLflow UI did not start: {last_line(server)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"{server.url}/health", timeout=2) as reply:
            if reply.status == 200:
                return
        time.sleep(0.3)
    raise SpecError(f"the MLflow UI did not answer within {timeout:.0f} s: {last_line(server)}")


def last_line(server: UiServer) -> str:
    """The line of the server's log that says why it stopped (its last error, else its end)."""
    lines = [ln.strip() for ln in server.log.read_text(errors="replace").splitlines()
             if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    found = (errors or lines or ["(no output)"])[-1]
    return mask_secrets(found, server.uri)[:300]


@contextlib.contextmanager
def running(server: UiServer) -> Iterator[UiServer]:
    """The server until the block ends: Ctrl-C, SIGTERM and SIGHUP end it too, and the whole
    process group is stopped either way. Ctrl-C (SIGINT) is caught even where the shell started
    us with it ignored, as a background job is (`launch` catches it the same way); a SIGHUP that
    nohup ignores stays ignored. While the server stops, these signals are ignored, so a second
    one cannot cut the stop short and leave its process group behind."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    caught = [s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
              if not (s == signal.SIGHUP and signal.getsignal(s) == signal.SIG_IGN)]
    old = {s: signal.signal(s, interrupt) for s in caught}
    try:
        yield server
    finally:
        for s in old:  # a second Ctrl-C while it stops must not leave its processes behind
            signal.signal(s, signal.SIG_IGN)
        try:
            stop_server(server)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


def serve_until_stopped(server: UiServer) -> None:
    """Wait for Ctrl-C (KeyboardInterrupt); a server that dies by itself is an error."""
    code = server.proc.wait()
    raise SpecError(f"the MLflow UI stopped by itself (exit {code}): {last_line(server)}")


def stop_server(server: UiServer, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after `grace` seconds; remove
    its log."""
    group = server.proc.pid  # it leads its own group (start_new_session)
    _signal_group(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_alive(server.proc) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_alive(server.proc):
        _signal_group(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=5)
    server.log.unlink(missing_ok=True)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def group_alive(proc: subprocess.Popen) -> bool:
    """Whether a process of `proc`'s group still runs (zombies waiting for a parent to reap
    them do not count: a container's init may never do it)."""
    proc.poll()  # reap the leader
    return bool(group_members(proc.pid))


def group_members(group: int) -> list[int]:
    """The live (not zombie) processes of a process group, read from /proc (elsewhere: the
    group's existence)."""
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(group, 0)
            return [group]
        except ProcessLookupError:
            return []
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
            if int(pgrp) == group and state != "Z":
                found.append(int(stat.parent.name))
    return found
