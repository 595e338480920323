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
    spec = _spec(write_spec)
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    study.ask()  # a trial a dead driver left RUNNING
    stats = launch(spec, settings, notice=lambda m: None)
    states = [t.state for t in optuna.load_study(study_name="synth",
                                                 storage=settings.storage).get_trials()]
    assert states == [TrialState.FAIL] + [TrialState.COMPLETE] * 3
    assert stats.done == 3
