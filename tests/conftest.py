"""Shared fixtures: a real local Ray (2 CPUs), per-test sqlite stores for Optuna and MLflow, and a
real PostgreSQL server for the tests that need a database server.

Ray runs with the defaults users get: Ray 2.60 turns token auth on for a cluster `ray.init()`
starts (the token in ~/.ray/auth_token), so every test that starts Ray meets it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@pytest.fixture(autouse=True)
def _sigterm_ends_the_session():
    """SIGTERM (a CI timeout, `timeout make test`) ends the session as Ctrl-C does, fixtures torn
    down: PostgreSQL and Ray stopped. Set before every test: `ray.init` and an in-process
    launch put in handlers that only fail the test at hand, and the session went on."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(autouse=True)
def _no_store_variables(monkeypatch):
    """Each test starts without the store variables: `mlflow.set_tracking_uri` in one test sets
    MLFLOW_TRACKING_URI for every later one in the process, which a default store would read."""
    for var in ("MLFLOW_TRACKING_URI", "GANSWEEP_STORAGE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout: float = 60.0):
    """`check()`'s first truthy result; its exceptions count as not yet."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(Exception):
            found = check()
            if found:
                return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group `proc` leads, SIGKILL after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1 (sqlite backend, artifacts served by it), its files
    in tmp_path: server.db and server-artifacts/."""
    import sys

    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
         "--port", str(port), "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
         "--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "mlflow-server.log", "w"),
        start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        import requests

        wait_for("the MLflow server", lambda: requests.get(f"{uri}/health", timeout=1).ok)
        yield uri
    finally:
        stop_group(proc)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server (Debian's binaries) in a temp folder, on a free port."""
    found = shutil.which("initdb") or next(iter(sorted(glob.glob(
        "/usr/lib/postgresql/*/bin/initdb"))), None)
    assert found, "PostgreSQL's initdb is needed (apt install postgresql)"
    bindir = Path(found).resolve().parent
    base = Path(tempfile.mkdtemp(prefix="gansweep-pg-"))  # not under pytest's 0700 folders
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = base / "data"
    subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                              "-U", "gansweep"], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(as_user + [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                                       "-c", "listen_addresses=127.0.0.1", "-k", str(base)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    import psycopg

    try:
        deadline = time.time() + 60
        while True:  # until it answers
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user="gansweep",
                                     dbname="postgres", autocommit=True) as conn:
                    conn.execute("CREATE DATABASE optuna")
                break
            except psycopg.OperationalError:
                assert time.time() < deadline, "timed out waiting for PostgreSQL"
                time.sleep(0.2)
        yield f"postgresql://gansweep@127.0.0.1:{port}/optuna"
    finally:
        stop_group(proc)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_tables(tmp_path_factory) -> Path:
    """An empty MLflow sqlite store, its tables made once per session: MLflow takes seconds to
    make them, and `settings` gives each test a copy (tests of a store's creation, the CLI's
    and the end-to-end ones, start from no file as users do)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-tables") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def settings(tmp_path: Path, mlflow_tables: Path):
    from orchestrator.stores.settings import Settings

    shutil.copyfile(mlflow_tables, tmp_path / "mlflow.db")
    return Settings.resolve(storage=f"sqlite:///{tmp_path}/optuna.db",
                            tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                            checkpoint_root=str(tmp_path / "checkpoints"))


SYNTHETIC = """\
name: synth
dataset: none
trainer: synthetic
objective: {metric: eval/loss, direction: minimize}
budget: {trials: 4, steps: 4, eval_every: 2, log_every: 1}
sampler: {name: tpe, seed: 0}
resources: {cpus_per_trial: 1}
space:
  x: {type: float, low: -2.0, high: 2.0}
  y: {type: float, low: -2.0, high: 2.0}
"""

RING8_TINY = """\
name: ring8-tiny
dataset: ring8
trainer: mlp_gan
objective: {metric: eval/reverse_kl, direction: minimize}
budget: {trials: 4, steps: 60, eval_every: 20, log_every: 10}
sampler: {name: tpe, seed: 0}
resources: {gpus_per_trial: 1, cpus_per_trial: 1}
fixed: {g_width: 32, d_width: 32, batch_size: 64}
space:
  g_depth: {type: int, low: 1, high: 2}
  lr_g: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}
  loss: {type: categorical, choices: [ns, wgan_gp]}
  gp_weight: {type: float, low: 1.0, high: 10.0, log: true, when: {loss: wgan_gp}}
"""


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec file under tmp_path: write_spec(TEXT, name='x.yaml')."""
    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write
