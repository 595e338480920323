"""Nothing lost: real kills of real processes (actors, drivers), signals, divergence, corrupt
checkpoints and an unreachable tracking server.

Drivers run as `python -m orchestrator.cli.app` subprocesses with their own local Ray, so that they
can be SIGKILLed and interrupted; the actor-kill test drives the sweep from a thread on the
session's Ray and SIGKILLs the actor's process by the PID its run is tagged with.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.actor.checkpoints import TrialCheckpoints
from orchestrator.cli import main
from orchestrator.driver.launch import launch
from orchestrator.spec.sweep import SpecError, SweepSpec

ROOT = Path(__file__).resolve().parents[3]

SLOW_SYNTHETIC = """\
name: ft
dataset: none
trainer: synthetic
objective: {metric: eval/loss, direction: minimize}
budget: {trials: TRIALS, steps: STEPS, eval_every: 10, log_every: 2}
sampler: {name: random, seed: 0}
resources: {cpus_per_trial: 1}
fixed: {sleep_s: SLEEP}
health: false  # recovery is the subject: every trial must complete, even one stuck at its floor
space:
  x: {type: float, low: -2.0, high: 2.0}
  y: {type: float, low: -2.0, high: 2.0}
"""


def _spec_text(trials=4, steps=30, sleep=0.1) -> str:
    return (SLOW_SYNTHETIC.replace("TRIALS", str(trials)).replace("STEPS", str(steps))
            .replace("SLEEP", str(sleep)))


def _wait_for(what: str, check, timeout: float = 90.0, every: float = 0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _stores(tmp_path: Path) -> list[str]:
    return ["--storage", f"sqlite:///{tmp_path}/optuna.db",
            "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]


def _cli(tmp_path: Path, *args: str) -> subprocess.Popen:
    """`gansweep ARGS` as its own process (own session, so leftovers can be cleaned up)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = open(tmp_path / f"cli-{time.time_ns()}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], cwd=tmp_path,
                            env=env, stdout=out, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 180.0) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever the driver left behind
    return proc.returncode, err


def _study(tmp_path: Path) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name="ft", storage=f"sqlite:///{tmp_path}/optuna.db")
    except Exception:  # not created yet
        return None


def _trial_runs(tracking_uri: str) -> list:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("ft")
    if experiment is None:  # the driver has not created it yet
        return []
    return client.search_runs([experiment.experiment_id], "tags.`gansweep.role` = 'trial'")


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def _assert_every_step_once(client: MlflowClient, run_id: str, steps: int) -> None:
    """A run's history as if its trial had never been interrupted."""
    assert sorted(_steps(client, run_id, "train/loss")) == list(range(2, steps + 1, 2))
    assert sorted(_steps(client, run_id, "eval/loss")) == list(range(10, steps + 1, 10))


def _running_with_checkpoints(tmp_path: Path, root: Path, at_least: int, newest: int = 0):
    """A RUNNING trial that has `at_least` checkpoints (the newest at step `newest`, if
    given, so that it surely has chunks left): (number, steps)."""
    study = _study(tmp_path)
    if study is None:
        return None
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        steps = TrialCheckpoints(str(root), "ft", t.number).steps()
        if len(steps) >= at_least and (not newest or steps[-1] == newest):
            return t.number, steps
    return None


@pytest.mark.cluster  # a sweep whose actor is killed mid-trial (~20 s): make test-cluster
def test_a_killed_actor_resumes_its_trial_from_its_checkpoint_on_a_new_actor(
        ray_local, settings, write_spec):
    # 6 s trials: an actor tags its run once its logging thread has imported MLflow, while
    # the first chunk trains; the kill must come while trial 0 still has chunks to go
    spec = SweepSpec.load(write_spec(_spec_text(trials=3, steps=60, sleep=0.1)))
    client = MlflowClient(settings.tracking_uri)
    done: dict = {}
    driver = threading.Thread(target=lambda: done.update(stats=launch(spec, settings,
                                                                      notice=lambda m: None)))
    driver.start()

    def victim():  # trial 0 once it has checkpointed, with the PID its actor tagged on its run
        runs = [r for r in _trial_runs(settings.tracking_uri)
                if r.data.tags.get("gansweep.trial") == "0" and "gansweep.pid" in r.data.tags]
        if runs and TrialCheckpoints(settings.checkpoint_root, "ft", 0).steps():
            return runs[0]
    run = _wait_for("trial 0 to checkpoint", victim)
    os.kill(int(run.data.tags["gansweep.pid"]), signal.SIGKILL)
    driver.join(timeout=120)
    assert not driver.is_alive() and done["stats"].resumed == 1

    trials = optuna.load_study(study_name="ft", storage=settings.storage).get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    assert trials[0].user_attrs["attempt"] == 2
    runs = [r for r in _trial_runs(settings.tracking_uri)
            if r.data.tags["gansweep.trial"] == "0"]
    assert len(runs) == 1  # the same run continued, no second one
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["gansweep.attempt"] == "2" and int(tags["gansweep.resumed_from_step"]) >= 10
    assert tags["gansweep.pid"] != run.data.tags["gansweep.pid"]
    _assert_every_step_once(client, run.info.run_id, 60)


@pytest.mark.cluster  # a driver subprocess killed and resumed (~1 min): make test-cluster
def test_sigkill_of_the_driver_then_resume_completes_the_budget_once(tmp_path):
    (tmp_path / "ft.yaml").write_text(_spec_text(trials=6, steps=30, sleep=0.1))
    root = tmp_path / "checkpoints"
    driver = _cli(tmp_path, "launch", "ft.yaml", *_stores(tmp_path))
    try:
        _wait_for("the first trial", lambda: _running_with_checkpoints(tmp_path, root, 0))
        from orchestrator.driver.lease import DriverLease

        with pytest.raises(SpecError, match=f"is being driven by pid {driver.pid} "):
            DriverLease(f"sqlite:///{tmp_path}/optuna.db", "ft").acquire()
        number, steps = _wait_for("a running trial to checkpoint step 10",
                                  lambda: _running_with_checkpoints(tmp_path, root, 1, 10))
        os.kill(driver.pid, signal.SIGKILL)  # it has 20 steps (2 s) left: surely unfinished
        driver.wait(timeout=30)
    finally:
        _finish(driver)
    left = [t for t in _study(tmp_path).get_trials() if t.state == TrialState.RUNNING]
    assert left, "the kill should leave trials RUNNING"

    code, err = _finish(_cli(tmp_path, "resume", "ft", *_stores(tmp_path)))
    assert code == 0, err
    trials = _study(tmp_path).get_trials()
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    client, runs = MlflowClient(tracking), _trial_runs(tracking)
    assert sorted(int(r.data.tags["gansweep.trial"]) for r in runs) == list(range(6))
    assert all(r.info.status == "FINISHED" for r in runs)
    by_number = {int(r.data.tags["gansweep.trial"]): r for r in runs}
    resumed = by_number[number].data.tags
    assert resumed["gansweep.attempt"] == "2"
    status = CliRunner().invoke(main, ["status", "ft", "--json", "--storage",
                                       f"sqlite:///{tmp_path}/optuna.db"])
    assert {r["number"]: r["attempt"] for r in json.loads(status.output)["trials"]}[number] == 2
    assert int(resumed["gansweep.resumed_from_step"]) >= steps[-1]  # not from scratch
    for r in runs:
        _assert_every_step_once(client, r.info.run_id, 30)
    sweeps = client.search_runs([runs[0].info.experiment_id], "tags.`gansweep.role` = 'sweep'")
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"


@pytest.mark.cluster  # a driver subprocess interrupted and resumed (~1 min): make test-cluster
def test_sigint_checkpoints_and_exits_then_resume_falls_back_past_a_corrupt_checkpoint(
        tmp_path):
    (tmp_path / "ft.yaml").write_text(_spec_text(trials=3, steps=40, sleep=0.1))
    root = tmp_path / "checkpoints"
    driver = _cli(tmp_path, "launch", "ft.yaml", *_stores(tmp_path))
    try:
        _wait_for("a trial with checkpoints at steps 10 and 20",
                  lambda: _running_with_checkpoints(tmp_path, root, 2, 20))
        os.kill(driver.pid, signal.SIGINT)  # it checkpoints at 30 and stops, 10 steps short
        code, err = _finish(driver, timeout=60)
    finally:
        _finish(driver)
    assert code == 128 + signal.SIGINT and "gansweep resume ft" in err, err
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking)
    assert not [r for r in _trial_runs(tracking) if r.info.status == "RUNNING"]
    suspended = [t for t in _study(tmp_path).get_trials() if t.state == TrialState.RUNNING]
    assert suspended
    for t in suspended:  # its in-flight chunk finished and checkpointed before the exit
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "KILLED" and run.data.tags["gansweep.state"] == "RUNNING"
        last_eval = max(_steps(client, run.info.run_id, "eval/loss"), default=0)
        if last_eval:
            assert TrialCheckpoints(str(root), "ft", t.number).steps()[-1] == last_eval

    victim = next(t for t in suspended
                  if len(TrialCheckpoints(str(root), "ft", t.number).steps()) == 2)
    older, newest = TrialCheckpoints(str(root), "ft", victim.number).steps()
    path = root / "ft" / f"trial-{victim.number:04d}" / f"step-{newest:08d}.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a torn write

    code, err = _finish(_cli(tmp_path, "resume", "ft", *_stores(tmp_path)))
    assert code == 0, err
    trials = _study(tmp_path).get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    run = client.get_run(victim.user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["gansweep.resumed_from_step"] == str(older)
    for r in _trial_runs(tracking):
        _assert_every_step_once(client, r.info.run_id, 40)


def test_an_unreachable_tracking_server_is_refused_before_any_study_exists(tmp_path):
    (tmp_path / "ft.yaml").write_text(_spec_text())
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, err = _finish(_cli(tmp_path, "launch", "ft.yaml",
                             "--storage", f"sqlite:///{tmp_path}/optuna.db",
                             "--tracking-uri", f"http://127.0.0.1:{port}"), timeout=60)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"gansweep: error: --tracking-uri: cannot reach the MLflow tracking "
                          f"server at http://127.0.0.1:{port}")
    assert not (tmp_path / "optuna.db").exists()


def test_one_driver_per_sweep_a_dead_or_silent_drivers_lease_is_taken_over(tmp_path):
    from orchestrator.driver.lease import DriverLease
    from orchestrator.layout import LEASE_ATTR

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="ft", storage=storage)
    first, second = (DriverLease(storage, study.study_name) for _ in range(2))
    first.acquire()
    with pytest.raises(SpecError, match="is being driven by pid"):
        second.acquire()
    first.release()
    second.acquire()  # released: free to take
    second.release()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    study.set_user_attr(LEASE_ATTR, {"id": "x", "host": socket.gethostname(), "pid": int(dead),
                                     "renewed": time.time()})
    third = DriverLease(storage, study.study_name)
    third.acquire()  # its process is gone: no need to wait
    third._stop.set()  # now silent, as if its machine vanished
    study.set_user_attr(LEASE_ATTR, {**study.user_attrs[LEASE_ATTR], "host": "elsewhere",
                                     "renewed": time.time() - 3600})
    fourth = DriverLease(storage, study.study_name)
    fourth.acquire()  # silent for an hour: expired
    fourth.release()
    assert study.user_attrs[LEASE_ATTR] is None


@pytest.mark.cluster  # a two-node ray.cluster_utils.Cluster: make test-cluster
def test_a_trial_on_a_removed_node_finishes_on_the_other_node(tmp_path):
    from ray.cluster_utils import Cluster

    (tmp_path / "ft.yaml").write_text(_spec_text(trials=2, steps=80, sleep=0.1))
    root = tmp_path / "checkpoints"
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        driver = _cli(tmp_path, "launch", "ft.yaml", "--address", cluster.address,
                      *_stores(tmp_path))
        try:
            number, _ = _wait_for("a running trial to checkpoint",
                                  lambda: _running_with_checkpoints(tmp_path, root, 1))
            tracking = f"sqlite:///{tmp_path}/mlflow.db"
            run = _wait_for("its run to say where it runs", lambda: next(
                (r for r in _trial_runs(tracking) if r.data.tags["gansweep.trial"] == str(number)
                 and "gansweep.ray_node_id" in r.data.tags), None))
            node_id = run.data.tags["gansweep.ray_node_id"]
            lost = next(n for n in workers if n.node_id == node_id)
            cluster.remove_node(lost)
            code, err = _finish(driver, timeout=180)
        finally:
            _finish(driver)
    finally:
        cluster.shutdown()
    assert code == 0, err
    trials = _study(tmp_path).get_trials()
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)
    client = MlflowClient(tracking)
    tags = client.get_run(run.info.run_id).data.tags
    survivor = next(n for n in workers if n is not lost).node_id
    assert tags["gansweep.ray_node_id"] == survivor and tags["gansweep.attempt"] == "2"
    _assert_every_step_once(client, run.info.run_id, 80)
