"""A real sweep end to end: local Ray (2 CPUs), MLflow on sqlite, Optuna on sqlite."""

from __future__ import annotations

import json

import mlflow
import optuna
import pytest
import torch
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.cli import main
from orchestrator.driver.launch import launch
from orchestrator.registry.promote import promote
from orchestrator.spec.sweep import SweepSpec
from tests.conftest import RING8_TINY, SYNTHETIC

EVAL_STEPS = [20, 40, 60]


@pytest.fixture(scope="module")
def ring8_sweep(ray_local, tmp_path_factory):
    """One 4-trial ring8 sweep on 2 actors, shared by the tests of this module."""
    from orchestrator.stores.settings import Settings

    root = tmp_path_factory.mktemp("ring8")
    spec_path = root / "ring8-tiny.yaml"
    spec_path.write_text(RING8_TINY)
    settings = Settings.resolve(f"sqlite:///{root}/optuna.db", f"sqlite:///{root}/mlflow.db",
                                checkpoint_root=str(root / "checkpoints"))
    stats = launch(SweepSpec.load(spec_path), settings, notice=lambda m: None)
    return stats, settings, root


def _runs(settings, role):
    client = MlflowClient(settings.tracking_uri)
    exp = client.get_experiment_by_name("ring8-tiny")
    return client, client.search_runs([exp.experiment_id], f"tags.`gansweep.role` = '{role}'")


def test_sweep_completes_every_trial_in_optuna(ring8_sweep):
    stats, settings, _ = ring8_sweep
    study = optuna.load_study(study_name="ring8-tiny", storage=settings.storage)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert stats.done == 4 and stats.steps_trained == 4 * 60
    for t in trials:  # intermediate values at every eval, the run id in user attrs
        assert sorted(t.intermediate_values) == EVAL_STEPS
        assert t.user_attrs["mlflow_run_id"] and isinstance(t.user_attrs["seed"], int)
        assert ("gp_weight" in t.params) == (t.params["loss"] == "wgan_gp")


def test_mlflow_holds_one_parent_and_a_nested_child_per_trial(ring8_sweep):
    _, settings, _ = ring8_sweep
    client, parents = _runs(settings, "sweep")
    _, children = _runs(settings, "trial")
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert "sweep/best_value" in parent.data.metrics
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "spec")] == [
        "spec/ring8-tiny.yaml"]
    sweep_files = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert {"optuna/history.png", "optuna/intermediate_values.png",
            "optuna/trials.csv"} <= sweep_files
    study = optuna.load_study(study_name="ring8-tiny", storage=settings.storage)
    by_run = {t.user_attrs["mlflow_run_id"]: t for t in study.get_trials()}
    # the parent run is the sweep's page: params, a description naming the best, figures
    assert parent.data.params["objective"] == "eval/reverse_kl (minimize)"
    assert parent.data.params["trainer"] == "mlp_gan"
    best = study.best_trial
    assert parent.data.tags["gansweep.best_run_id"] == best.user_attrs["mlflow_run_id"]
    assert f"**Best**: [trial-{best.number:04d}]" in parent.data.tags["mlflow.note.content"]
    assert "optuna/figures.html" in sweep_files
    assert "contact_sheet.png" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    for run in children:
        tags, trial = run.data.tags, by_run[run.info.run_id]
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.run_name == f"trial-{trial.number:04d}"
        assert tags["gansweep.state"] == "COMPLETE" and run.info.status == "FINISHED"
        assert tags["gansweep.sweep"] == "ring8-tiny" and tags["gansweep.trial"] == str(
            trial.number)
        assert "gansweep.node" in tags and "gansweep.gpu_ids" in tags
        assert run.data.params["lr_g"] == str(trial.params["lr_g"])
        assert run.data.params["seed"] == str(trial.user_attrs["seed"])
        for key in ("eval/modes", "eval/high_quality", "eval/reverse_kl"):
            history = client.get_metric_history(run.info.run_id, key)
            assert sorted(m.step for m in history) == EVAL_STEPS
        assert client.get_metric_history(run.info.run_id, "eval/reverse_kl")[-1].value == (
            pytest.approx(trial.intermediate_values[60]))
        train = client.get_metric_history(run.info.run_id, "train/d_loss")
        assert sorted(m.step for m in train) == list(range(10, 61, 10))  # log_every cadence
        images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
        assert sum(p.endswith(".png") for p in images) == 4  # one per eval, the first at 0 too
        # every trial, the last two too, whose exports were still in flight in the actors'
        # helper processes when their final chunks returned and the sweep ended
        assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == [
            "checkpoints/final.pt"]
        models = client.search_logged_models([run.info.experiment_id],
                                             f"source_run_id = '{run.info.run_id}'")
        name = run.info.run_name
        assert sorted(m.name for m in models) == [f"{name}-best", f"{name}-last"]


def test_checkpoints_keep_the_last_two_per_trial(ring8_sweep):
    _, _, root = ring8_sweep
    folders = sorted((root / "checkpoints" / "ring8-tiny").iterdir())
    assert [f.name for f in folders] == [f"trial-{n:04d}" for n in range(4)]
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == ["step-00000040.pt",
                                                            "step-00000060.pt"]
        state = torch.load(folder / "step-00000060.pt", weights_only=True)
        assert state["step"] == 60 and state["run_id"]


def test_promote_registers_champion_once_and_it_generates_points(ring8_sweep):
    _, settings, _ = ring8_sweep
    study = optuna.load_study(study_name="ring8-tiny", storage=settings.storage)
    first = promote(study, settings.tracking_uri, "ring8-gen")
    again = promote(study, settings.tracking_uri, "ring8-gen")
    assert first.created and first.alias_moved and first.trial == study.best_trial.number
    assert (again.version, again.created, again.alias_moved) == (first.version, False, False)
    client = MlflowClient(settings.tracking_uri)
    assert len(client.search_model_versions("name = 'ring8-gen'")) == 1
    assert str(client.get_model_version_by_alias("ring8-gen", "champion").version) == first.version
    mlflow.set_tracking_uri(settings.tracking_uri)
    generator = mlflow.pytorch.load_model("models:/ring8-gen@champion")
    z_dim = 2  # the trainer default, not searched in this spec
    points = generator(torch.randn(100, z_dim))
    assert points.shape == (100, 2) and torch.isfinite(points).all()


def test_cli_status_and_best_read_the_sweep(ring8_sweep):
    _, settings, _ = ring8_sweep
    runner = CliRunner()
    status = runner.invoke(main, ["status", "ring8-tiny", "--storage", settings.storage, "--json"])
    assert status.exit_code == 0, status.output
    rows = json.loads(status.stdout)["trials"]
    assert [r["state"] for r in rows] == ["COMPLETE"] * 4
    best = runner.invoke(main, ["best", "ring8-tiny", "--storage", settings.storage, "--json"])
    assert best.exit_code == 0, best.output
    found = json.loads(best.stdout)
    study = optuna.load_study(study_name="ring8-tiny", storage=settings.storage)
    assert found["number"] == study.best_trial.number and found["value"] == study.best_value
    assert found["run_id"] == study.best_trial.user_attrs["mlflow_run_id"]
    table = runner.invoke(main, ["status", "ring8-tiny", "--storage", settings.storage])
    assert table.exit_code == 0 and "COMPLETE" in table.stdout


@pytest.mark.cluster  # two launches of a sweep (~15 s): make test-cluster
def test_launching_again_continues_the_same_study_and_parent_run(ray_local, settings,
                                                                 write_spec):
    spec = SweepSpec.load(write_spec(SYNTHETIC))
    assert launch(spec, settings, notice=lambda m: None).done == 4
    notices = []
    assert launch(spec, settings, notice=notices.append) is None  # budget met: nothing to do
    assert any("budget met" in n for n in notices)
    stats = launch(spec.with_trials(6), settings, notice=lambda m: None)
    assert stats.done == 6
    study = optuna.load_study(study_name="synth", storage=settings.storage)
    assert [t.number for t in study.get_trials()] == list(range(6))
    client = MlflowClient(settings.tracking_uri)
    exp = client.get_experiment_by_name("synth")
    parents = client.search_runs([exp.experiment_id], "tags.`gansweep.role` = 'sweep'")
    children = client.search_runs([exp.experiment_id], "tags.`gansweep.role` = 'trial'")
    assert len(parents) == 1 and len(children) == 6
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}


@pytest.mark.cluster  # two launches on a journal study (~13 s): make test-cluster
def test_a_journal_file_holds_the_study_across_launches_and_for_status(ray_local, tmp_path,
                                                                       write_spec, monkeypatch):
    from orchestrator.stores.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings.resolve(storage="optuna.journal",
                                tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                                checkpoint_root=str(tmp_path / "checkpoints"))
    assert settings.storage == str(tmp_path / "optuna.journal")  # resume may run elsewhere
    spec = SweepSpec.load(write_spec(SYNTHETIC))
    assert launch(spec, settings, notice=lambda m: None).done == 4
    assert launch(spec.with_trials(6), settings, notice=lambda m: None).done == 6
    runner = CliRunner()
    status = runner.invoke(main, ["status", "synth", "--storage", "optuna.journal", "--json"])
    assert status.exit_code == 0, status.output
    rows = json.loads(status.stdout)["trials"]
    assert [r["number"] for r in rows] == list(range(6))
    assert [r["state"] for r in rows] == ["COMPLETE"] * 6
    client = MlflowClient(settings.tracking_uri)
    children = client.search_runs([client.get_experiment_by_name("synth").experiment_id],
                                  "tags.`gansweep.role` = 'trial'")
    assert sorted(int(c.data.tags["gansweep.trial"]) for c in children) == list(range(6))
    missing = runner.invoke(main, ["status", "synth", "--storage", "other.journal"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert not (tmp_path / "other.journal").exists()


def _ray_processes_of(driver_pid: int) -> list[str]:
    """Live processes of the Ray session a driver with pid `driver_pid` started (its session
    folder's name ends with that pid)."""
    import re
    from pathlib import Path

    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if re.search(rf"session_[0-9_-]+_{driver_pid}\b", cmdline):
            found.append(cmdline[:120])
    return found


@pytest.mark.cluster  # the CLI's whole sweep with its own Ray (~36 s): make test-cluster
def test_the_command_starts_its_own_ray_exports_every_generator_and_leaves_no_ray_behind(
        tmp_path):
    """`gansweep launch` as a user runs it, no Ray up: it starts a local Ray on a thread of its
    own (Ray's processes die with the thread that started them, so that thread lives until the
    sweep ends), every finished trial's generators are exported by the helper actors before the
    command exits, and the Ray it started is gone once it has."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from orchestrator.layout import AT_BEST, AT_LAST, model_name

    spec = tmp_path / "ring8.yaml"
    spec.write_text(RING8_TINY.replace("trials: 4", "trials: 2").replace(
        "steps: 60, eval_every: 20, log_every: 10", "steps: 20, eval_every: 20, log_every: 10"))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    log = tmp_path / "launch.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "launch", str(spec), "--storage",
             f"sqlite:///{tmp_path}/optuna.db", "--tracking-uri", uri, "--checkpoint-root",
             str(tmp_path / "checkpoints")], cwd=tmp_path, env=env, stdout=out, stderr=out)
        ray_seen, deadline = False, time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            ray_seen = ray_seen or bool(_ray_processes_of(proc.pid))  # its own Ray, running
            time.sleep(0.5)
    if proc.poll() is None:
        proc.kill()
    assert proc.wait() == 0, log.read_text()[-2000:]
    assert ray_seen
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("ring8-tiny").experiment_id
    runs = client.search_runs([experiment], "tags.`gansweep.role` = 'trial'")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        assert "gansweep.finish_error" not in run.data.tags
        names = {m.name for m in client.search_logged_models(
            experiment_ids=[experiment], filter_string=f"source_run_id = '{run.info.run_id}'")}
        assert names == {model_name(run.info.run_name, at) for at in (AT_BEST, AT_LAST)}
    deadline = time.monotonic() + 15
    while _ray_processes_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ray_processes_of(proc.pid) == []


@pytest.mark.cluster  # a whole CLI sweep of two failing trials (~10 s): make test-cluster
def test_a_sweep_in_which_no_trial_completed_exits_1_and_says_so(ray_local, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synth.yaml").write_text(SYNTHETIC.replace("trials: 4", "trials: 2").replace(
        "resources:", "fixed: {fail_at: 1}\nresources:"))  # every trial fails at step 1
    result = CliRunner().invoke(main, ["launch", "synth.yaml"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "gansweep: synth: no trial completed (2 failed, 0 pruned): `gansweep status synth` "
        "says why")
    assert "next: gansweep best" not in result.output


@pytest.mark.cluster  # two whole CLI launches side by side (~25 s): make test-cluster
def test_two_first_launches_at_the_same_instant_one_runs_the_other_is_refused_by_the_lease(
        tmp_path):
    """Two `gansweep launch` of a new sweep in an empty folder, started together: both make
    mlflow.db and optuna.db at once (MLflow's table creation races); one runs the sweep, the
    other is refused in the lease's words, never a store error or a traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "spec.yaml").write_text(SYNTHETIC.replace("trials: 4", "trials: 2"))
    gansweep = str(Path(sys.executable).parent / "gansweep")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # each its own Ray
    procs = [subprocess.Popen([gansweep, "launch", "spec.yaml"], cwd=tmp_path, text=True,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    done = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert sorted(code for code, _, _ in done) == [0, 2], done
    _, _, refused = next(d for d in done if d[0] == 2)
    last = refused.strip().splitlines()[-1]
    assert last.startswith("gansweep: error: sweep 'synth' is being driven by pid "), refused
    assert "Traceback" not in refused and len(refused.strip().splitlines()) <= 2, refused
    study = optuna.load_study(study_name="synth", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2  # no ghost trial


@pytest.mark.cluster  # a whole CLI sweep (~10 s): make test-cluster
def test_the_first_launch_makes_its_folder_a_project_every_subfolder_sees(ray_local, tmp_path,
                                                                         monkeypatch):
    from orchestrator.stores.project import PROJECT_FILE

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SYNTHETIC.replace("trials: 4", "trials: 1"))
    first = CliRunner().invoke(main, ["launch", "spec.yaml"])
    assert first.exit_code == 0, first.output
    assert (tmp_path / PROJECT_FILE).is_file()
    assert f"the stores are in {tmp_path} (optuna.db, mlflow.db" in first.stderr
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    listed = CliRunner().invoke(main, ["status"])
    assert "synth" in listed.output and "1 trials" in listed.output, listed.output
    again = CliRunner().invoke(main, ["launch", "../spec.yaml", "--trials", "2"])
    assert again.exit_code == 0 and "the stores are in" not in again.stderr
    assert not (tmp_path / "sub" / "optuna.db").exists()  # the project's, not the subfolder's


def test_a_sweep_left_running_relaunched_on_another_tracking_store_is_one_line(tmp_path):
    import optuna

    from orchestrator.driver.launch import check_same_sweep
    from orchestrator.layout import RUN_ATTR
    from orchestrator.spec.sweep import SpecError
    from orchestrator.tracking.tracker import SweepTracker

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="synth", storage=storage)
    trial = study.ask()  # left RUNNING by a driver that stopped, its run in another store
    trial.set_user_attr(RUN_ATTR, "0123456789abcdef0123456789abcdef")
    tracker = SweepTracker(f"sqlite:///{tmp_path}/other.db", "synth", "synth")
    with pytest.raises(SpecError, match=r"^--tracking-uri: trial 0 of sweep 'synth' is left "
                                        r"running in MLflow run 0123456789abcdef0123456789abcdef"
                                        r", which sqlite:///.*other.db does not hold: the sweep "
                                        r"ran with another tracking store; give that one$"):
        check_same_sweep("synth", storage, tracker)
