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


def test_a_copied_project_is_refused_by_launch_with_the_fix_then_works_after_it(tmp_path,
                                                                                monkeypatch):
    """`cp -r proj copy`: the copy's mlflow.db still points into proj/, and new runs would
    land there with no warning. Launch in the copy refuses, naming `ui --relocate`; after it,
    the store is the copy's own."""
    import shutil

    from click.testing import CliRunner

    from orchestrator.cli import main
    from orchestrator.stores.checks import check_tracking_uri

    _sweep(tmp_path / "proj")
    shutil.copytree(tmp_path / "proj", tmp_path / "copy")
    copy = tmp_path / "copy"
    (copy / "spec.yaml").write_text(SPEC)
    monkeypatch.chdir(copy)
    before = (copy / "mlflow.db").read_bytes()
    result = CliRunner().invoke(main, ["launch", "spec.yaml", "--tracking-uri",
                                       f"sqlite:///{copy}/mlflow.db"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"gansweep: error: --tracking-uri: sqlite:///{copy}/mlflow.db: its artifact locations "
        f"point into {tmp_path / 'proj'}, not {copy} where it is now (the project was copied or "
        f"moved): new runs would write there; run `gansweep ui --relocate` to point them here\n")
    assert (copy / "mlflow.db").read_bytes() == before
    relocate(copy / "mlflow.db")
    assert check_tracking_uri(f"sqlite:///{copy}/mlflow.db") is None
    assert check_tracking_uri(f"sqlite:///{tmp_path / 'proj'}/mlflow.db") is None  # the original
