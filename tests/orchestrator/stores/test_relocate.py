"""A local MLflow store whose folder moved: found stale, and its artifact locations pointed at
the folder the database is in now, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.stores.relocate import relocate, stale_roots
from tests.orchestrator.tracking.test_ui import SPEC, _sweep

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def test_a_moved_store_is_found_stale_and_relocate_brings_its_artifacts_back(tmp_path):
    tracker, _ = _sweep(tmp_path / "proj")
    run_id = tracker.parent_run_id
    (tmp_path / "proj").rename(tmp_path / "moved")
    db = tmp_path / "moved" / "mlflow.db"
    client = type(tracker.client)(f"sqlite:///{db}")
    with pytest.raises(Exception):  # noqa: B017 - MLflow keeps the old absolute location
        client.download_artifacts(run_id, "spec/synth.yaml", str(tmp_path))
    assert stale_roots(db) == {tmp_path / "proj"}

    done = relocate(db)
    assert [(d.old, d.new) for d in done] == [(tmp_path / "proj", tmp_path / "moved")]
    assert done[0].rewritten >= 4  # the experiment and its three runs
    got = client.download_artifacts(run_id, "spec/synth.yaml", str(tmp_path))
    assert Path(got).read_text() == SPEC
    assert stale_roots(db) == set() and relocate(db) == []  # mended once; again: nothing
