"""The scheduler: pool sizing (pure), and trial outcomes on a real local Ray."""

from __future__ import annotations

import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.launch import launch
from orchestrator.scheduler import pool_plan
from orchestrator.spec import SweepSpec
from tests.conftest import SYNTHETIC


def _spec(write_spec, text=SYNTHETIC, **replace):
    for old, new in replace.items():
        text = text.replace(old, new)
    return SweepSpec.load(write_spec(text))


def test_pool_is_one_actor_per_gpu_share_or_per_cpu_share(write_spec):
    spec = _spec(write_spec, **{"resources: {cpus_per_trial: 1}":
                                "resources: {cpus_per_trial: 2, gpus_per_trial: 0.5}"})
    assert pool_plan(spec, {"CPU": 16, "GPU": 2}) == (4, {"num_cpus": 2.0, "num_gpus": 0.5})
    assert pool_plan(spec, {"CPU": 4, "GPU": 2}) == (2, {"num_cpus": 2.0, "num_gpus": 0.5})
    assert pool_plan(spec, {"CPU": 7}) == (3, {"num_cpus": 2.0, "num_gpus": 0})


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


def test_orphaned_running_trials_are_failed_not_left_running(ray_local, settings, write_spec):
    from orchestrator.tracking import SweepTracker

    spec = _spec(write_spec)
    tracker = SweepTracker(settings.tracking_uri, "synth", "synth")
    tracker.open_sweep_run(spec.text, "spec.yaml")
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    orphan = study.ask()  # a trial a dead driver left RUNNING, with its run
    run_id = tracker.create_trial_run(orphan.number, {}, 0)
    orphan.set_user_attr("mlflow_run_id", run_id)
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 3
    assert trials[0].user_attrs["fail_reason"] == "driver lost" and stats.done == 3
    run = MlflowClient(settings.tracking_uri).get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["gansweep.reason"] == "driver lost"


def test_a_dead_actor_fails_its_trial_and_a_new_actor_takes_the_rest(ray_local, settings,
                                                                     write_spec):
    # a trial whose process exits at step 3, as if killed; enqueued so that one surely runs
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    spec = _spec(write_spec, **{"trials: 4": "trials: 5",
                                "  y: {type: float, low: -2.0, high: 2.0}":
                                "  y: {type: float, low: -2.0, high: 2.0}\n"
                                "  die_at: {type: categorical, choices: [-1, 3]}"})
    study.enqueue_trial({"x": 0.0, "y": 0.0, "die_at": 3})
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    dead = [t for t in trials if t.params.get("die_at") == 3]
    assert dead and len(trials) == 5 and stats.failed == len(dead)
    for t in dead:
        assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"].startswith("actor lost")
        run = MlflowClient(settings.tracking_uri).get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED" and run.data.tags["gansweep.state"] == "FAIL"
    assert all(t.state == TrialState.COMPLETE for t in trials if t not in dead)


def test_a_nan_objective_fails_the_trial_and_says_so(ray_local, settings, write_spec):
    spec = _spec(write_spec, **{"space:": "fixed: {x: .nan}\nspace:",
                                "  x: {type: float, low: -2.0, high: 2.0}\n": ""})
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    assert stats.failed == 4 and all(t.state == TrialState.FAIL for t in trials)
    assert trials[0].user_attrs["fail_reason"] == "objective eval/loss is nan at step 2"
    run = MlflowClient(settings.tracking_uri).get_run(trials[0].user_attrs["mlflow_run_id"])
    assert run.data.tags["gansweep.reason"] == "objective eval/loss is nan at step 2"
