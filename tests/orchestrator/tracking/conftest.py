"""A sweep's tracker with its parent run, on a real sqlite store."""

import pytest

from orchestrator.tracking.tracker import SweepTracker


@pytest.fixture
def tracker(tmp_path):
    tracker = SweepTracker(f"sqlite:///{tmp_path}/mlflow.db", "exp", "s")
    tracker.open_sweep_run("name: s", "spec.yaml")
    return tracker
