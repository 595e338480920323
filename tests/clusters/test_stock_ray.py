"""`gansweep submit` to a stock Ray cluster with token auth on, as a user meets it (slow: run by
`make test-cluster`).

The head runs from a second venv holding only `ray[default]` at the pinned version (what
`rayproject/ray` images hold: no torch, optuna, mlflow or gansweep), with RAY_AUTH_MODE=token as
Ray 2.61 will have everywhere. The client is this project's venv with the token in
RAY_AUTH_TOKEN and no RAY_AUTH_MODE, as a user who copied the token from the head has it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import SYNTHETIC, free_port, stop_group, wait_for

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
GANSWEEP = Path(sys.executable).parent / "gansweep"
TOKEN = "0123456789abcdef0123456789abcdef"
SWEEP = SYNTHETIC.replace("name: synth", "name: stock").replace("trials: 4", "trials: 2")


@pytest.fixture(scope="module")
def stock_head(tmp_path_factory):
    """A token-protected Ray head from a venv with nothing but ray[default]."""
    base = tmp_path_factory.mktemp("stock")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-c", str(ROOT / "constraints.txt"),
                    "ray[default]"], check=True, timeout=900)
    missing = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"],
                             capture_output=True)
    assert missing.returncode != 0  # stock: no torch there
    (base / "token").write_text(TOKEN + "\n")
    home = base / "home"
    home.mkdir()
    temp = tempfile.mkdtemp(prefix="stock-")  # short: Ray's socket paths have a length limit
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(base / "token"),
               PATH=f"{venv / 'bin'}:{env['PATH']}")
    port, dashboard = free_port(), free_port()
    agent_ports = [f"--{flag}={free_port()}" for flag in (
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
        "metrics-export-port", "ray-client-server-port")]
    head = subprocess.Popen(
        [str(venv / "bin" / "ray"), "start", "--head", "--block", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
         f"--dashboard-port={dashboard}", f"--temp-dir={temp}", "--disable-usage-stats",
         *agent_ports],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield {"base": base, "home": home, "gcs": f"127.0.0.1:{port}",
               "jobs": f"http://127.0.0.1:{dashboard}"}
    finally:
        stop_group(head)
        shutil.rmtree(temp, ignore_errors=True)


def _client_env(stock_head, token: bool) -> dict[str, str]:
    """This machine's shell: the project venv, RAY_AUTH_MODE unset, the token or not."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["HOME"] = str(stock_head["home"])  # no ~/.ray/auth_token there
    if token:
        env["RAY_AUTH_TOKEN"] = TOKEN
    return env


def _gansweep(stock_head, *args, token=True, cwd=None, timeout=300):
    return subprocess.run([str(GANSWEEP), *args], cwd=cwd, env=_client_env(stock_head, token),
                          capture_output=True, text=True, timeout=timeout)


def test_submit_to_a_stock_token_protected_cluster_installs_the_project_and_the_sweep_ends(
        stock_head, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    project = tmp_path / "project"
    project.mkdir()
    (project / "sweep.yaml").write_text(SWEEP)
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    stores = ["--storage", storage, "--tracking-uri", tracking]
    address = stock_head["jobs"]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    wait_for("the Ray Jobs server", lambda: JobSubmissionClient(address, headers=headers), 90)

    refused = _gansweep(stock_head, "submit", "sweep.yaml", "--address", address, *stores,
                        token=False, cwd=project)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"gansweep: error: --address: {address}: the Ray cluster requires a token and none was "
        f"sent: set RAY_AUTH_TOKEN to the cluster's token (on the head: `ray get-auth-token`), "
        f"or RAY_AUTH_TOKEN_PATH to a file holding it")

    done = _gansweep(stock_head, "submit", "sweep.yaml", "--address", address, *stores,
                     "--checkpoint-root", str(tmp_path / "ck"), cwd=project)
    assert done.returncode == 0, done.stderr
    assert "the job installs gansweep and its" in done.stdout  # said in one line
    # Ray's own CLI sends the token only in token mode: the hint says so
    assert "follow it:  RAY_AUTH_MODE=token ray job logs --address" in done.stdout
    job_id = done.stdout.split("as Ray job ", 1)[1].split()[0]
    jobs = JobSubmissionClient(address, headers=headers)
    status = wait_for("the job to end", lambda: jobs.get_job_status(job_id)
                       if jobs.get_job_status(job_id).is_terminal() else None, 600)
    assert status == JobStatus.SUCCEEDED, jobs.get_job_logs(job_id)[-3000:]
    info = jobs.get_job_info(job_id)
    assert storage not in info.entrypoint and tracking not in info.entrypoint  # env, not argv

    # status from this machine agrees with what the job did
    shown = _gansweep(stock_head, "status", "stock", "--storage", storage, "--json")
    assert shown.returncode == 0, shown.stderr
    assert [t["state"] for t in json.loads(shown.stdout)["trials"]] == ["COMPLETE"] * 2

    # launching it again answers before connecting: the budget is met
    met = _gansweep(stock_head, "launch", "sweep.yaml", "--address", stock_head["gcs"],
                    *stores, "--checkpoint-root", str(tmp_path / "ck"), cwd=project)
    assert met.returncode == 0, met.stderr
    assert "stock: budget met, 2 of 2 trials done; --trials 4 runs 2 more" in met.stderr
    # launch --address sends the token too (RAY_AUTH_MODE unset): with a trial left to run it
    # connects (the stock workers lack gansweep, so no actor starts: that is `submit`'s job);
    # without the token it says in one line what to set
    again = _gansweep(stock_head, "launch", "sweep.yaml", "--address", stock_head["gcs"],
                      *stores, "--checkpoint-root", str(tmp_path / "ck"), "--trials", "3",
                      cwd=project)
    assert again.returncode == 0, again.stderr
    assert "cannot connect" not in again.stderr and "stock: done 2" in again.stdout
    blocked = _gansweep(stock_head, "launch", "sweep.yaml", "--address", stock_head["gcs"],
                        *stores, "--trials", "4", token=False, cwd=project)
    assert blocked.returncode == 2
    last = blocked.stderr.strip().splitlines()[-1]
    assert last.startswith(f"gansweep: error: --address: cannot connect to Ray at "
                           f"{stock_head['gcs']}: ") and "set RAY_AUTH_TOKEN" in last
