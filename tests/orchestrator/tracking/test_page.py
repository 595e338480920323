"""The sweep's parent run as its page, on a real sqlite MLflow and a real sqlite Optuna study.

Trial runs are real MLflow runs made the way the driver makes them, each with the samples.png its
actor would write; trials enter the study through `study.add_trial`.
"""

from __future__ import annotations

import io
import logging
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from PIL import Image

from orchestrator.layout import PBT_LINEAGE_ATTR, PBT_PARAMS_ATTR, TAG_BEST_RUN, TAG_NOTE
from orchestrator.spec.sweep import SweepSpec
from orchestrator.study.ranking import Ranked
from orchestrator.study.studies import open_storage, reopen_trial
from orchestrator.tracking.figures import GAP, LABEL_HEIGHT, TILE_HEIGHT, importance_warning
from orchestrator.tracking.page import MAX_NOTE, Page, SweepPage, note, open_page, top_trials
from orchestrator.tracking.tracker import SweepTracker
from tests.conftest import SYNTHETIC, wait_for

optuna.logging.set_verbosity(optuna.logging.WARNING)
DISTS = {"x": FloatDistribution(-2, 2), "y": FloatDistribution(-2, 2),
         "loss": CategoricalDistribution(["ns", "wgan_gp"]), "gp": FloatDistribution(1, 10)}


@pytest.fixture(scope="module")
def spec() -> SweepSpec:
    return SweepSpec.parse(SYNTHETIC)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory) -> str:
    """One MLflow database for the module (making one takes seconds); an experiment per test."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), color).save(buf, format="PNG")
    return buf.getvalue()


def _color(n: int) -> tuple[int, int, int]:
    return (20 * n % 256, 255 - 20 * n % 256, 128)


class Sweep:
    """A parent run, its study, and trials added with real runs (and samples.png)."""

    def __init__(self, tmp_path: Path, spec: SweepSpec, mlflow_uri: str):
        self.tracker = SweepTracker(mlflow_uri, tmp_path.name, spec.name)
        self.parent = self.tracker.open_sweep_run(spec.text, "spec.yaml")
        self.storage = f"sqlite:///{tmp_path}/optuna.db"
        self.study = optuna.create_study(storage=self.storage, study_name=spec.name)
        self.runs: dict[int, str] = {}

    def add(self, value: float | None, state=TrialState.COMPLETE, samples: bool = True,
            reports: dict[int, float] | None = None, loss: str = "ns") -> int:
        number = len(self.study.trials)
        run_id = self.tracker.create_trial_run(number)
        if samples:
            _log_bytes(self.tracker, run_id, _png(_color(number)), "samples.png")
        params = {"x": number / 10, "y": -number / 10, "loss": loss}
        if loss == "wgan_gp":  # a conditional param, as `when:` makes one
            params["gp"] = 1.0 + number
        self.study.add_trial(create_trial(
            params=params, distributions={k: DISTS[k] for k in params}, state=state,
            value=value if state == TrialState.COMPLETE else None,
            intermediate_values=reports or {}, user_attrs={"mlflow_run_id": run_id}))
        self.runs[number] = run_id
        return number

    def parent_run(self):
        return self.tracker.client.get_run(self.parent)

    def artifact(self, path: str) -> Path:
        root = self.parent_run().info.artifact_uri
        return Path(url2pathname(urlparse(root).path)) / path


def _log_bytes(tracker: SweepTracker, run_id: str, data: bytes, name: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_bytes(data)
        tracker.client.log_artifact(run_id, str(Path(tmp) / name))


@pytest.fixture
def sweep(tmp_path, spec, mlflow_uri) -> Sweep:
    """Values: trial 0: 3.0, 1: 1.0 (no samples yet), 2: 2.0, 3 pruned, 4 failed, 5 running at
    0.5 (step 2), 6: 4.0 with a conditional param."""
    s = Sweep(tmp_path, spec, mlflow_uri)
    s.add(3.0)
    s.add(1.0, samples=False)
    s.add(2.0, loss="wgan_gp")
    s.add(None, TrialState.PRUNED, reports={2: 9.0})
    s.add(None, TrialState.FAIL)
    s.add(None, TrialState.RUNNING, reports={2: 0.5})
    s.add(4.0, loss="wgan_gp")
    return s


def _table(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ") and
            line.split("|")[1].strip().isdigit()]
    return [[cell.strip() for cell in row.split("|")[1:-1]] for row in rows]


def _tiles(sheet: Path) -> list[tuple[int, int, int]]:
    """The color at the middle of each tile of a contact sheet of square samples, row by row
    (a white middle: no tile there)."""
    image = Image.open(sheet).convert("RGB")
    n = (image.width - GAP) // (TILE_HEIGHT + GAP)
    assert image.width == GAP + n * (TILE_HEIGHT + GAP)
    row = TILE_HEIGHT + LABEL_HEIGHT + GAP
    found = [image.getpixel((GAP + i * (TILE_HEIGHT + GAP) + TILE_HEIGHT // 2,
                             GAP + r * row + LABEL_HEIGHT + TILE_HEIGHT // 2))
             for r in range((image.height - GAP) // row) for i in range(n)]
    return [color for color in found if color != (255, 255, 255)]


def test_parent_run_gets_the_settings_as_params_and_a_relaunch_keeps_them(tmp_path, spec,
                                                                         mlflow_uri, caplog):
    sweep = Sweep(tmp_path, spec, mlflow_uri)
    open_page(sweep.tracker, sweep.study, spec, sweep.storage).close(final=False)
    run = sweep.parent_run()
    assert run.data.params == {
        "objective": "eval/loss (minimize)", "sampler": "tpe", "seed": "0", "pruner": "none",
        "trainer": "synthetic", "dataset": "none", "budget.steps": "4", "budget.eval_every": "2"}
    assert run.data.tags["gansweep.budget.trials"] == "4"
    # relaunched with more trials and an edited seed: no crash, the budget follows
    again = SweepTracker(mlflow_uri, tmp_path.name, spec.name)
    assert again.open_sweep_run(spec.text, "spec.yaml") == sweep.parent
    edited = SweepSpec.parse(SYNTHETIC.replace("seed: 0", "seed: 7")).with_trials(10)
    with caplog.at_level(logging.WARNING, logger="orchestrator.tracking.page"):
        open_page(again, sweep.study, edited, sweep.storage).close(final=True)
    run = sweep.parent_run()
    assert run.data.params["seed"] == "0" and run.data.tags["gansweep.budget.trials"] == "10"
    assert "seed changed since the sweep's first launch" in caplog.text
    assert "(seed 7)" in run.data.tags[TAG_NOTE] and "of 10 trials" in run.data.tags[TAG_NOTE]


ML = "?workflowType=machine_learning"  # each link opens MLflow's "Model training" view


def test_description_lists_the_top_trials_best_first_with_links_to_their_runs(sweep, spec):
    assert SweepPage(sweep.tracker, sweep.study, spec, sweep.storage).update(final=True)
    run = sweep.parent_run()
    text, exp = run.data.tags[TAG_NOTE], sweep.tracker.experiment_id
    rows = _table(text)
    # running trial 5 by its latest report, then the complete ones by value
    assert [r[1] for r in rows] == [
        f"[trial-{n:04d}](#/experiments/{exp}/runs/{sweep.runs[n]}{ML})" for n in (5, 1, 2, 0, 6)]
    assert [r[2] for r in rows] == ["RUNNING (step 2)"] + ["COMPLETE"] * 4
    assert [float(r[3]) for r in rows] == [0.5, 1.0, 2.0, 3.0, 4.0]
    assert rows[2][-1] == "3" and rows[1][-1] == ""  # the conditional param, where it was set
    assert f"**Best**: [trial-0001](#/experiments/{exp}/runs/{sweep.runs[1]}{ML})" in text
    assert run.data.tags[TAG_BEST_RUN] == sweep.runs[1]
    # the spec's budget is 4, but 7 trials ran (a launch with a larger --trials): of 7
    assert "4 complete, 1 pruned, 1 failed, 1 running, of 7 trials" in text
    assert f"#/experiments/{exp}/runs/{sweep.parent}/artifacts/optuna/figures.html" in text
    assert "**PBT**" not in text and not sweep.artifact("pbt_lineage.png").exists()  # no PBT


def test_interactive_figures_are_one_self_contained_html_page_that_parses(sweep, spec):
    assert SweepPage(sweep.tracker, sweep.study, spec, sweep.storage).update(final=True)
    page = _Parsed(sweep.artifact("optuna/figures.html").read_text())
    assert page.titles == ["History", "Parallel coordinates", "Slice", "Contour", "Importances",
                           "Expected best vs trials"]
    assert max(map(len, page.scripts)) > 3_000_000  # plotly.js inlined: opens offline
    assert sum("Plotly.newPlot" in s for s in page.scripts) == 6
    assert "not drawn" not in page.text
    # 4 complete trials for 4 varied params: the importance figure says it is noise
    assert importance_warning(4, 4) in "".join(page.scripts)


def test_the_description_says_what_twice_the_trials_would_find_beside_its_figure(sweep, spec):
    """4 complete trials (3.0, 1.0, 2.0, 4.0; lower is better): the best of 8 is expected at or
    under 1.0, never above it; the figure draws the curve, its bands and the best so far."""
    assert SweepPage(sweep.tracker, sweep.study, spec, sweep.storage).update(final=True)
    text = sweep.parent_run().data.tags[TAG_NOTE]
    [line] = [line for line in text.splitlines() if line.startswith("**More trials?**")]
    mean, low, high = map(float, re.search(
        r"expected best at 2x trials \(8\): (\S+) \[(\S+), (\S+)\] \(now 1\)", line).groups())
    assert low <= mean <= high == 1.0
    assert "assumes i.i.d. trials" in line
    assert re.search(rf"runs/{sweep.parent}/artifacts/optuna/figures\.html\S*\): expected best "
                     r"vs trials$", line)
    figure = "".join(_Parsed(sweep.artifact("optuna/figures.html").read_text()).scripts)
    assert "this sweep's best so far" in figure and "Dodge et al." in figure


class _Parsed(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.titles, self.scripts, self.text, self._tag = [], [], "", ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self._tag = tag

    def handle_data(self, data):
        if self._tag == "h3":
            self.titles.append(data)
        elif self._tag == "script":
            self.scripts.append(data)
        self.text += data


def test_contact_sheet_shows_the_top_trials_samples_and_follows_a_new_best(sweep, spec):
    page = SweepPage(sweep.tracker, sweep.study, spec, sweep.storage)
    assert page.update()
    sheet = sweep.artifact("contact_sheet.png")
    # ranked 5, 1, 2, 0, 6: trial 1 has no samples.png yet and is left out
    assert _tiles(sheet) == [_color(n) for n in (5, 2, 0, 6)]
    figures = sweep.artifact("optuna/figures.html").stat().st_mtime_ns
    best = sweep.add(0.1)
    assert page.update()
    assert _tiles(sheet) == [_color(n) for n in (best, 5, 2, 0, 6)]
    run = sweep.parent_run()
    assert run.data.tags[TAG_BEST_RUN] == sweep.runs[best]
    assert f"**Best**: [trial-{best:04d}]" in run.data.tags[TAG_NOTE]
    assert sweep.artifact("optuna/figures.html").stat().st_mtime_ns > figures
    # a running trial's new report moves the sheet; the figures are not redrawn for it
    figures = sweep.artifact("optuna/figures.html").stat().st_mtime_ns
    reopen_trial(sweep.study, open_storage(sweep.storage), 5).report(0.05, 4)
    assert page.update()
    assert _tiles(sheet)[0] == _color(5)
    assert "RUNNING (step 4)" in sweep.parent_run().data.tags[TAG_NOTE]
    assert sweep.artifact("optuna/figures.html").stat().st_mtime_ns == figures


def test_the_page_follows_progress_from_its_own_thread(sweep, spec):
    page = open_page(sweep.tracker, sweep.study, spec, sweep.storage, every_s=0.2)
    started = time.time()
    page.request()  # as the scheduler's `_log_progress` does
    wait_for("the page", lambda: TAG_NOTE in sweep.parent_run().data.tags, timeout=20)
    assert time.time() - started < 20
    page.close(final=False)
    assert not page._thread.is_alive()
    page.request()  # the scheduler's last progress, after the page closed: nothing happens


def test_a_page_error_is_a_warning_never_a_failed_sweep(sweep, spec, caplog):
    sweep.tracker.parent_run_id = "no-such-run"
    with caplog.at_level(logging.WARNING, logger="orchestrator.tracking.page"):
        page = open_page(sweep.tracker, sweep.study, spec, sweep.storage)
        page.close(final=True)
        assert page.update(final=True) is False
    assert "sweep page: params not written" in caplog.text
    assert "sweep page: not updated" in caplog.text


def test_top_trials_follow_the_direction_and_rank_running_trials_only_by_the_objective():
    spec = SweepSpec.parse(SYNTHETIC.replace("direction: minimize", "direction: maximize"))
    trials = [create_trial(value=v, params={}, distributions={}) for v in (1.0, 3.0, 2.0)]
    trials.append(create_trial(state=TrialState.RUNNING, intermediate_values={1: 9.0, 3: 2.5}))
    for i, t in enumerate(trials):
        t.number = i
    assert [(r.trial.number, r.value, r.step) for r in top_trials(trials, spec, k=3)] == [
        (1, 3.0, None), (3, 2.5, 3), (2, 2.0, None)]
    pruned_on_other = SweepSpec.parse(SYNTHETIC + "pruner: {name: median, metric: eval/other}\n")
    assert [r.trial.number for r in top_trials(trials, pruned_on_other)] == [0, 2, 1]


def test_description_stays_under_mlflow_tag_limit_by_dropping_rows(spec):
    long = {f"param_{i}": "v" * 100 for i in range(12)}
    trials = [create_trial(value=float(n), params=long, distributions={
        k: CategoricalDistribution(["v" * 100]) for k in long},
        user_attrs={"mlflow_run_id": f"{n:032x}"}) for n in range(8)]
    for n, t in enumerate(trials):
        t.number = n
    page = Page(spec, "1", "p" * 32, trials, [Ranked(t, t.value) for t in trials],
                has_sheet=True, has_figures=True)
    text = note(page)
    assert len(text) <= MAX_NOTE
    assert 1 <= len(_table(text)) < 8


# -- a PBT sweep ------------------------------------------------------------------------------
PBT_SPEC = SYNTHETIC.replace("budget: {trials: 4, steps: 4, eval_every: 2, log_every: 1}",
                             "budget: {trials: 4, steps: 1000, eval_every: 250, log_every: 50}") \
    + "scheduler: {name: pbt, population: 4, interval: 250}\n"
# a round every 250 steps, one exploit each: 1 <- 0 at 250, 3 <- 1 at 500, 2 <- 3 at 750
EXPLOITS = {0: [], 1: [[250, 0]], 2: [[750, 3]], 3: [[500, 1]]}
FINAL = {0: 3.0, 1: 2.0, 2: 0.5, 3: 1.0}
BEST_LINE = ("**PBT** population 4, a round every 250 steps: 3 exploits; the best member's "
             "line: trial 2 <- 3 at 750 <- 1 at 500 <- 0 at 250")


def _member(number: int, state=TrialState.COMPLETE, run_id: str | None = None):
    """Member `number` as its driver leaves it, reporting every 250 steps down to its final
    value (a running member is at step 750)."""
    steps = (250, 500, 750, 1000) if state == TrialState.COMPLETE else (250, 500, 750)
    trial = create_trial(
        params={"x": number / 10, "y": 0.0}, distributions={k: DISTS[k] for k in ("x", "y")},
        state=state, value=FINAL[number] if state == TrialState.COMPLETE else None,
        intermediate_values={s: FINAL[number] * 1000 / s for s in steps},
        user_attrs={"mlflow_run_id": run_id or f"{number:032x}", PBT_PARAMS_ATTR: {"x": 0.1},
                    PBT_LINEAGE_ATTR: EXPLOITS[number]})
    trial.number = number
    return trial


@pytest.mark.parametrize("state", [TrialState.COMPLETE, TrialState.RUNNING])
def test_a_pbt_sweeps_description_walks_the_best_members_line_back_through_its_donors(state):
    """The best member ended (or, while all run, leads) with 3's state from step 750, which
    came from 1 at 500, which came from 0 at 250; no i.i.d. extrapolation for copying members;
    the lineage figure shown inline."""
    spec = SweepSpec.parse(PBT_SPEC)
    trials = [_member(n, state) for n in range(4)]
    page = Page(spec, "1", "p" * 32, trials, top_trials(trials, spec), has_sheet=False,
                has_figures=False, has_lineage=True)
    text = note(page)
    assert BEST_LINE in text.splitlines()
    assert "**More trials?**" not in text
    assert "![PBT lineage: who copied whom](get-artifact?path=pbt_lineage.png&run_uuid=" + \
        "p" * 32 in text
    assert "artifacts/pbt_lineage.png" in text  # and a link to it


def test_a_pbt_sweeps_page_has_its_lineage_figure_while_it_runs(tmp_path, mlflow_uri):
    spec = SweepSpec.parse(PBT_SPEC)
    sweep = Sweep(tmp_path, spec, mlflow_uri)
    for number in range(4):
        sweep.study.add_trial(_member(number, TrialState.RUNNING,
                                      sweep.tracker.create_trial_run(number)))
    assert SweepPage(sweep.tracker, sweep.study, spec, sweep.storage).update()
    assert Image.open(sweep.artifact("pbt_lineage.png")).format == "PNG"
    text = sweep.parent_run().data.tags[TAG_NOTE]
    assert BEST_LINE in text.splitlines()
    assert f"get-artifact?path=pbt_lineage.png&run_uuid={sweep.parent}" in text
