"""The MLflow UI stays on the sweep, as far as the links and tags gansweep writes decide it (the
browser's side: test_ui_browser.py): every link names the "Model training" view and the run's
experiment, the experiment says its kind, the saved view puts the objective first, a promoted
store moved with its folder names its new folder, and a copied store says whose files it shows.
All on real sqlite stores."""

from __future__ import annotations

import json
import re
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.layout import EXPERIMENT_KIND_TAG, TRAINING_KIND
from orchestrator.tracking import ui
from orchestrator.tracking.figures import SHEET_WIDTH, contact_sheet
from orchestrator.tracking.page import Page, _confirmed, _pictures
from orchestrator.tracking.tracker import SweepTracker
from tests.orchestrator.tracking.test_ui import _sweep

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _route(link: str) -> tuple[str, dict[str, str]]:
    """A hash link's route and params, as MLflow's router reads them."""
    route, _, query = (urlsplit(link).fragment or link.lstrip("#")).partition("?")
    return route, {k: v[0] for k, v in parse_qs(query).items()}


def test_run_links_name_the_training_view_and_the_runs_experiment(tmp_path):
    """`#/runs/<id>` redirects without the view's parameter (the GenAI view): `best` and
    `promote` link the run under its experiment, found in the sweep's store."""
    tracker, study = _sweep(tmp_path)
    run_ids = [t.user_attrs["mlflow_run_id"] for t in study.trials]
    urls, note = ui.run_urls(study, run_ids)
    for run_id in run_ids:
        route, params = _route(urls[run_id])
        assert route == f"/experiments/{tracker.experiment_id}/runs/{run_id}"
        assert params == {"workflowType": "machine_learning"}
    assert "gansweep ui synth" in note  # a local store: no server until `gansweep ui`
    route, params = _route(ui.run_url("http://h:1", "r"))  # store unknown: the bare route
    assert (route, params) == ("/runs/r", {"workflowType": "machine_learning"})


def test_the_pages_links_open_runs_and_artifacts_in_the_training_view():
    """The sweep page's description (best, top-k, confirm table, pictures) links relatively,
    each link in the "Model training" view."""
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.study.ranking import ConfirmRow
    from tests.orchestrator.tracking.test_ui import SPEC

    row = ConfirmRow(trial=3, run_id="c0", params={}, sweep_value=0.5, values=(0.4, 0.6),
                     failed=0, mean=0.5, std=0.1, bound=0.7)
    page = Page(SweepSpec.parse(SPEC, source="synth.yaml"), experiment_id="7",
                parent_run_id="p0", trials=[], top=[], has_sheet=True, has_figures=True,
                final=True, confirmed=(row,))
    text = _pictures(page) + "\n" + _confirmed(page)
    links = re.findall(r"\]\((#[^)]+)\)", text)
    assert len(links) == 4  # the sheet, the figures, all trials, the confirm run
    for link in links:
        route, params = _route(link)
        assert route.startswith("/experiments/7/runs/")
        assert params == {"workflowType": "machine_learning"}
    assert _route(links[0])[0] == "/experiments/7/runs/p0/artifacts/contact_sheet.png"


def test_the_sweeps_experiment_says_it_holds_training_runs(tmp_path):
    """New experiments, and those `gansweep ui NAME` opens, carry the kind MLflow's UI writes
    for "Machine learning" (MLflow versions that follow it open the runs, not GenAI)."""
    tracker, study = _sweep(tmp_path)
    assert tracker.client.get_experiment(tracker.experiment_id).tags[
        EXPERIMENT_KIND_TAG] == TRAINING_KIND
    tracker.client.delete_experiment_tag(tracker.experiment_id, EXPERIMENT_KIND_TAG)
    link = ui.sweep_link(study, tracker.uri, "http://127.0.0.1:5000")
    assert _route(link)[1]["workflowType"] == "machine_learning"
    assert tracker.client.get_experiment(tracker.experiment_id).tags[
        EXPERIMENT_KIND_TAG] == TRAINING_KIND
    again = SweepTracker(tracker.uri, "gan-exp", "synth")  # an existing one: left as it is
    assert again.experiment_id == tracker.experiment_id


def test_the_saved_view_orders_the_objective_first_whatever_its_name(tmp_path):
    """The runs table shows selected metrics by name unless the view orders its columns: an
    objective `eval/zz` would come last, off a 1280 px screen."""
    tracker, study = _sweep(tmp_path)
    study.set_metric_names(["eval/zz"])
    for trial in study.trials:
        tracker.client.log_metric(trial.user_attrs["mlflow_run_id"], "eval/zz", 1.0, step=2)
    ui.sweep_link(study, tracker.uri, "http://127.0.0.1:5000")
    tags = tracker.client.get_experiment(tracker.experiment_id).tags
    state = json.loads(json.loads(tags["mlflow.sharedViewState.gansweep-synth"])["state"])
    assert state["columnOrder"] == [
        "attributes.`Run Name`", "runDateAndNestInfo", "duration", "metrics.`eval/zz`",
        "metrics.`eval/loss`", "metrics.`eval/modes`", "params.`x`"]
    assert state["selectedColumns"] == state["columnOrder"][3:]
    assert state["orderByKey"] == "metrics.`eval/zz`"


def test_the_contact_sheet_wraps_into_rows_that_fit_a_1280_px_page():
    import io

    from PIL import Image

    def png(width, height):
        buf = io.BytesIO()
        Image.new("RGB", (width, height), "gray").save(buf, format="PNG")
        return buf.getvalue()

    sheet = Image.open(io.BytesIO(contact_sheet([(f"#{i}", png(64, 64)) for i in range(8)])))
    assert sheet.width <= SHEET_WIDTH < 1280 - 400  # beside the UI's sidebar and margins
    assert sheet.height > 2 * 256  # eight 256 px tiles: several rows
    wide = Image.open(io.BytesIO(contact_sheet([("#1", png(300, 100))])))
    assert wide.width <= SHEET_WIDTH  # one tile is never wider than three of its height


def test_relocate_moves_the_storage_a_promoted_version_names(tmp_path):
    """`gansweep ui --relocate` after `mv proj moved`: the version's `gansweep.storage` tag and
    its description name the moved folder's Optuna storage, not the old one."""
    from mlflow import MlflowClient

    from orchestrator.registry.promote import promote
    from orchestrator.stores.relocate import relocate
    from tests.orchestrator.registry.toy_registry import toy_sweep

    proj = tmp_path / "proj"
    proj.mkdir()
    sweep = toy_sweep(proj, "moving")
    sweep.add_trial(0.5)
    done = promote(sweep.study, sweep.tracking_uri, "moving-g", storage=sweep.storage)
    shutil.move(proj, tmp_path / "moved")
    moved = relocate(tmp_path / "moved" / "mlflow.db")
    assert sum(m.storage_rewritten for m in moved) == 2  # the tag and the description
    version = MlflowClient(f"sqlite:///{tmp_path}/moved/mlflow.db").get_model_version(
        "moving-g", done.version)
    assert version.tags["gansweep.storage"] == f"sqlite:///{tmp_path}/moved/optuna.db"
    assert f"Optuna storage: sqlite:///{tmp_path}/moved/optuna.db." in version.description
    assert str(proj) + "/" not in version.description


def test_ui_on_a_copied_store_warns_that_it_shows_the_original_folders_files(tmp_path, capsys):
    """`cp -r proj copy`, then `gansweep ui` in the copy: the original is still there, so the
    UI would silently serve its files."""
    from orchestrator.cli.ui import _check_local

    _sweep(tmp_path / "proj")
    shutil.copytree(tmp_path / "proj", tmp_path / "copy")
    db = tmp_path / "copy" / "mlflow.db"
    _check_local(db, f"sqlite:///{db}", relocate=False)
    err = capsys.readouterr().err
    assert f"point into {tmp_path / 'proj'}, which still exists" in err
    assert "`gansweep ui --relocate`" in err
    _check_local(tmp_path / "proj" / "mlflow.db", "x", relocate=False)  # the original: quiet
    assert capsys.readouterr().err == ""
