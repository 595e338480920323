"""Ray for one launch: connected or started on a thread of its own, and the actor pool made as
soon as it is up, while the driver opens MLflow and the study (orchestrator/driver/launch.py).

A local `ray.init` takes seconds, and each actor as long again to import torch; the parent run
and the study take seconds too. `RayStart` overlaps them: on its thread it runs `init_ray`,
plans the pool from the cluster (`plan_pool`) and creates the actors, whose `ready()` imports
what a first chunk needs (ACTOR_PRELOAD, orchestrator/boundary.py; a Ray started here has its
workers import it as it starts them); the scheduler adopts the `ActorPool`. MLflow is imported
by each actor's logging thread while its first chunk trains. At the end, `end_soon` lets that
thread shut a Ray this process started down while the driver writes the sweep's report.
"""

from __future__ import annotations

import contextlib
import os
import reprlib
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.boundary import ACTOR_PRELOAD
from orchestrator.errors import SpecError, describe
from orchestrator.stores.redact import mask_secrets, redact_uri
from orchestrator.stores.uris import uri_scheme

if TYPE_CHECKING:
    from orchestrator.cluster.pool import ActorPool
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.stores.settings import Settings


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + SETTINGS


def check_address(address: str | None, timeout_s: float = 10.0) -> None:
    """Refuse, within `timeout_s`, a Ray address where no Ray head answers: `ray.init` retries
    for ten minutes and more, whether nothing listens there or another service does (the
    dashboard's 8265 given for the GCS port). A head's GCS, like the Ray Client server, speaks
    gRPC: sent HTTP/2's preface, it answers with a SETTINGS frame."""
    if not address or address in ("local", "auto"):
        return
    try:
        _reach_head(address, timeout_s)
    except SpecError as exc:
        raise SpecError(_masked(str(exc), address)) from None


def _masked(text: str, address: str) -> str:
    """`text` with no credential of `address` in it (ray://user:PASSWORD@host:port, with or
    without its scheme), the address itself shown redacted."""
    if not address:
        return text
    uri = address if "://" in address else f"ray://{address}"
    shown = redact_uri(uri)[len(uri) - len(address):]
    return mask_secrets(text.replace(address, shown), uri)


def _reach_head(address: str, timeout_s: float) -> None:
    host, sep, port = address.split("://", 1)[-1].rpartition("@")[2].rpartition(":")
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


def init_ray(address: str | None, preload: list[str] | None = None) -> bool:
    """Connect to `address` (with the user's Ray token, when there is one), or start a local
    Ray whose workers import the modules `preload` as they start (Ray starts idle workers
    before it returns, so they import while the driver goes on); True when this call started
    it."""
    import ray

    from orchestrator.cluster.raytoken import HOW_TO_SET, auth_problem, use_token_auth

    if ray.is_initialized():
        return False
    if address and address != "local":
        use_token_auth()
    try:
        local = address in (None, "", "local")
        ray.init(address=address, include_dashboard=False, logging_level="ERROR",
                 configure_logging=True, log_to_driver=True,
                 _system_config={"preload_python_modules": preload} if local and preload else None)
    except Exception as exc:  # unreachable, not a Ray head, or a token refused
        problem = auth_problem(exc)
        if problem is None:
            problem = describe(exc)
            if os.environ.get("RAY_AUTH_MODE") != "token":
                problem += f" (if the cluster uses token auth: {HOW_TO_SET})"
        raise SpecError(_masked(f"--address: cannot connect to Ray at {address}: {problem}",
                                address or "")) from None
    return True


def plan_pool(spec: SweepSpec, settings: Settings, notice: Callable[[str], None]):
    """Size the actor pool from the cluster; refuse what cannot work on it."""
    import ray

    from orchestrator.cluster.plugins import actor_runtime_env
    from orchestrator.cluster.pool import pool_plan

    cluster = ray.cluster_resources()
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    n_workers, actor_options = pool_plan(spec, nodes)
    runtime_env = actor_runtime_env(spec)
    if runtime_env is not None:  # the user's plug-in modules, uploaded for every actor
        actor_options = {**actor_options, "runtime_env": runtime_env}
    if n_workers < 1:
        unit = "CPU" if actor_options["num_gpus"] == 0 or any(
            n.get("GPU", 0) >= min(spec.resources.gpus_per_trial, 1) for n in nodes) else "GPU"
        need = actor_options[f"num_{unit.lower()}s"]
        largest = max((n.get(unit, 0) for n in nodes), default=0)
        raise SpecError(f"{Path(spec.path).name or spec.name}: resources.{unit.lower()}s_per_trial"
                        f": a trial needs {need:g} {unit}s, and no node of the Ray cluster has "
                        f"that many (the largest has {largest:g}; in all {cluster.get('CPU', 0):g}"
                        f" CPUs and {cluster.get('GPU', 0):g} GPUs)")
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
    if uri_scheme(tracking_uri) in ("sqlite", "file"):
        return (f"--tracking-uri: {redact_uri(tracking_uri)} is a file on this machine, and the "
                f"Ray cluster spans {n_hosts} hosts whose actors log there: run an MLflow "
                f"tracking server every node reaches and pass --tracking-uri http://HOST:5000 (see "
                f"clusters/README.md)"), None
    if "://" not in checkpoint_root:
        return None, (f"checkpoints go to {checkpoint_root} on each node: with {n_hosts} hosts "
                      f"that must be a shared mount, or use --checkpoint-root s3://... so that "
                      f"a trial can resume on another node")
    return None, None


class RayStart:
    """`init_ray`, `plan_pool` and the pool's actors, on a thread of their own."""

    def __init__(self, spec: SweepSpec, settings: Settings, payload: Any):
        import ray

        self.started = False  # this process started Ray: it shuts it down
        self._notices: list[str] = []
        self._pool: ActorPool | None = None
        self._error: BaseException | None = None
        self._planned = threading.Event()  # the cluster checked against the spec, or why not
        self._made = threading.Event()  # the pool made, or why not
        self._end = threading.Event()  # `end_soon`: Ray may go
        local = settings.address in (None, "", "local")
        if not local:  # a cluster that refuses us does so before anything is made
            self.started = init_ray(settings.address)
        elif not ray.is_initialized() and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _exit_on_sigterm)  # as ray.init does on this thread
        self._thread = threading.Thread(target=self._start, args=(spec, settings, payload, local),
                                        name="ray-start", daemon=True)
        self._thread.start()

    def check(self, notice: Callable[[str], None]) -> None:
        """Wait until Ray is up and the cluster is checked against the spec (a trial fits a
        node, --require-gpu, stores every node reaches); raises why not. The stores are made
        after this, so that a cluster that cannot run the sweep leaves nothing behind."""
        self._planned.wait()
        self._say(notice)
        if self._error is not None:
            raise self._error

    def _say(self, notice: Callable[[str], None]) -> None:
        for line in self._notices:
            notice(line)
        self._notices = []

    def pool(self, notice: Callable[[str], None]) -> ActorPool:
        """The pool once made (what planning it had to say, said here); raises why Ray or the
        pool could not start."""
        self._made.wait()
        self._say(notice)
        if self._error is not None:
            raise self._error
        return self._pool

    def end_soon(self) -> None:
        """The sweep is over and its actors flushed: Ray may go now, while the driver writes
        the sweep's report."""
        self._end.set()

    def end(self) -> None:
        """Ray as it was before the launch: the actors gone, a Ray started here shut down."""
        self._end.set()
        self._thread.join()

    def _start(self, spec: SweepSpec, settings: Settings, payload: Any, local: bool) -> None:
        """Runs until `end`: Ray's local processes die with the thread that started them (Linux
        ties their parent-death signal to that thread), so this one shuts Ray down itself."""
        import ray

        from orchestrator.cluster.pool import ActorPool

        try:
            if local:
                self.started = init_ray(settings.address, list(ACTOR_PRELOAD))
            size, options = plan_pool(spec, settings, self._notices.append)
            self._planned.set()
            self._pool = ActorPool(size, options, ray.put(payload), settings.tracking_uri)
        except BaseException as exc:  # raised on the driver's thread by `check` or `pool()`
            self._error = exc
        finally:
            self._planned.set()
            self._made.set()
        self._end.wait()
        if self.started:
            ray.shutdown()
        elif self._pool is not None:  # a cluster's: the actors not handed to a scheduler,
            self._pool.take(0)  # or held for a phase that did not run
            self._pool.let_go()


def _exit_on_sigterm(signum, frame) -> None:
    sys.exit(signum)
