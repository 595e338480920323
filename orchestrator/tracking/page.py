"""The sweep's parent MLflow run as the sweep's page, kept current while the sweep runs.

The page is the parent run: params (what the sweep searches with, written once), a markdown
description (`mlflow.note.content`: progress, the best trial, a top-k table linking each run),
`contact_sheet.png` (the top-k trials' latest `samples.png` side by side), `optuna/figures.html`
(Optuna's interactive figures), for a PBT sweep `pbt_lineage.png` (who copied whom) and its
population's line in the description, and the `gansweep.best_run_id` tag.

Writing it downloads k images and uploads a few MB, so it never runs on the scheduler's thread:
`SweepPage` owns a thread and an MLflow client of its own, rewrites the page at most every
PAGE_EVERY_S seconds when something changed (a request between two updates is folded into the
next: the latest state wins), and once more when the sweep ends. A page error is a warning,
never a failed sweep.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from orchestrator.layout import (
    CONFIRM_AT_ATTR,
    FIGURES,
    LINEAGE_PNG,
    PRUNED_REASON_ATTR,
    PRUNER,
    SAMPLES_PNG,
    SHEET,
    TAG_BEST_RUN,
    TAG_BUDGET_TRIALS,
    TRIALS_CSV,
    reason_kind,
    trial_run_name,
)
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.redact import mask_secrets
from orchestrator.study.expected import ASSUMES, shown, summary_line
from orchestrator.study.ranking import ConfirmRow, Ranked, confirm_table, ranked
from orchestrator.study.results import counted, exploits, is_member, line_text, member_line
from orchestrator.study.studies import load_confirm_study, open_storage
from orchestrator.tracking.figures import (
    EXPECTED_TITLE,
    LINEAGE_TITLE,
    contact_sheet,
    figures_html,
    lineage_figure,
)
from orchestrator.tracking.tracker import SweepTracker
from orchestrator.tracking.ui import run_route, training_route

log = logging.getLogger(__name__)
PAGE_EVERY_S = 30.0  # the page's cost (k downloads, a few MB up) at most this often
JOIN_S = 60.0  # the end of a sweep waits this long for an update in progress
TOP_K = 8
PRUNED_SHOWN, MAX_REASON = 5, 160  # the latest pruned trials the page names, and their reasons
MAX_NOTE = 7900  # MLflow cuts a tag value at 8000 characters
# MLflow draws a progress bar for every download: k of them per update, under the sweep's display
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def sweep_params(spec: SweepSpec) -> dict[str, str]:
    """The parent run's params: what the sweep searches for and with. The trial budget is not
    one (`--trials` raises it on a relaunch, and a param never changes): see `sweep_tags`."""
    pruner = spec.pruner.name + "".join(f" {k}={v}" for k, v in sorted(spec.pruner.options.items()))
    params = {
        "objective": ", ".join(f"{o.metric} ({o.direction})" for o in spec.objectives),
        "sampler": spec.sampler.name, "seed": str(spec.sampler.seed), "pruner": pruner,
        "trainer": spec.trainer, "dataset": spec.dataset,
        "budget.steps": str(spec.budget.steps), "budget.eval_every": str(spec.budget.eval_every)}
    if spec.pruner.metric:
        params["pruner.metric"] = spec.pruner.metric
    if spec.budget.time_s:
        params["budget.time_s"] = f"{spec.budget.time_s:g}"
    return params


def sweep_tags(spec: SweepSpec) -> dict[str, str]:
    """What may change from one launch to the next, as tags (a tag can be rewritten)."""
    return {TAG_BUDGET_TRIALS: str(spec.budget.trials)}


# -- ranking (orchestrator/study/ranking.py) ----------------------------------------------------
def top_trials(trials: list[FrozenTrial], spec: SweepSpec, k: int = TOP_K) -> list[Ranked]:
    """The k best complete or running trials by the (first) objective; a running trial counts
    by its latest reported value when reports are of the objective."""
    reports_objective = not spec.multi and spec.pruner.metric in (None, spec.objective.metric)
    return ranked(trials, spec.objective.direction == "maximize", reports_objective)[:k]


def best_complete(trials: list[FrozenTrial], spec: SweepSpec) -> Ranked | None:
    """The best complete trial of a single-objective sweep (several objectives have none)."""
    top = [] if spec.multi else ranked(trials, spec.objective.direction == "maximize")
    return top[0] if top else None


# -- the description ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    """What the description is written from: a snapshot, never the live study."""

    spec: SweepSpec
    experiment_id: str
    parent_run_id: str
    trials: list[FrozenTrial]
    top: list[Ranked]
    has_sheet: bool
    has_figures: bool
    final: bool = False
    confirmed: tuple[ConfirmRow, ...] = ()  # `gansweep confirm`'s table
    confirmed_at: str = "last"
    has_lineage: bool = False  # a PBT sweep's LINEAGE_PNG is on the parent run

    def run_link(self, run_id: str, artifact: str = "") -> str:
        """A link inside the MLflow UI (hash routes: relative links work in its markdown), in
        its "Model training" view (orchestrator/tracking/ui.py says why the link must say so;
        MLflow opens every description link in a new tab)."""
        route = run_route(run_id, self.experiment_id)
        return training_route(f"{route}/artifacts/{artifact}" if artifact else route)


def note(page: Page) -> str:
    """The parent run's markdown description, under MLflow's tag limit (fewer table rows if
    needed)."""
    for rows in range(len(page.top), -1, -1):
        sections = (_status(page), _best(page), _population(page), _expected(page),
                    _table(page, rows), _pruned(page), _confirmed(page), _pictures(page),
                    _setup(page))
        text = "\n\n".join(part for part in sections if part)
        if len(text) <= MAX_NOTE:
            return text
    return text[:MAX_NOTE]


def _status(page: Page) -> str:
    count = {s: sum(t.state == s for t in page.trials) for s in TrialState}
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    started = len(page.trials) - count[TrialState.WAITING]
    budget = max(page.spec.budget.trials, started)  # a launch with a smaller --trials ran none
    return (f"**Sweep `{page.spec.name}`** ({'ended' if page.final else 'running'}): "
            f"{count[TrialState.COMPLETE]} complete, {count[TrialState.PRUNED]} pruned, "
            f"{count[TrialState.FAIL]} failed, {count[TrialState.RUNNING]} running, of "
            f"{budget} trials (updated {when})")


def _best(page: Page) -> str:
    best = best_complete(page.trials, page.spec)
    if best is None:
        return "" if page.spec.multi else "**Best**: no complete trial yet"
    return (f"**Best**: {_trial_link(page, best)}: {page.spec.objective.metric} = "
            f"{best.value:.6g} ({page.spec.objective.direction})")


def _population(page: Page) -> str:
    """A PBT sweep's population: its rounds, its exploits, and where the best member's final
    state came from (its line back through its donors)."""
    pbt = page.spec.scheduler
    if pbt is None:
        return ""
    members = [t for t in page.trials if is_member(t)]
    text = (f"**PBT** population {pbt.population}, a round every {pbt.interval} steps: "
            f"{counted(sum(len(exploits(t)) for t in members), 'exploit')}")
    best = best_complete(members, page.spec) or next(
        (r for r in page.top if is_member(r.trial)), None)
    if best is not None:
        text += f"; the best member's line: {line_text(member_line(members, best.trial.number))}"
    return text


def _expected(page: Page) -> str:
    """Would more trials help? (orchestrator/study/expected.py; its figure is in FIGURES) Not
    for a PBT sweep: its members copy each other, they are no i.i.d. draws."""
    goal = page.spec.objective
    found = None if page.spec.multi or page.spec.scheduler is not None else shown(
        page.trials, goal.metric, goal.direction == "maximize")
    if found is None:
        return ""
    figure = (f" · [figure]({page.run_link(page.parent_run_id, FIGURES)}): "
              f"{EXPECTED_TITLE.lower()}" if page.has_figures else "")
    return f"**More trials?** {summary_line(found)}; {ASSUMES}{figure}"


def _table(page: Page, rows: int) -> str:
    if not page.top or rows == 0:
        return ""
    params = list(dict.fromkeys(p for r in page.top[:rows] for p in r.trial.params))
    metric = page.spec.objective.metric
    lines = [f"**Top {rows}** by {metric}" + (" (the first objective)" if page.spec.multi else ""),
             "", "| # | trial | state | " + " | ".join([_cell(metric), *map(_cell, params)]) + " |",
             "|" + "---|" * (4 + len(params))]
    for i, r in enumerate(page.top[:rows], 1):
        state = r.trial.state.name + (f" (step {r.step})" if r.step is not None else "")
        values = [_cell(_fmt(r.trial.params[p]) if p in r.trial.params else "") for p in params]
        lines.append(f"| {i} | {_trial_link(page, r)} | {state} | {r.value:.6g} | "
                     + " | ".join(values) + " |")
    return "\n".join(lines)


def _pruned(page: Page) -> str:
    """Why trials were pruned: the count per rule, then the latest few with their reasons."""
    pruned = [t for t in page.trials if t.state == TrialState.PRUNED]
    if not pruned:
        return ""
    reasons = [(t, t.user_attrs.get(PRUNED_REASON_ATTR) or PRUNER) for t in pruned]
    kinds = Counter(reason_kind(why) for _, why in reasons)
    lines = [f"**Pruned** {len(pruned)}: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common())]
    for t, why in reasons[-PRUNED_SHOWN:]:
        lines.append(f"- {trial_run_name(t.number)}: {_cell(why[:MAX_REASON])}")
    return "\n".join(lines)


def _confirmed(page: Page) -> str:
    """`gansweep confirm`'s table: the configs retrained on fresh seeds, best bound first."""
    if not page.confirmed:
        return ""
    maximize = page.spec.objective.direction == "maximize"
    metric, side = page.spec.objective.metric, "lower" if maximize else "upper"
    lines = [f"**Confirmed** by `gansweep confirm` (fresh seeds, each run's {page.confirmed_at} "
             f"evaluation; `promote` picks the best bound)", "",
             f"| trial | sweep {_cell(metric)} | n | mean | std | 95% {side} bound |",
             "|---|---|---|---|---|---|"]
    for r in page.confirmed:
        link = f"[trial-{r.trial:04d}]({page.run_link(r.run_id)})" if r.run_id else str(r.trial)
        cells = [_fmt(v) if v is not None else "-" for v in (r.mean, r.std, r.bound)]
        lines.append(f"| {link} | {r.sweep_value:.6g} | {len(r.values)} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pictures(page: Page) -> str:
    parent = page.parent_run_id
    parts = []
    if page.has_sheet:  # the server serves artifacts at get-artifact, beside the UI
        parts.append(f"![latest samples of the top trials](get-artifact?path={SHEET}"
                     f"&run_uuid={parent}&v={int(time.time())})")
    if page.has_lineage:
        parts.append(f"![{LINEAGE_TITLE}](get-artifact?path={LINEAGE_PNG}&run_uuid={parent}"
                     f"&v={int(time.time())})")
    links = [f"[{SHEET}]({page.run_link(parent, SHEET)})"] if page.has_sheet else []
    if page.has_lineage:
        links.append(f"[{LINEAGE_PNG}]({page.run_link(parent, LINEAGE_PNG)})")
    if page.has_figures:
        links.append(f"[interactive figures]({page.run_link(parent, FIGURES)}) (history, "
                     f"parallel coordinates, slice, contour, importances)")
    if page.final:
        links.append(f"[all trials]({page.run_link(parent, TRIALS_CSV)})")
    return "\n\n".join(parts + ([" · ".join(links)] if links else []))


def _setup(page: Page) -> str:
    """The sweep's settings as of this launch (the params keep those of the first launch)."""
    spec = page.spec
    return (f"Trainer `{spec.trainer}` on `{spec.dataset}`; sampler {spec.sampler.name} (seed "
            f"{spec.sampler.seed}), pruner {spec.pruner.name}; {spec.budget.trials} trials of "
            f"{spec.budget.steps} steps, evaluated every {spec.budget.eval_every}")


def _trial_link(page: Page, r: Ranked) -> str:
    name = trial_run_name(r.trial.number)
    return f"[{name}]({page.run_link(r.run_id)})" if r.run_id else name


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# -- the writer ---------------------------------------------------------------------------------
def open_page(tracker: SweepTracker, study: optuna.Study, spec: SweepSpec, storage: str,
              every_s: float = PAGE_EVERY_S) -> SweepPage:
    """The parent run's params and tags written, its page kept current from now on: the
    scheduler's progress asks for updates through `SweepPage.request`."""
    try:
        changed = tracker.log_sweep_params(sweep_params(spec), sweep_tags(spec))
        if changed:
            log.warning("sweep page: %s changed since the sweep's first launch; its params "
                        "keep the first values, the description shows the current ones",
                        ", ".join(changed))
    except Exception as exc:  # a page must never fail the sweep
        log.warning("sweep page: params not written: %s: %s", type(exc).__name__,
                    mask_secrets(str(exc), tracker.uri))
    return SweepPage(tracker, study, spec, storage, every_s).start()


class SweepPage:
    """Keeps the parent run's page current from a thread of its own (see the module's doc)."""

    def __init__(self, tracker: SweepTracker, study: optuna.Study, spec: SweepSpec,
                 storage: str, every_s: float = PAGE_EVERY_S):
        """`storage`: the study's URL: the page reads the sweep's confirm study from there."""
        self.tracker = tracker.fork()  # its own client: not the loop's
        self.study, self.spec, self.every_s = study, spec, every_s
        self.storage_url = storage
        self._storage: optuna.storages.BaseStorage | None = None  # opened on the page's thread
        self.updated_at = 0.0
        self.seen: tuple | None = None  # what the last update showed, to skip an unchanged one
        self.drawn: tuple | None = None  # the finished trials the figures were drawn from
        self.has_lineage = False  # a PBT sweep's lineage figure was written
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweep-page", daemon=True)

    def start(self) -> SweepPage:
        self._thread.start()
        return self

    def request(self) -> None:
        """Something changed (the scheduler's progress): update soon, at most every every_s."""
        if not self._stop.is_set():
            self._wake.set()

    def close(self, final: bool = True) -> None:
        """Stop the thread; with `final`, write the page once more, whatever changed. Without
        it (the sweep is stopping on an error or a signal) an update in progress is not waited
        for long: the thread is a daemon. Requests after it are ignored."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(JOIN_S if final else 1.0)
        if self._thread.is_alive():
            log.warning("sweep page: an update is still writing after %.0f s; not rewritten "
                        "at the end", JOIN_S)
        elif final:
            self.update(final=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every_s)  # a request, or a look at running trials' samples
            self._stop.wait(max(0.0, self.updated_at + self.every_s - time.time()))
            if self._stop.is_set():
                return
            self._wake.clear()
            self.update()

    def update(self, final: bool = False) -> bool:
        """Rewrite the page if anything changed (always when `final`); False on an error,
        which is logged and otherwise ignored."""
        try:
            self._write(final)
            return True
        except Exception as exc:  # a page must never fail the sweep
            log.warning("sweep page: not updated: %s: %s", type(exc).__name__,
                        mask_secrets(str(exc), self.tracker.uri))
            return False
        finally:
            self.updated_at = time.time()

    def _write(self, final: bool) -> None:
        trials = self.study.get_trials(deepcopy=False)
        seen = tuple((t.number, t.state, len(t.intermediate_values), len(exploits(t)))
                     for t in trials)
        if seen == self.seen and not final:
            return
        top = top_trials(trials, self.spec)
        files = self._figures(trials, final)
        sheet = contact_sheet(self._tiles(top))
        if sheet is not None:
            files[SHEET] = sheet
        tracker = self.tracker
        confirmed, at = self._confirmed()
        has_lineage = self.has_lineage or LINEAGE_PNG in files
        page = Page(self.spec, tracker.experiment_id, tracker.parent_run_id, trials, top,
                    has_sheet=sheet is not None,
                    has_figures=self.drawn is not None or FIGURES in files, final=final,
                    confirmed=confirmed, confirmed_at=at, has_lineage=has_lineage)
        best = best_complete(trials, self.spec)
        tags = {TAG_BEST_RUN: best.run_id} if best is not None and best.run_id else {}
        tracker.log_page(note(page), tags, files)
        self.seen, self.has_lineage = seen, has_lineage
        if FIGURES in files:  # drawn and written: not again until more trials finish
            self.drawn = tuple(t.number for t in trials if t.state.is_finished())

    def _confirmed(self) -> tuple[tuple, str]:
        """The sweep's confirm table, when `gansweep confirm` ran on it (its study is beside
        the sweep's)."""
        if self.spec.multi:
            return (), "last"
        if self._storage is None:
            self._storage = open_storage(self.storage_url)
        confirm = load_confirm_study(self.spec.name, self._storage)
        if confirm is None:
            return (), "last"
        at = confirm.user_attrs.get(CONFIRM_AT_ATTR, "last")
        return tuple(confirm_table(self.study, confirm, at)), at

    def _figures(self, trials: list[FrozenTrial], final: bool) -> dict[str, bytes]:
        """The figures: Optuna's redrawn only when trials finished since they were last drawn;
        a PBT sweep's lineage at every update (its members finish only at the end, and each
        evaluation and round changes it; it takes a fraction of a second)."""
        files = self._lineage(trials)
        finished = tuple(t.number for t in trials if t.state.is_finished())
        if finished == self.drawn and not final:
            return files
        found = figures_html(self.study, self.spec.objective.metric,
                             f"Sweep {self.spec.name}: {len(finished)} trials finished")
        if found is not None:
            files[FIGURES] = found
        return files

    def _lineage(self, trials: list[FrozenTrial]) -> dict[str, bytes]:
        """A PBT sweep's LINEAGE_PNG, once a member exists; {} for other sweeps, or when it
        cannot be drawn (a warning: the rest of the page is still written)."""
        pbt, spec = self.spec.scheduler, self.spec
        if pbt is None:
            return {}
        try:
            found = lineage_figure(trials, pbt.interval, spec.budget.steps, spec.objective.metric,
                                   spec.objective.direction == "maximize")
        except Exception as exc:  # a page must never fail the sweep
            log.warning("sweep page: no lineage figure: %s: %s", type(exc).__name__, exc)
            return {}
        return {} if found is None else {LINEAGE_PNG: found}

    def _tiles(self, top: list[Ranked]) -> list[tuple[str, bytes]]:
        """(label, samples.png) of each top trial whose run has one yet."""
        tiles = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, r in enumerate(top, 1):
                if not r.run_id:
                    continue
                try:
                    path = self.tracker.client.download_artifacts(r.run_id, SAMPLES_PNG, tmp)
                except Exception:  # no samples yet (before its first eval)
                    continue
                step = f" (step {r.step})" if r.step is not None else ""
                tiles.append((f"#{i} trial {r.trial.number} · {r.value:.4g}{step}",
                              Path(path).read_bytes()))
        return tiles
