"""`gansweep confirm NAME --top K --seeds S`: is the sweep's winner a good config, or a lucky seed?

The top K completed trials' params are retrained on S fresh seeds each, as trials of a second
study, `NAME-confirm`, in the same storage. It runs through `launch` like any sweep (same actor
pool, checkpoints and resume guarantees: run the same command again to continue it), with no
pruner, and each confirm run is a child of the sweep's parent run with `gansweep.role=confirm`.
Running it again with a larger K or S adds only the missing (config, seed) pairs.

The table gives, per config, the mean and standard deviation of the final objective over its
seeds and a pessimistic one-sided 95% bound (orchestrator/study/ranking.py ranks by it; `promote`
picks the config whose bound is best once a confirmation exists).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from orchestrator.errors import SpecError
from orchestrator.layout import (
    CONFIRM_AT_ATTR,
    CONFIRM_OF_ATTR,
    CONFIRM_TABLE_CSV,
    CONFIRM_TABLE_TXT,
    CONFIRMS_ATTR,
    ROLE_TRIAL,
    SEED_INDEX_ATTR,
    TAG_CONFIRMED_AT,
    TAG_CONFIRMED_BOUND,
    TAG_CONFIRMED_TRIAL,
)
from orchestrator.spec.search import PrunerSpec, SamplerSpec
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.settings import Settings
from orchestrator.study.ranking import ConfirmRow, confirm_table, most_trustworthy, top_trials
from orchestrator.study.record import launch_record
from orchestrator.study.studies import confirm_name, load_confirm_study, load_study, open_study

SAMPLES_FACTOR = 4  # samples per evaluation (points or images), relative to the sweep's


def fresh_seed(seed: int) -> int:
    """The confirm study's sampler seed: its trials' seeds differ from every sweep trial's."""
    return int(np.random.SeedSequence([seed, 0xC0F1]).generate_state(1)[0])


def confirm_spec(spec: SweepSpec, trials: int) -> SweepSpec:
    """The sweep's spec as a confirm sweep: its own study and checkpoints (`NAME-confirm`),
    a budget of one trial per (config, seed), no pruning, fresh seeds, more samples per eval."""
    budget = dataclasses.replace(spec.budget, trials=trials, time_s=None,
                                 eval_scale=SAMPLES_FACTOR)
    # every trial is enqueued: random never draws (a grid sampler would cap the budget)
    return dataclasses.replace(
        spec, name=confirm_name(spec.name), budget=budget, pruner=PrunerSpec(), enqueue=(),
        sampler=SamplerSpec("random", fresh_seed(spec.sampler.seed)))


def enqueue_missing(study: optuna.Study, chosen: list[FrozenTrial], seeds: int) -> int:
    """Enqueue the (config, seed) pairs the confirm study has not run, is not running and has
    not queued (a pair whose trial failed or was pruned is tried again); returns how many
    trials the study then has in all: the confirm's budget."""
    lost = (TrialState.FAIL, TrialState.PRUNED)
    have = {(t.user_attrs.get(CONFIRMS_ATTR), t.user_attrs.get(SEED_INDEX_ATTR))
            for t in study.get_trials(deepcopy=False) if t.state not in lost}
    for source in chosen:
        for index in range(seeds):
            if (source.number, index) not in have:
                study.enqueue_trial(source.params, user_attrs={CONFIRMS_ATTR: source.number,
                                                               SEED_INDEX_ATTR: index})
                have.add((source.number, index))
    return len(study.get_trials(deepcopy=False))


def table_text(rows: list[ConfirmRow], metric: str, maximize: bool) -> str:
    """The table as aligned text (printed, and logged as confirm/table.txt)."""
    side = "lower" if maximize else "upper"
    lines = [f"{'trial':>5}  {'sweep ' + metric:>18}  {'n':>3}  {'mean':>10}  {'std':>10}  "
             f"{f'95% {side} bound':>16}  failed"]
    notes = [f"(sweep: the trial's own value, on the sweep's eval samples; n, mean, std, bound: "
             f"its fresh seeds, on {SAMPLES_FACTOR}x the samples)"]
    for r in rows:
        lines.append(f"{r.trial:>5}  {_num(r.sweep_value):>18}  {len(r.values):>3}  "
                     f"{_num(r.mean):>10}  {_num(r.std):>10}  {_num(r.bound):>16}  {r.failed:>6}")
    return "\n".join(lines + notes)


def table_csv(rows: list[ConfirmRow]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trial", "run_id", "sweep_value", "n", "mean", "std", "bound", "failed",
                     "values", "params"])
    for r in rows:
        writer.writerow([r.trial, r.run_id or "", r.sweep_value, len(r.values), _blank(r.mean),
                         _blank(r.std), _blank(r.bound), r.failed,
                         " ".join(repr(v) for v in r.values),
                         json.dumps(r.params, sort_keys=True, default=str)])
    return buf.getvalue().encode()


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.5g}"


def _blank(value: float | None) -> Any:
    return "" if value is None else value


@dataclass(frozen=True)
class ConfirmPlan:
    sweep: SweepSpec  # the sweep's spec, from its launch record
    spec: SweepSpec  # the confirm sweep's (`confirm_spec`), its budget every planned pair


def check_request(top: int, seeds: int) -> None:
    for flag, value, least in (("--top", top, 1), ("--seeds", seeds, 2)):
        if value < least:
            raise SpecError(f"{flag}: must be >= {least}, got {value}"
                            + (" (a spread needs two seeds)" if flag == "--seeds" else ""))


def plan_confirm(name: str, top: int, seeds: int, storage: str) -> ConfirmPlan:
    """Open sweep NAME's confirm study in `storage` and enqueue the (config, seed) pairs it
    lacks."""
    check_request(top, seeds)
    sweep = launch_record(name, storage).sweep_spec()
    chosen = top_trials(load_study(name, storage), top)
    existing = load_confirm_study(name, storage)
    if existing is not None and existing.user_attrs.get(CONFIRM_OF_ATTR) != name:
        raise SpecError(f"sweep {confirm_name(name)!r} in the same storage is not the confirm "
                        f"study of {name!r}: rename one of the two sweeps")
    study = open_study(confirm_spec(sweep, len(chosen) * seeds), storage)
    study.set_user_attr(CONFIRM_OF_ATTR, name)
    return ConfirmPlan(sweep, confirm_spec(sweep, enqueue_missing(study, chosen, seeds)))


def report_confirm(name: str, plan: ConfirmPlan, settings: Settings,
                   at: str = "last") -> list[ConfirmRow]:
    """The table, logged to the sweep's parent run (its table files and the confirmed-trial
    tags); returned best bound first."""
    from orchestrator.tracking.page import SweepPage
    from orchestrator.tracking.tracker import SweepTracker

    sweep = load_study(name, settings.storage)
    confirm = load_study(confirm_name(name), settings.storage)
    rows = confirm_table(sweep, confirm, at)
    confirm.set_user_attr(CONFIRM_AT_ATTR, at)
    objective = plan.sweep.objective
    tracker = SweepTracker(settings.tracking_uri, plan.sweep.experiment, name, ROLE_TRIAL)
    tracker.parent_run_id = tracker.find_sweep_run()
    text = table_text(rows, objective.metric, objective.direction == "maximize")
    tracker.log_files({CONFIRM_TABLE_TXT: text.encode(), CONFIRM_TABLE_CSV: table_csv(rows)})
    best = most_trustworthy(rows)
    page = SweepPage(tracker, sweep, plan.sweep, settings.storage)
    page.update(final=True)  # its description shows the table
    if best is not None:
        tracker.set_sweep_tags({TAG_CONFIRMED_TRIAL: str(best.trial),
                                TAG_CONFIRMED_BOUND: repr(best.bound), TAG_CONFIRMED_AT: at})
    return rows
