"""MLflow's UI in a real headless browser (Debian's chromium) on a sweep's real store: the links
gansweep writes open the "Model training" view, the saved view shows the objective first, the
page's contact sheet fits a 1280 px window beside the run's About panel, and the Models tab
lists each trial's generators with their eval metrics. CI has no browser: skipped there."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from orchestrator.actor.models import log_model
from orchestrator.actor.runlog import MetricRow
from orchestrator.layout import AT_BEST, AT_LAST, SHEET
from orchestrator.spec.sweep import SweepSpec
from orchestrator.tracking import ui
from orchestrator.tracking.figures import contact_sheet
from orchestrator.tracking.page import Page, note
from tests.conftest import free_port
from tests.orchestrator.tracking.browser import CHROMIUM, Browser
from tests.orchestrator.tracking.test_ui import SPEC, _sweep

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt install chromium)"),
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]
SCREENS = os.environ.get("GANSWEEP_SCREENS")  # a folder: keep the screenshots there
# the sidebar of MLflow 3.17 in each view: GenAI's lists evaluation pages, training's the registry
TRAINING = ("document.body.innerText.includes('Model registry') && "
            "!document.body.innerText.includes('Evaluation runs')")


def _tile(seed: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.effect_noise((256, 256), 40 + seed).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def _store(folder: Path):
    """A sweep as a finished launch leaves it: two trials with eval metrics and their logged
    generators, a parent run whose description is the sweep's page with its contact sheet."""
    tracker, study = _sweep(folder)
    client = tracker.client
    for trial in study.trials:
        run_id = trial.user_attrs["mlflow_run_id"]
        rows = [MetricRow(m.key, m.value, m.timestamp, m.step) for key in ("eval/loss",
                "eval/modes") for m in client.get_metric_history(run_id, key)]  # as logged
        generator = torch.nn.Linear(2, 2)
        for at in (AT_BEST, AT_LAST):
            log_model(tracker.uri, run_id, generator, 2, at, rows)
    sheet = contact_sheet([(f"#{i} trial {i}", _tile(i)) for i in range(8)])
    from orchestrator.study.ranking import ranked

    top = ranked(study.trials, maximize=False)
    page = Page(SweepSpec.parse(SPEC, source="synth.yaml"), tracker.experiment_id,
                tracker.parent_run_id, study.trials, top, has_sheet=True, has_figures=False,
                final=True)
    tracker.log_page(note(page), {}, {SHEET: sheet})
    return tracker, study


def _shot(browser: Browser, name: str) -> None:
    if SCREENS:
        browser.screenshot(Path(SCREENS) / f"{name}.png")


def test_the_ui_stays_on_the_sweep_in_a_real_browser(tmp_path):
    tracker, study = _store(tmp_path / "proj")
    server = ui.start_server(tracker.uri, "127.0.0.1", free_port(), tmp_path / "proj")
    with ui.running(server), Browser(free_port()) as browser:
        ui.wait_ready(server)
        base = server.url
        # `gansweep ui NAME`'s link: the trials, the objective the first metric column
        browser.open(ui.sweep_link(study, tracker.uri, base))
        browser.wait("the trials", "document.body.innerText.includes('trial-0001')")
        browser.wait("the training view", TRAINING)
        columns = browser.wait("the columns", "[...document.querySelectorAll("
                               "'.ag-header-cell')].map(e => e.getAttribute('col-id'))"
                               ".filter(c => c && c.startsWith('metrics.'))")
        assert columns[0] == "metrics.`eval/loss`"
        _shot(browser, "1-sweep-view")

        # the sweep's page: its links in the training view, its contact sheet within the window
        page_link = ui.run_url(base, tracker.parent_run_id, tracker.experiment_id)
        browser.open(page_link)
        browser.wait("the page", "document.body.innerText.includes('Top 2')")
        browser.wait("the training view", TRAINING)
        browser.wait("the contact sheet", "[...document.images].some(i => "
                     "i.src.includes('contact_sheet.png') && i.complete && i.naturalWidth)")
        time.sleep(1)  # the layout settles once the image is in
        # the description's links: MLflow opens each in a new tab (target=_blank, its own)
        links = browser.js("[...document.querySelectorAll('a[target=_blank]')]"
                           ".map(a => a.getAttribute('href'))"
                           ".filter(h => h && h.startsWith('#/experiments/'))")
        assert len(links) >= 3  # best, the two trials of the top table, the sheet
        assert all("workflowType=machine_learning" in h for h in links)
        sheet = browser.js("(() => { const i = [...document.images].find(i => "
                           "i.src.includes('contact_sheet.png')); const r = "
                           "i.getBoundingClientRect(); return [r.right, i.naturalWidth]; })()")
        assert sheet[0] <= 1280, sheet
        about = browser.js("(() => { const e = [...document.querySelectorAll('*')].find(e => "
                           "e.children.length === 0 && e.textContent.trim() === 'Run ID'); "
                           "const r = e.getBoundingClientRect(); return r.right; })()")
        assert about <= 1280
        assert browser.js("document.scrollingElement.scrollWidth") <= 1280
        _shot(browser, "2-sweep-page")

        # a description link, followed as the UI's new tab would: the trial in the training view
        browser.open(f"{base}/{links[0]}")
        browser.wait("the trial", "document.body.innerText.includes('trial-0001')")
        browser.wait("the training view", TRAINING)
        _shot(browser, "3-best-trial")

        # the Models tab: each trial's generators with their eval metrics
        browser.open(f"{base}/#/experiments/{tracker.experiment_id}/models?"
                     f"workflowType=machine_learning")
        browser.wait("the generators", "document.body.innerText.includes('trial-0001-best')")
        time.sleep(1)
        # its metric columns come after the model's attributes: a wide window shows them all
        browser.call("Emulation.setDeviceMetricsOverride", {
            "width": 2560, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(2)
        _shot(browser, "4-models")
        text = browser.js("document.body.innerText")
        for name in ("trial-0000-best", "trial-0000-last", "trial-0001-best", "trial-0001-last"):
            assert name in text
        assert "eval/loss" in text and "0.1" in text and "0.4" in text
