"""Bring your own GAN, for real: the example plug-in in examples/custom_trainer (a conditional GAN
on a user-style data loader) checked by `check-trainer`, swept by import path on a real local Ray
with sqlite MLflow and Optuna, found by an entry-point name, resumed after its actor is killed;
and the bad plug-in specs that must be refused before anything is created.

Each test copies the example into its own project folder, as a user's project: neither the
session's Ray workers nor the installed packages know it, so the actors can only import it
because gansweep ships it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import torch
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.actor.checkpoints import TrialCheckpoints
from orchestrator.cli import main
from orchestrator.cluster.plugins import ship_paths
from orchestrator.driver.launch import launch
from orchestrator.spec.sweep import SpecError, SweepSpec
from orchestrator.stores.settings import Settings
from tests.orchestrator.plugin_project import EXAMPLE

SPEC = """\
name: NAME
trainer: TRAINER
dataset: DATASET
objective: {metric: eval/fd, direction: minimize}
budget: {trials: 3, steps: STEPS, eval_every: 20, log_every: 10, eval_samples: 100}
sampler: {name: random, seed: 0}
resources: {cpus_per_trial: 1}
fixed: {width: 32, depth: 1, batch_size: 16}
space:
  lr_g: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}
  loss: {type: categorical, choices: [ns, hinge]}
"""

# Broken variants of the example, as a user might write them by mistake.


def spec_text(name="cgan", trainer="my_gan.cgan:ConditionalGAN",
              dataset="my_gan.data:load_digits", steps=40) -> str:
    return (SPEC.replace("NAME", name).replace("TRAINER", trainer)
            .replace("DATASET", dataset).replace("STEPS", str(steps)))


def stores(tmp_path: Path) -> list[str]:
    return ["--storage", f"sqlite:///{tmp_path}/optuna.db",
            "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
            "--checkpoint-root", str(tmp_path / "checkpoints")]


def trial_runs(client: MlflowClient, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], "tags.`gansweep.role` = 'trial'")










# -- a sweep of the plug-in ------------------------------------------------------------------------
@pytest.mark.cluster  # a plug-in sweep by the CLI, then promote (~30 s): make test-cluster
def test_a_plugin_sweep_by_import_path_completes_logs_everything_and_promotes(
        ray_local, project, tmp_path):
    (project / "sweep.yaml").write_text(spec_text())
    result = CliRunner().invoke(main, ["launch", "sweep.yaml", *stores(tmp_path)])
    assert result.exit_code == 0, result.output + result.stderr
    storage, uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    trials = optuna.load_study(study_name="cgan", storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    client = MlflowClient(uri)
    parent = client.search_runs([client.get_experiment_by_name("cgan").experiment_id],
                                "tags.`gansweep.role` = 'sweep'")[0]
    runs = trial_runs(client, "cgan")
    assert len(runs) == 3
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert {"lr_g", "loss", "width", "depth", "batch_size", "seed"} <= set(run.data.params)
        assert {"train/d_loss", "train/g_loss", "eval/fd", "eval/class_coverage",
                "eval/class_kl", "model/g_params"} <= set(run.data.metrics)
        history = client.get_metric_history(run.info.run_id, "eval/fd")
        assert sorted(m.step for m in history) == [20, 40]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"checkpoints", "samples", "images"} <= artifacts, artifacts
        assert client.list_artifacts(run.info.run_id, "checkpoints")[0].path.endswith("final.pt")
    # the parent run knows the floor of the plug-in's data, as for a built-in dataset
    assert "floor/fd" in parent.data.metrics

    result = CliRunner().invoke(main, ["promote", "cgan", "--model-name", "cgan-g",
                                       *stores(tmp_path)[:4]])
    assert result.exit_code == 0, result.output + result.stderr
    import mlflow

    mlflow.set_tracking_uri(uri)
    g = mlflow.pytorch.load_model("models:/cgan-g@champion")  # needs no my_gan to load
    images = g(torch.randn(5, 33))  # z_dim 32 + the class coordinate
    assert images.shape == (5, 1, 8, 8) and images.abs().max() <= 1


def test_an_entry_point_name_finds_an_installed_plugin(project, tmp_path, monkeypatch):
    site = tmp_path / "site"  # an installed distribution: its code and its dist-info
    site.mkdir()
    shutil.move(project / "my_gan", site / "my_gan")
    info = site / "my_gan_example-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-gan-example\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[gansweep.trainers]\ncgan = my_gan.cgan:ConditionalGAN\n\n"
        "[gansweep.datasets]\nmy-digits = my_gan.data:load_digits\n")
    monkeypatch.syspath_prepend(str(site))
    spec = SweepSpec.parse(spec_text(name="by-name", trainer="cgan", dataset="my-digits")
                           .replace("trials: 3", "trials: 1"))
    assert (spec.trainer_target, spec.dataset_target) == (
        "my_gan.cgan:ConditionalGAN", "my_gan.data:load_digits")
    with pytest.raises(SpecError, match=r"unknown trainer 'cgann'.*\(installed: cgan\)"):
        SweepSpec.parse(spec_text(trainer="cgann"))
    assert ship_paths([spec.trainer_target]) == [str(site / "my_gan")]  # not installed here
    result = CliRunner().invoke(main, ["check-trainer", "cgan", "--dataset", "my-digits",
                                       "-p", "width=32"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("check-trainer cgan on my-digits")


@pytest.mark.parametrize("trainer, dataset, extra, message", [
    ("my_gan.nowhere:Trainer", None, "",
     "trainer: cannot import my_gan.nowhere (for my_gan.nowhere:Trainer): ModuleNotFoundError: "
     "No module named 'my_gan.nowhere'"),
    ("my_gan.cgan:Nothing", None, "",
     "trainer: my_gan.cgan has no attribute 'Nothing' (for my_gan.cgan:Nothing)"),
    ("my_gan.cgan:mlp", None, "",
     "trainer: my_gan.cgan:mlp is not a gansweep trainer: not a class but a function (the "
     "contract: trainers/base.py)"),
    (None, "my_gan.data:nowhere", "",
     "dataset: my_gan.data has no attribute 'nowhere' (for my_gan.data:nowhere)"),
    (None, None, "  dropout: {type: float, low: 0.0, high: 0.5}\n",
     "space.dropout: not a parameter of trainer my_gan.cgan:ConditionalGAN (known: batch_size, "
     "beta1, depth, loss, lr_d, lr_g, width, z_dim)"),
    (None, None, "  depth: {type: int, low: 0, high: 2}\n", "space.depth.low: depth must be >= 1, "
     "got 0"),
])
def test_a_bad_plugin_spec_is_one_line_exit_2_and_creates_nothing(project, tmp_path, trainer,
                                                                  dataset, extra, message):
    text = spec_text(**{k: v for k, v in (("trainer", trainer), ("dataset", dataset)) if v})
    (project / "bad.yaml").write_text(text.replace("depth: 1, ", "") + extra)
    result = CliRunner().invoke(main, ["launch", "bad.yaml", *stores(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"gansweep: error: bad.yaml: {message}"]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


def test_an_objective_a_plugin_does_not_declare_is_refused_before_anything_is_made(project,
                                                                                 tmp_path):
    """A trainer that declares its METRICS gets its objective checked with the spec: a typo'd
    metric no longer trains every trial to fail it at the first evaluation."""
    text = spec_text(trainer="broken_gans:ClaimsAMetric").replace("eval/fd", "eval/sharpnes")
    (project / "bad.yaml").write_text(text)
    result = CliRunner().invoke(main, ["launch", "bad.yaml", *stores(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "gansweep: error: bad.yaml: objective.metric: trainer broken_gans:ClaimsAMetric does not "
        "report 'eval/sharpnes' (it reports eval/sharpness, eval/fd, eval/kid, eval/kid_std, "
        "eval/precision, eval/recall, eval/density, eval/coverage, eval/class_coverage, "
        "eval/class_kl, eval/fid)"]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


@pytest.mark.parametrize("body, message", [
    ("raise SystemExit(0)\n", "SystemExit: 0"),
    ("raise KeyboardInterrupt\n", "KeyboardInterrupt: KeyboardInterrupt"),
    ("import time\ntime.sleep(30)\n", "it did not finish within 1 s"),
])
def test_a_plugin_whose_import_exits_or_hangs_is_one_line_naming_it(project, tmp_path,
                                                                     monkeypatch, body, message):
    monkeypatch.setattr("trainers.registry.IMPORT_TIMEOUT_S", 1.0)
    (project / "odd_gan.py").write_text(body)
    (project / "bad.yaml").write_text(spec_text(trainer="odd_gan:Trainer"))
    result = CliRunner().invoke(main, ["launch", "bad.yaml", *stores(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"gansweep: error: bad.yaml: trainer: cannot import odd_gan (for odd_gan:Trainer): "
        f"{message}".strip()]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


@pytest.mark.parametrize("loader, message", [
    ("ring", "points:ring gave mixture data (Mixture), and trainer my_gan.cgan:ConditionalGAN "
             "trains on image data"),
    ("broken", "points:broken raised OSError: /data/faces: no such folder"),
])
def test_a_plugin_dataset_that_fails_is_refused_before_anything_exists(project, tmp_path,
                                                                       loader, message):
    (project / "points.py").write_text(
        "from trainers import load_dataset\n\n\ndef ring():\n    return load_dataset('ring8')"
        "\n\n\ndef broken():\n    raise OSError('/data/faces: no such folder')\n")
    (project / "bad.yaml").write_text(spec_text(dataset=f"points:{loader}"))
    result = CliRunner().invoke(main, ["launch", "bad.yaml", *stores(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"gansweep: error: bad.yaml: dataset: {message}"]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


@pytest.mark.cluster  # a whole sweep of a shipped plug-in (~16 s): make test-cluster
def test_a_plugin_that_stops_training_fails_its_trial_with_the_reason(ray_local, project,
                                                                      tmp_path):
    spec = SweepSpec.parse(spec_text(name="stalls", trainer="broken_gans:Stalls")
                           .replace("trials: 3", "trials: 1"))
    settings = Settings.resolve(f"sqlite:///{tmp_path}/optuna.db",
                                f"sqlite:///{tmp_path}/mlflow.db",
                                checkpoint_root=str(tmp_path / "checkpoints"))
    assert launch(spec, settings, notice=lambda m: None).failed == 1
    trial = optuna.load_study(study_name="stalls", storage=settings.storage).get_trials()[0]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"].startswith(
        "RuntimeError: train_for(10) moved step from 0 to 0: it must train n steps")


@pytest.mark.cluster  # a whole sweep whose first trial hangs (~25 s): make test-cluster
def test_a_chunk_that_never_returns_is_stopped_and_the_sweep_goes_on(ray_local, project,
                                                                    tmp_path):
    text = spec_text(name="hangs", trainer="broken_gans:Hangs").replace(
        "trials: 3", "trials: 2, chunk_timeout: 15s").replace(
        "space:", "enqueue: [{lr_g: 1.0e-3, loss: ns}]\nspace:")
    spec = SweepSpec.parse(text)
    settings = Settings.resolve(f"sqlite:///{tmp_path}/optuna.db",
                                f"sqlite:///{tmp_path}/mlflow.db",
                                checkpoint_root=str(tmp_path / "checkpoints"))
    notices: list[str] = []
    start = time.time()
    stats = launch(spec, settings, notice=notices.append)
    took = time.time() - start
    trials = optuna.load_study(study_name="hangs", storage=settings.storage).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].user_attrs["fail_reason"].startswith("no progress for 15 s at step 20")
    assert stats.failed == 1 and stats.done == 1 and took < 90
    assert any(n.startswith("trial 0: no progress for 15 s at step 20; its actor is stopped")
               for n in notices)
    client = MlflowClient(settings.tracking_uri)
    runs = {r.data.tags["gansweep.trial"]: r for r in trial_runs(client, "hangs")}
    assert runs["0"].info.status == "FAILED"
    steps = [m.step for m in client.get_metric_history(runs["0"].info.run_id, "train/d_loss")]
    assert steps == [10, 20]  # its first chunk, kept


@pytest.mark.cluster  # a sweep whose only trial hangs, ended by budget.time (~25 s)
def test_budget_time_ends_a_sweep_whose_chunk_hangs_on_time(ray_local, project, tmp_path):
    text = spec_text(name="hangs-timed", trainer="broken_gans:Hangs").replace(
        "trials: 3", "trials: 1, time: 8s").replace(
        "space:", "enqueue: [{lr_g: 1.0e-3, loss: ns}]\nspace:")
    settings = Settings.resolve(f"sqlite:///{tmp_path}/optuna.db",
                                f"sqlite:///{tmp_path}/mlflow.db",
                                checkpoint_root=str(tmp_path / "checkpoints"))
    notices: list[str] = []
    started: list[float] = []
    stats = launch(SweepSpec.parse(text), settings, notice=notices.append,
                   on_started=lambda: started.append(time.time()))
    took = time.time() - started[0]  # budget.time counts from the first actor ready
    [trial] = optuna.load_study(study_name="hangs-timed", storage=settings.storage).get_trials()
    assert trial.state == TrialState.FAIL and stats.failed == 1
    assert trial.user_attrs["fail_reason"] == "timeout"
    assert any("still training after budget.time; its actor is stopped" in n for n in notices)
    assert took < 8 + 5 + 20  # the budget, the grace, and the actor's start and the page


# -- resume ----------------------------------------------------------------------------------------
@pytest.mark.cluster  # an actor killed mid-trial (~20 s): make test-cluster
def test_a_killed_actor_resumes_a_plugin_trial_bitwise_from_its_checkpoint(ray_local, project,
                                                                            tmp_path):
    spec = SweepSpec.parse(spec_text(name="ft-plugin", trainer="broken_gans:Slow", steps=60)
                           .replace("trials: 3", "trials: 1"))
    settings = Settings.resolve(f"sqlite:///{tmp_path}/optuna.db",
                                f"sqlite:///{tmp_path}/mlflow.db",
                                checkpoint_root=str(tmp_path / "checkpoints"))
    client = MlflowClient(settings.tracking_uri)
    done: dict = {}
    driver = threading.Thread(target=lambda: done.update(
        stats=launch(spec, settings, notice=lambda m: None)))
    driver.start()
    deadline, run = time.time() + 120, None
    while run is None and time.time() < deadline:  # trial 0 once it has checkpointed step 20
        runs = [r for r in trial_runs(client, "ft-plugin") if "gansweep.pid" in r.data.tags] \
            if client.get_experiment_by_name("ft-plugin") else []
        if runs and TrialCheckpoints(settings.checkpoint_root, "ft-plugin", 0).steps():
            run = runs[0]
        time.sleep(0.05)
    assert run is not None, "trial 0 never checkpointed"
    os.kill(int(run.data.tags["gansweep.pid"]), signal.SIGKILL)
    driver.join(timeout=120)
    assert not driver.is_alive() and done["stats"].resumed == 1

    trial = optuna.load_study(study_name="ft-plugin", storage=settings.storage).get_trials()[0]
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["attempt"] == 2
    assert len(trial_runs(client, "ft-plugin")) == 1  # the same run continued
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["gansweep.attempt"] == "2" and int(tags["gansweep.resumed_from_step"]) >= 20
    history = client.get_metric_history(run.info.run_id, "train/d_loss")
    assert sorted(m.step for m in history) == list(range(10, 61, 10))  # every step once
    # bitwise what the trial gives without a kill: the global RNGs came back with the checkpoint
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == uninterrupted(trial)


def uninterrupted(trial) -> list[float]:
    """train/d_loss every 10 steps of the trial, trained straight here as its actor would
    (without Slow's sleep, which changes nothing else)."""
    from my_gan.cgan import ConditionalGAN

    from orchestrator.driver.data import prepare_dataset
    from orchestrator.stores.settings import default_cache_dir
    from trainers.base import build_config
    from trainers.rng import seed_everything

    data = prepare_dataset("my_gan.data:load_digits", "broken_gans:Slow", default_cache_dir(),
                           100).payload
    params = {"width": 32, "depth": 1, "batch_size": 16, **trial.params}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on a 1-CPU actor
    try:
        seed_everything(trial.user_attrs["seed"])
        trainer = ConditionalGAN(build_config(ConditionalGAN, params), data,
                                 trial.user_attrs["seed"], "cpu")
        losses = []
        for step in range(10, 61, 10):
            losses.append(trainer.train_for(10)["train/d_loss"])
            if step % 20 == 0:
                trainer.evaluate()
        return losses
    finally:
        torch.set_num_threads(threads)


def test_the_example_spec_loads_from_its_folder_wherever_gansweep_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)  # not the example's folder
    for name in [m for m in sys.modules if m.startswith("my_gan")]:
        monkeypatch.delitem(sys.modules, name)
    spec = SweepSpec.load(EXAMPLE / "sweep.yaml")
    assert (spec.trainer_target, spec.dataset_target) == ("my_gan.cgan:ConditionalGAN",
                                                          "my_gan.data:load_digits")
    assert Path(sys.modules["my_gan"].__file__).parent == EXAMPLE / "my_gan"
