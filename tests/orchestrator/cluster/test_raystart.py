"""Cluster sweeps, for real: several Ray nodes with fake GPUs and one MLflow tracking server,
a PostgreSQL study storage, a sweep submitted as a Ray Job; and the checks that refuse what
cannot work on a cluster."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.cli import main
from orchestrator.cluster.raystart import shared_store_problems
from orchestrator.driver.launch import launch
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.settings import Settings
from tests.conftest import free_port, stop_group, wait_for

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent

GPU_SWEEP = """\
name: gpus
dataset: none
trainer: synthetic
objective: {metric: eval/loss, direction: minimize}
budget: {trials: 8, steps: 12, eval_every: 4, log_every: 2}
sampler: {name: random, seed: 0}
resources: {gpus_per_trial: 1, cpus_per_trial: 0.5}
fixed: {sleep_s: 0.1}
space:
  x: {type: float, low: -2.0, high: 2.0}
"""


# -- pure decisions ------------------------------------------------------------------------------
def test_a_file_tracking_store_is_refused_on_several_hosts_and_fine_on_one():
    error, _ = shared_store_problems(3, "sqlite:////data/mlflow.db", "s3://b/ckpt")
    assert error.startswith("--tracking-uri: sqlite:////data/mlflow.db is a file on this machine")
    assert "http://HOST:5000" in error
    assert shared_store_problems(3, "./mlruns", "s3://b/ckpt")[0] is not None
    assert shared_store_problems(1, "sqlite:////data/mlflow.db", "/ckpt") == (None, None)
    error, warning = shared_store_problems(2, "http://mlflow:5000", "/local/ckpt")
    assert error is None and "shared mount" in warning
    assert shared_store_problems(2, "https://mlflow:5000", "gs://b/ckpt") == (None, None)


def test_require_gpu_refuses_a_cluster_without_gpus(ray_local, tmp_path, write_spec,
                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_spec(GPU_SWEEP)
    result = CliRunner().invoke(main, ["launch", str(path), "--require-gpu"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "gansweep: error: --require-gpu: the Ray cluster has no GPU (resources: 2 CPUs); start "
        "GPU workers, or drop --require-gpu to train on CPU"]
    # refused before the study or any run is made (the MLflow store is created meanwhile,
    # while Ray starts: orchestrator/cluster/raystart.py)
    assert not (tmp_path / "optuna.db").exists()
    client = MlflowClient("sqlite:///mlflow.db")
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_without_gpus_trials_fall_back_to_cpu_with_one_notice(ray_local, settings, write_spec):
    notices: list[str] = []
    spec = SweepSpec.load(write_spec(GPU_SWEEP.replace("trials: 8", "trials: 2")))
    stats = launch(spec, settings, notice=notices.append)
    assert stats.done == 2 and notices == ["no GPU in the Ray cluster: trials run on CPU"]
    for run in MlflowClient(settings.tracking_uri).search_runs(
            [MlflowClient(settings.tracking_uri).get_experiment_by_name("gpus").experiment_id],
            "tags.`gansweep.role` = 'trial'"):
        assert run.data.tags["gansweep.device"] == "cpu" and run.data.tags["gansweep.gpu_ids"] == ""


@pytest.mark.parametrize("args, expected", [
    ([], "gansweep: error: --storage: a submitted sweep needs a study storage"),
    (["--storage", "postgresql://u@db/optuna"],
     "gansweep: error: --tracking-uri: a submitted sweep needs an MLflow tracking server"),
])
def test_submit_refuses_stores_the_cluster_cannot_share(tmp_path, write_spec, monkeypatch, args,
                                                        expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = write_spec(GPU_SWEEP)
    result = CliRunner().invoke(main, ["submit", str(path), "--address", "http://h:8265", *args])
    assert result.exit_code == 2 and result.stderr.startswith(expected), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- real clusters and servers -------------------------------------------------------------------
@pytest.mark.cluster  # a three-node Ray cluster: make test-cluster
def test_two_gpu_nodes_one_tracking_server_distinct_gpus_every_run_complete(tmp_path,
                                                                            mlflow_server):
    from ray.cluster_utils import Cluster

    (tmp_path / "gpus.yaml").write_text(GPU_SWEEP)
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0})
    try:
        nodes = [cluster.add_node(num_cpus=1, num_gpus=2) for _ in range(2)]  # fake GPUs
        cluster.wait_for_nodes()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "launch", "gpus.yaml",
             "--address", cluster.address, "--tracking-uri", mlflow_server,
             "--storage", f"sqlite:///{tmp_path}/optuna.db", "--require-gpu"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="gpus", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 8
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("gpus").experiment_id],
                              "tags.`gansweep.role` = 'trial'")
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    # each trial's time on its actor: from its start there to its last metrics
    placed = [(r.data.tags["gansweep.ray_node_id"], r.data.tags["gansweep.gpu_ids"],
               float(r.data.tags["gansweep.started_at"]) * 1000,
               max(m.timestamp for m in client.get_metric_history(r.info.run_id, "eval/loss")))
              for r in runs]
    assert {p[0] for p in placed} == {n.node_id for n in nodes}  # trials on both nodes
    assert {p[1] for p in placed} <= {"0", "1"}  # one GPU each, as Ray assigned it
    for i, a in enumerate(placed):  # trials running at the same time never share a GPU
        for b in placed[i + 1:]:
            if a[2] < b[3] and b[2] < a[3]:
                assert a[:2] != b[:2], (a, b)
    assert all(r.data.tags["gansweep.device"] == "cpu" for r in runs)  # fake GPUs: no CUDA


@pytest.mark.cluster  # the shared study database of a cluster (~12 s): make test-cluster
def test_a_postgresql_study_storage_drives_a_sweep_and_status_reads_it(ray_local, tmp_path,
                                                                      postgres_url, write_spec):
    spec = SweepSpec.load(write_spec(GPU_SWEEP.replace("trials: 8", "trials: 3")))
    settings = Settings.resolve(postgres_url, f"sqlite:///{tmp_path}/mlflow.db",
                                checkpoint_root=str(tmp_path / "ck"))
    stats = launch(spec, settings, notice=lambda m: None)
    assert stats.done == 3
    result = CliRunner().invoke(main, ["status", "gpus", "--storage", postgres_url, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["trials"]
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    assert all(r["run_id"] for r in rows)


USER_TRAINER = """\
from trainers.synthetic import SyntheticTrainer


class Sleepy(SyntheticTrainer):
    \"\"\"A user's own trainer (the synthetic one, by import path).\"\"\"
"""


@pytest.mark.cluster  # starts a Ray head with its dashboard: make test-cluster
def test_submit_runs_a_plugin_sweep_as_a_ray_job_and_status_works_from_here(tmp_path):
    """The user's project folder is the job's working_dir (its dataset plug-in comes with it);
    the trainer plug-in lives outside it and goes with --py-module."""
    port, dashboard = free_port(), free_port()
    # the head's `python` is the project's venv, as the cluster configs' setup commands make it
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    temp = tempfile.mkdtemp(prefix="rayjob-")  # short: Ray's socket paths have a length limit
    # every port its own: the session's Ray in this process already holds Ray's default agent
    # ports, and a job needs the head's dashboard agent
    agent_ports = [f"--{flag}={free_port()}" for flag in (
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
        "metrics-export-port", "ray-client-server-port")]
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--temp-dir={temp}", *agent_ports],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    project, shared = tmp_path / "project", tmp_path / "shared" / "user_gans"
    project.mkdir()
    shared.mkdir(parents=True)
    (shared / "__init__.py").write_text(USER_TRAINER)
    (project / "user_data.py").write_text("def nothing():\n    return None\n")
    (project / "sweep.yaml").write_text(
        GPU_SWEEP.replace("name: gpus", "name: submitted").replace("trials: 8", "trials: 2")
        .replace("trainer: synthetic", "trainer: user_gans:Sleepy")
        .replace("dataset: none", "dataset: user_data:nothing"))
    storage = f"sqlite:///{tmp_path}/optuna.db"
    try:
        from ray.job_submission import JobStatus, JobSubmissionClient

        from orchestrator.cluster.raytoken import auth_headers  # `ray start` may turn token auth on

        jobs = wait_for("the Ray Jobs server", lambda: JobSubmissionClient(
            address, headers=auth_headers() or None), 90)
        with contextlib.chdir(project):
            result = CliRunner().invoke(main, [
                "submit", "sweep.yaml", "--address", address, "--py-module", str(shared),
                "--no-install",  # the head runs in this venv: gansweep is there
                "--storage", storage, "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
                "--checkpoint-root", str(tmp_path / "ck")], env=env)
        assert result.exit_code == 0, result.output
        job_id = result.output.split("as Ray job ", 1)[1].split()[0]
        # (after "RAY_AUTH_MODE=token " when a token went with the job)
        assert f"ray job logs --address {address} --follow {job_id}" in result.output
        status = wait_for("the job to end", lambda: jobs.get_job_status(job_id)
                           if jobs.get_job_status(job_id).is_terminal() else None, 180)
        assert status == JobStatus.SUCCEEDED, jobs.get_job_logs(job_id)[-3000:]
    finally:
        stop_group(head)
        shutil.rmtree(temp, ignore_errors=True)
    result = CliRunner().invoke(main, ["status", "submitted", "--storage", storage, "--json"])
    assert result.exit_code == 0, result.output
    assert [r["state"] for r in json.loads(result.output)["trials"]] == ["COMPLETE"] * 2
