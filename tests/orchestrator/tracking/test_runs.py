"""A trial run's contents as MLflow entities, on a real sqlite store: metrics past the last step
a run has, params and end tags as the driver and the actor both write them, and an earlier run's
params read back as the space's values."""

from __future__ import annotations

import pytest

from orchestrator.actor.runlog import metric_rows, not_logged
from orchestrator.errors import SpecError
from orchestrator.spec.sweep import SweepSpec
from orchestrator.tracking.runs import logged_steps, metrics, params_from_run
from tests.conftest import SYNTHETIC


def test_only_metrics_past_the_last_step_the_run_has_are_written_again(tracker):
    run_id = tracker.create_trial_run(0)
    tracker.client.log_batch(run_id, metrics=metrics(metric_rows(
        [(1, {"loss": 1.0}), (2, {"loss": 0.9})])))
    assert logged_steps(tracker.client, run_id) == {"loss": 2}
    fresh = not_logged(metric_rows([(2, {"loss": 0.0, "eval/fd": 5.0}), (3, {"loss": 0.8})]),
                       logged_steps(tracker.client, run_id))
    assert [(m.key, m.step) for m in fresh] == [("eval/fd", 2), ("loss", 3)]
    tracker.client.log_batch(run_id, metrics=metrics(fresh))
    history = tracker.client.get_metric_history(run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.9), (3, 0.8)]
    assert logged_steps(tracker.client, run_id) == {"loss": 3, "eval/fd": 2}


def test_a_trial_closed_by_the_driver_gets_the_params_its_actor_would_have_written(tracker):
    run_id = tracker.create_trial_run(0)
    tracker.end_trial_run(run_id, "FAIL", "actor lost: ActorDiedError", {"x": 0.5, "seed": 3})
    run = tracker.client.get_run(run_id)
    assert run.data.params == {"x": "0.5", "seed": "3"} and run.info.status == "FAILED"
    assert run.data.tags["gansweep.state"] == "FAIL"
    assert run.data.tags["gansweep.reason"] == "actor lost: ActorDiedError"


def test_an_earlier_runs_params_come_back_typed_as_the_space_says(tracker, write_spec):
    spec = SweepSpec.load(write_spec(SYNTHETIC, "s.yaml"))
    run_id = tracker.create_trial_run(0)
    tracker.log_params(run_id, {"x": 0.25, "y": -1, "sleep_s": 0.0})
    assert params_from_run(tracker.uri, run_id, spec) == {"x": 0.25, "y": -1.0}
    with pytest.raises(SpecError, match="--enqueue-from: no MLflow run 'nope'"):
        params_from_run(tracker.uri, "nope", spec)
