"""The scheduler: pool sizing (pure), and trial outcomes on a real local Ray."""

from __future__ import annotations

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.driver.launch import launch
from orchestrator.driver.scheduler import pool_plan
from orchestrator.spec.sweep import SweepSpec
from tests.conftest import SYNTHETIC


def _spec(write_spec, text=SYNTHETIC, **replace):
    for old, new in replace.items():
        text = text.replace(old, new)
    return SweepSpec.load(write_spec(text))


def test_pool_is_one_actor_per_gpu_share_or_per_cpu_share(write_spec):
    spec = _spec(write_spec, **{"resources: {cpus_per_trial: 1}":
                                "resources: {cpus_per_trial: 2, gpus_per_trial: 0.5}"})
    assert pool_plan(spec, [{"CPU": 16, "GPU": 2}]) == (4, {"num_cpus": 2.0, "num_gpus": 0.5})
    assert pool_plan(spec, [{"CPU": 4, "GPU": 2}]) == (2, {"num_cpus": 2.0, "num_gpus": 0.5})
    assert pool_plan(spec, [{"CPU": 7}]) == (3, {"num_cpus": 2.0, "num_gpus": 0})
    # a CPU head with no GPU holds no GPU actor; CPUs on a GPU node are shared with its GPU
    assert pool_plan(spec, [{"CPU": 0}, {"CPU": 16}, {"CPU": 16, "GPU": 1}]) == (
        2, {"num_cpus": 2.0, "num_gpus": 0.5})


def test_gpu_shares_are_planned_device_by_device(write_spec):
    spec = _spec(write_spec, **{"resources: {cpus_per_trial: 1}":
                                "resources: {cpus_per_trial: 1, gpus_per_trial: 0.3}"})
    one_gpu_nodes = [{"CPU": 8, "GPU": 1} for _ in range(8)]
    # 8 GPUs / 0.3 would say 26; each one-GPU node holds 3 actors of 0.3, so 24 fit
    assert pool_plan(spec, one_gpu_nodes)[0] == 24
    assert pool_plan(spec, [{"CPU": 32, "GPU": 8}])[0] == 24  # a share never spans two GPUs
    assert pool_plan(spec, [{"CPU": 2, "GPU": 8}])[0] == 2  # CPUs are the limit here


def test_a_trial_that_raises_fails_alone_and_says_why(ray_local, settings, write_spec):
    spec = _spec(write_spec, **{"  y: {type: float, low: -2.0, high: 2.0}":
                                "  y: {type: float, low: -2.0, high: 2.0}\n"
                                "  fail_at: {type: categorical, choices: [-1, 3]}",
                                "trials: 4": "trials: 6"})
    stats = launch(spec, settings, notice=lambda m: None)
    study = optuna.load_study(study_name="synth", storage=settings.storage)
    trials = study.get_trials()
    bad = [t for t in trials if t.params["fail_at"] == 3]
    good = [t for t in trials if t.params["fail_at"] == -1]
    assert bad and good and stats.failed == len(bad) and stats.done == len(good)
    for t in bad:  # failed in its second chunk, after one report at step 2
        assert t.state == TrialState.FAIL and list(t.intermediate_values) == [2]
        assert t.user_attrs["fail_reason"] == "RuntimeError: synthetic failure at step 3"
    assert all(t.state == TrialState.COMPLETE for t in good)
    client = MlflowClient(settings.tracking_uri)
    for t in bad:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED" and run.data.tags["gansweep.state"] == "FAIL"
        assert run.data.tags["gansweep.reason"] == t.user_attrs["fail_reason"]
        traceback = client.download_artifacts(run.info.run_id, "errors/traceback.txt")
        assert "synthetic failure at step 3" in open(traceback).read()


def test_a_trial_left_running_by_a_dead_driver_resumes_in_its_own_run(ray_local, settings,
                                                                     write_spec):
    from orchestrator.tracking.tracker import SweepTracker

    spec = _spec(write_spec)
    tracker = SweepTracker(settings.tracking_uri, "synth", "synth")
    tracker.open_sweep_run(spec.text, "spec.yaml")
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    orphan = study.ask()  # a trial a dead driver left RUNNING, with its run
    run_id = tracker.create_trial_run(orphan.number)
    orphan.set_user_attr("mlflow_run_id", run_id)
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4  # the budget, not 5
    assert trials[0].user_attrs["attempt"] == 2 and stats.done == 4 and stats.resumed == 1
    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["gansweep.attempt"] == "2"
    runs = client.search_runs([run.info.experiment_id], "tags.`gansweep.role` = 'trial'")
    assert sorted(r.data.tags["gansweep.trial"] for r in runs) == ["0", "1", "2", "3"]


def test_a_run_the_driver_made_but_never_recorded_is_reused_on_resume(
        ray_local, settings, write_spec):
    # The driver died after making trial 0's run and before recording its id on the trial;
    # trial 1 had been asked and its run never made. Resume: no trial gets a second run.
    from orchestrator.tracking.tracker import SweepTracker

    spec = _spec(write_spec)
    tracker = SweepTracker(settings.tracking_uri, "synth", "synth")
    tracker.open_sweep_run(spec.text, "spec.yaml")
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    made, _never_started = study.ask(), study.ask()
    run_id = tracker.create_trial_run(made.number)  # and no user attr
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4 and stats.resumed == 2
    assert trials[made.number].user_attrs["mlflow_run_id"] == run_id
    client = MlflowClient(settings.tracking_uri)
    runs = client.search_runs([client.get_run(run_id).info.experiment_id],
                              "tags.`gansweep.role` = 'trial'")
    by_trial = {}
    for r in runs:
        by_trial.setdefault(r.data.tags["gansweep.trial"], []).append(r)
    assert sorted(by_trial) == ["0", "1", "2", "3"]
    assert all(len(found) == 1 for found in by_trial.values())  # one run per trial
    assert by_trial["0"][0].info.status == "FINISHED"
    assert by_trial["0"][0].data.tags["gansweep.attempt"] == "2"
    for t in trials:
        assert client.get_run(t.user_attrs["mlflow_run_id"]).data.tags["gansweep.trial"] == (
            str(t.number))


def _launch_with_a_dying_trial(write_spec, settings, trials: int, retries: int, die_at: int):
    """A sweep whose first trial (enqueued, so that one surely runs) exits its process at step
    `die_at` on every attempt; the others may too (die_at is in the space)."""
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    spec = _spec(write_spec, **{"trials: 4": f"trials: {trials}",
                                "space:": f"max_retries: {retries}\nspace:",
                                "  y: {type: float, low: -2.0, high: 2.0}":
                                "  y: {type: float, low: -2.0, high: 2.0}\n"
                                f"  die_at: {{type: categorical, choices: [-1, {die_at}]}}"})
    study.enqueue_trial({"x": 0.0, "y": 0.0, "die_at": die_at})
    return launch(spec, settings, notice=lambda m: None)


@pytest.mark.cluster  # actors lost three times over (~15 s): make test-cluster
def test_a_trial_whose_actor_keeps_dying_fails_after_max_retries(ray_local, settings,
                                                                 write_spec):
    stats = _launch_with_a_dying_trial(write_spec, settings, trials=5, retries=1, die_at=3)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    dead = [t for t in trials if t.params.get("die_at") == 3]
    assert dead and len(trials) == 5 and stats.failed == len(dead)
    client = MlflowClient(settings.tracking_uri)
    for t in dead:  # attempt 1 dies at 3, attempt 2 resumes from step 2 and dies at 3 again
        assert t.state == TrialState.FAIL and t.user_attrs["attempt"] == 2
        assert t.user_attrs["fail_reason"] == ("actor lost: ActorDiedError (2 times; "
                                               "max_retries is 1)")
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED" and run.data.tags["gansweep.state"] == "FAIL"
        assert run.data.tags["gansweep.resumed_from_step"] == "2"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
        assert steps == [1, 2]  # each step once, though steps 1-2 were logged before a death
    assert all(t.state == TrialState.COMPLETE for t in trials if t not in dead)


def test_a_trial_whose_actor_dies_at_once_gets_one_failed_run_with_its_params(
        ray_local, settings, write_spec):
    # the actor dies before its first chunk returns, maybe before its logging thread wrote
    # the run: the driver ends the one run there is (or makes it) and writes the params
    _launch_with_a_dying_trial(write_spec, settings, trials=2, retries=0, die_at=1)
    dead = optuna.load_study(study_name="synth", storage=settings.storage).trials[0]
    assert dead.state == TrialState.FAIL and dead.user_attrs["fail_reason"].startswith(
        "actor lost")
    client = MlflowClient(settings.tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "tags.`gansweep.trial` = '0'")
    assert [r.info.run_id for r in runs] == [dead.user_attrs["mlflow_run_id"]]
    assert runs[0].info.status == "FAILED" and runs[0].data.tags["gansweep.state"] == "FAIL"
    assert runs[0].data.params == {"x": "0.0", "y": "0.0", "die_at": "1",
                                   "seed": str(dead.user_attrs["seed"])}


def test_a_trial_that_diverges_fails_with_reason_diverged_and_its_step(ray_local, settings,
                                                                       write_spec):
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    spec = _spec(write_spec, **{"  y: {type: float, low: -2.0, high: 2.0}":
                                "  y: {type: float, low: -2.0, high: 2.0}\n"
                                "  nan_at: {type: categorical, choices: [-1, 3]}"})
    study.enqueue_trial({"x": 0.0, "y": 0.0, "nan_at": 3})
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    bad = [t for t in trials if t.params["nan_at"] == 3]
    assert bad and stats.failed == len(bad) and stats.done == 4 - len(bad)
    client = MlflowClient(settings.tracking_uri)
    for t in bad:
        assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == "diverged"
        assert t.user_attrs["diverged_step"] == 3
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED" and run.data.tags["gansweep.reason"] == "diverged"
        assert run.data.tags["gansweep.diverged_step"] == "3"
        history = client.get_metric_history(run.info.run_id, "train/loss")
        assert [m.step for m in history][-1] == 3 and str(history[-1].value) == "nan"
    assert all(t.state == TrialState.COMPLETE for t in trials if t not in bad)


def test_a_nan_objective_fails_the_trial_and_says_so(ray_local, settings, write_spec):
    spec = _spec(write_spec, **{"eval/loss": "eval/missing"})
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    assert stats.failed == 4 and all(t.state == TrialState.FAIL for t in trials)
    assert trials[0].user_attrs["fail_reason"] == "objective eval/missing is None at step 2"
    run = MlflowClient(settings.tracking_uri).get_run(trials[0].user_attrs["mlflow_run_id"])
    assert run.data.tags["gansweep.reason"] == "objective eval/missing is None at step 2"


def test_spec_storage_sets_where_checkpoints_go_and_how_many_stay(ray_local, tmp_path,
                                                                  write_spec):
    from click.testing import CliRunner

    from orchestrator.cli import main

    path = write_spec(SYNTHETIC.replace("budget: {trials: 4, steps: 4, eval_every: 2",
                                        "budget: {trials: 2, steps: 8, eval_every: 2")
                      + f"storage: {{checkpoints: {tmp_path}/ck, keep_checkpoints: 3}}\n")
    result = CliRunner().invoke(main, ["launch", str(path),
                                       "--storage", f"sqlite:///{tmp_path}/optuna.db",
                                       "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"])
    assert result.exit_code == 0, result.output
    for trial in ("trial-0000", "trial-0001"):
        assert sorted(p.name for p in (tmp_path / "ck" / "synth" / trial).iterdir()) == [
            "step-00000004.pt", "step-00000006.pt", "step-00000008.pt"]
