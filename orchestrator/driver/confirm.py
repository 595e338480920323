"""The confirm phase: is the sweep's winner a good config, or a lucky seed?

The top K completed trials' params are retrained on S fresh seeds each, as trials of a second
study, `NAME-confirm`, in the same storage, with no pruner and 4x the eval samples; each run is
a child of the sweep's parent run with `gansweep.role=confirm`. A sweep whose spec says
`budget: {confirm: {top: K, seeds: S}}` runs it when its search ends, on the same actors and
into the same parent run (driver/launch.py); `gansweep confirm NAME` runs it afterwards
(orchestrator/registry/confirm.py). Both meet here: the confirm sweep's spec, the (config, seed)
pairs to enqueue, and the table logged to the parent run.

The table gives, per config, the mean and standard deviation of the final objective over its
seeds and a pessimistic one-sided 95% bound (orchestrator/study/ranking.py ranks by it; `promote`
picks the config whose bound is best once a confirmation exists).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
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
    PBT_SCHEDULE_ATTR,
    SEED_INDEX_ATTR,
    TAG_CONFIRMED_AT,
    TAG_CONFIRMED_BOUND,
    TAG_CONFIRMED_TRIAL,
)
from orchestrator.spec.health import HealthSpec
from orchestrator.spec.search import PrunerSpec, SamplerSpec
from orchestrator.spec.sweep import SweepSpec
from orchestrator.study.ranking import (
    ConfirmRow,
    confirm_table,
    maximizes,
    most_trustworthy,
    ranked,
)
from orchestrator.study.studies import confirm_name, load_confirm_study, open_study

SAMPLES_FACTOR = 4  # samples per evaluation (points or images), relative to the sweep's
LOST = (TrialState.FAIL, TrialState.PRUNED)


def fresh_seed(seed: int) -> int:
    """The confirm study's sampler seed: its trials' seeds differ from every sweep trial's."""
    return int(np.random.SeedSequence([seed, 0xC0F1]).generate_state(1)[0])


def confirm_spec(spec: SweepSpec, trials: int) -> SweepSpec:
    """The sweep's spec as a confirm sweep: its own study and checkpoints (`NAME-confirm`),
    a budget of one trial per (config, seed), no pruning, fresh seeds, more samples per eval."""
    budget = dataclasses.replace(spec.budget, trials=trials, time_s=None,
                                 eval_scale=SAMPLES_FACTOR, confirm=None)
    # every trial is enqueued: random never draws (a grid sampler would cap the budget)
    return dataclasses.replace(
        spec, name=confirm_name(spec.name), budget=budget, pruner=PrunerSpec(), enqueue=(),
        scheduler=None,  # a PBT member's config is its schedule: each run replays it
        health=HealthSpec.off(),  # a config retrained to be measured: nothing stops it early
        sampler=SamplerSpec("random", fresh_seed(spec.sampler.seed)))


def missing_pairs(study: optuna.Study, chosen: list[FrozenTrial], seeds: int,
                  retry: bool = True) -> list[tuple[FrozenTrial, int]]:
    """The (config, seed index) pairs the confirm study has no trial for (run, running or
    queued); with `retry`, a pair whose trial failed or was pruned counts as missing."""
    have = {(t.user_attrs.get(CONFIRMS_ATTR), t.user_attrs.get(SEED_INDEX_ATTR))
            for t in study.get_trials(deepcopy=False) if not (retry and t.state in LOST)}
    return [(source, index) for source in chosen for index in range(seeds)
            if (source.number, index) not in have]


def enqueue_missing(study: optuna.Study, chosen: list[FrozenTrial], seeds: int,
                    retry: bool = True) -> int:
    """Enqueue the `missing_pairs`; returns how many trials the study then has in all: the
    confirm's budget."""
    for source, index in missing_pairs(study, chosen, seeds, retry):
        schedule = source.user_attrs.get(PBT_SCHEDULE_ATTR)  # a PBT member's: replayed
        first = schedule[0][1] if schedule else source.params  # where its line began
        params = {k: first.get(k, v) for k, v in source.params.items()}
        study.enqueue_trial(params, user_attrs={
            CONFIRMS_ATTR: source.number, SEED_INDEX_ATTR: index,
            **({PBT_SCHEDULE_ATTR: schedule} if schedule else {})})
    return len(study.get_trials(deepcopy=False))


def pairs_left(sweep: optuna.Study, confirm: optuna.Study | None, top: int, seeds: int) -> int:
    """How many confirm runs the sweep's confirm phase still has to run or finish: pairs of
    its top `top` completed configs with no trial yet, and trials queued or left RUNNING. A
    pair whose trial failed is not run again (`gansweep confirm` retries those)."""
    if len(sweep.directions) > 1:
        return 0
    chosen = [r.trial for r in ranked(sweep.get_trials(deepcopy=False,
                                                       states=(TrialState.COMPLETE,)),
                                      maximizes(sweep))[:top]]
    if confirm is None:
        return len(chosen) * seeds
    unfinished = confirm.get_trials(deepcopy=False,
                                    states=(TrialState.WAITING, TrialState.RUNNING))
    return len(missing_pairs(confirm, chosen, seeds, retry=False)) + len(unfinished)


def check_confirm_study(name: str, storage: str | optuna.storages.BaseStorage) -> None:
    """Sweep NAME's confirm study, if it exists, must be that sweep's (not a sweep that a user
    named NAME-confirm)."""
    existing = load_confirm_study(name, storage)
    if existing is not None and existing.user_attrs.get(CONFIRM_OF_ATTR) != name:
        raise SpecError(f"sweep {confirm_name(name)!r} in the same storage is not the confirm "
                        f"study of {name!r}: rename one of the two sweeps")


@dataclass(frozen=True)
class ConfirmPlan:
    sweep: SweepSpec  # the sweep's spec
    spec: SweepSpec  # the confirm sweep's (`confirm_spec`), its budget every planned pair
    configs: int = 0  # how many configs it confirms


def plan_pairs(sweep: SweepSpec, chosen: list[FrozenTrial], seeds: int, storage: str,
         retry: bool = True) -> ConfirmPlan:
    """Open sweep `sweep`'s confirm study and enqueue the (config, seed) pairs of `chosen` it
    lacks (`retry`: and those whose trial failed)."""
    check_confirm_study(sweep.name, storage)
    study = open_study(confirm_spec(sweep, len(chosen) * seeds), storage)
    study.set_user_attr(CONFIRM_OF_ATTR, sweep.name)
    budget = enqueue_missing(study, chosen, seeds, retry)
    return ConfirmPlan(sweep, confirm_spec(sweep, budget), len(chosen))


def plan_phase(spec: SweepSpec, sweep: optuna.Study, storage: str,
               notice: Callable[[str], None]) -> ConfirmPlan | None:
    """The confirm phase of a sweep whose spec has `budget.confirm`, once its search ended: its
    top K completed configs on S seeds (fewer configs when fewer completed, said so); None when
    none completed."""
    top, seeds = spec.budget.confirm.top, spec.budget.confirm.seeds
    completed = ranked(sweep.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                       maximizes(sweep))
    if not completed:
        notice(f"{spec.name}: no trial completed: nothing to confirm")
        return None
    if len(completed) < top:
        notice(f"{spec.name}: budget.confirm.top is {top}, and only {len(completed)} trial(s) "
               f"completed: confirming those")
    return plan_pairs(spec, [r.trial for r in completed[:top]], seeds, storage, retry=False)


def log_table(tracker, sweep: optuna.Study, confirm: optuna.Study, spec: SweepSpec,
              at: str = "last") -> list[ConfirmRow]:
    """The table on the sweep's parent run (`tracker`'s): its files and the confirmed-trial
    tags; returned best bound first. `at` is kept on the confirm study, for the page and
    `promote`."""
    rows = confirm_table(sweep, confirm, at)
    confirm.set_user_attr(CONFIRM_AT_ATTR, at)
    objective = spec.objective
    text = table_text(rows, objective.metric, objective.direction == "maximize")
    tracker.log_files({CONFIRM_TABLE_TXT: text.encode(), CONFIRM_TABLE_CSV: table_csv(rows)})
    best = most_trustworthy(rows)
    if best is not None:
        tracker.set_sweep_tags({TAG_CONFIRMED_TRIAL: str(best.trial),
                                TAG_CONFIRMED_BOUND: repr(best.bound), TAG_CONFIRMED_AT: at})
    return rows


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


def table_now(spec: SweepSpec, storage: str) -> tuple[str, ConfirmRow | None] | None:
    """Sweep `spec`'s confirm table as it stands, as text, and its most trustworthy row; None
    when it was never confirmed (what `gansweep launch` prints after a confirm phase)."""
    from orchestrator.study.studies import load_study

    confirm = load_confirm_study(spec.name, storage)
    if confirm is None or spec.multi:
        return None
    rows = confirm_table(load_study(spec.name, storage), confirm,
                         confirm.user_attrs.get(CONFIRM_AT_ATTR, "last"))
    text = table_text(rows, spec.objective.metric, spec.objective.direction == "maximize")
    return text, most_trustworthy(rows)
