"""The driver's MLflow writes on a real sqlite store: the sweep's parent run and trial runs."""

from __future__ import annotations

from orchestrator.tracking.tracker import SweepTracker


def test_a_sweep_launched_again_reuses_its_parent_run(tracker):
    again = SweepTracker(tracker.uri, "exp", "s")
    assert again.open_sweep_run("name: s", "spec.yaml") == tracker.parent_run_id
    assert again.experiment_id == tracker.experiment_id


def test_a_trial_run_is_named_tagged_and_nested_under_the_sweep(tracker):
    run = tracker.client.get_run(tracker.create_trial_run(7))
    assert run.info.run_name == "trial-0007"
    tags = run.data.tags
    assert tags["mlflow.parentRunId"] == tracker.parent_run_id
    assert (tags["gansweep.sweep"], tags["gansweep.role"], tags["gansweep.trial"],
            tags["gansweep.state"]) == ("s", "trial", "7", "RUNNING")
    assert tracker.find_trial_run(7) == run.info.run_id and tracker.find_trial_run(8) is None


def test_a_resumed_trial_finds_its_run_and_reopens_it_and_never_makes_a_second(tracker):
    run_id = tracker.create_trial_run(3)
    tracker.end_trial_run(run_id, "RUNNING", params={"lr": 0.1})  # interrupted: KILLED
    assert tracker.client.get_run(run_id).info.status == "KILLED"
    assert tracker.resume_trial_run(3, None) == run_id  # its id was never recorded: found
    run = tracker.client.get_run(run_id)
    assert run.info.status == "RUNNING" and run.data.tags["gansweep.state"] == "RUNNING"
    assert run.data.params == {"lr": "0.1"}
    assert tracker.resume_trial_run(3, run_id) == run_id
    fresh = tracker.resume_trial_run(4, None)  # its driver died before making it
    assert fresh != run_id and tracker.find_trial_run(4) == fresh
