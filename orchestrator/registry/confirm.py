"""`gansweep confirm NAME --top K --seeds S`: is the sweep's winner a good config, or a lucky seed?

The top K completed trials' params are retrained on S fresh seeds each, as trials of a second
study, `NAME-confirm`, in the same storage. It runs through `launch` like any sweep (same actor
pool, checkpoints and resume guarantees: run the same command again to continue it), with no
pruner, and each confirm run is a child of the sweep's parent run with `gansweep.role=confirm`.
Running it again with a larger K or S adds only the missing (config, seed) pairs.

The table gives, per config, the mean and standard deviation of the final objective over its
seeds and a pessimistic one-sided 95% Student-t bound: mean - t * std / sqrt(n) for a maximized
objective (a lower confidence bound), mean + t * std / sqrt(n) for a minimized one. `promote`
picks the config whose bound is best once a confirmation exists.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from orchestrator.errors import SpecError
from orchestrator.spec.search import PrunerSpec, SamplerSpec
from orchestrator.spec.sweep import SweepSpec
from orchestrator.study.studies import USER_ATTR_CONFIRMS as ATTR_OF
from orchestrator.study.studies import USER_ATTR_RUN
from orchestrator.study.studies import USER_ATTR_SEED_INDEX as ATTR_SEED_INDEX

SUFFIX = "-confirm"
ROLE = "confirm"
CONFIRM_ATTR = "gansweep.confirm_of"  # on a confirm study: the sweep it confirms
AT_ATTR = "gansweep.confirm_at"  # on a confirm study: --at of its last table (promote ranks so)
CONFIDENCE = 0.95
SAMPLES_FACTOR = 4  # samples per evaluation (points or images), relative to the sweep's


def confirm_name(name: str) -> str:
    return f"{name}{SUFFIX}"


@dataclass(frozen=True)
class ConfirmRow:
    """One config of the table: the sweep trial it came from and its S retrainings."""

    trial: int
    run_id: str | None  # the sweep trial's run: the generator `promote` registers
    params: dict[str, Any]
    sweep_value: float
    values: tuple[float, ...]  # final objective of each completed confirm run
    failed: int  # confirm runs that failed or were pruned
    mean: float | None
    std: float | None
    bound: float | None  # pessimistic 95% bound; None with fewer than 2 values


def top_trials(study: optuna.Study, top: int) -> list[FrozenTrial]:
    """The `top` best completed trials of a single-objective study, best first."""
    if len(study.directions) > 1:
        raise SpecError(f"sweep {study.study_name!r} has {len(study.directions)} objectives: "
                        f"confirm ranks configs on one objective")
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise SpecError(f"sweep {study.study_name!r} has no completed trial to confirm")
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(done, key=lambda t: (-t.value if maximize else t.value, t.number))[:top]


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
    have = {(t.user_attrs.get(ATTR_OF), t.user_attrs.get(ATTR_SEED_INDEX))
            for t in study.get_trials(deepcopy=False) if t.state not in lost}
    for source in chosen:
        for index in range(seeds):
            if (source.number, index) not in have:
                study.enqueue_trial(source.params, user_attrs={ATTR_OF: source.number,
                                                               ATTR_SEED_INDEX: index})
                have.add((source.number, index))
    return len(study.get_trials(deepcopy=False))


def bound(values: list[float], maximize: bool) -> tuple[float | None, float | None, float | None]:
    """(mean, std, pessimistic one-sided bound) of `values`; std and bound need two values."""
    if not values:
        return None, None, None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None, None
    from scipy.stats import t as student_t

    std = statistics.stdev(values)
    margin = float(student_t.ppf(CONFIDENCE, len(values) - 1)) * std / math.sqrt(len(values))
    return mean, std, mean - margin if maximize else mean + margin


def run_value(trial: FrozenTrial, at: str, maximize: bool) -> float | None:
    """A completed confirm run's objective: its final one (`last`), or the best it reported
    (`best`: what its generator_best scored; optimistic, a max over its evaluations)."""
    if trial.state != TrialState.COMPLETE or trial.value is None:
        return None
    value = trial.value
    if at == "best" and trial.intermediate_values:
        pick = max if maximize else min
        value = pick([value, *trial.intermediate_values.values()])
    return value if math.isfinite(value) else None


def confirm_table(sweep: optuna.Study, confirm: optuna.Study,
                  at: str = "last") -> list[ConfirmRow]:
    """One row per confirmed config, best bound first (configs without one last)."""
    maximize = sweep.direction == optuna.study.StudyDirection.MAXIMIZE
    by_source: dict[int, list[FrozenTrial]] = {}
    for t in confirm.get_trials(deepcopy=False):
        if ATTR_OF in t.user_attrs and t.state != TrialState.WAITING:
            by_source.setdefault(int(t.user_attrs[ATTR_OF]), []).append(t)
    sources = {t.number: t for t in sweep.get_trials(deepcopy=False)}
    rows = []
    for number, runs in by_source.items():
        values = [v for t in runs if (v := run_value(t, at, maximize)) is not None]
        failed = sum(t.state in (TrialState.FAIL, TrialState.PRUNED) for t in runs)
        source = sources[number]
        rows.append(ConfirmRow(number, source.user_attrs.get(USER_ATTR_RUN), source.params,
                               source.value, tuple(values), failed, *bound(values, maximize)))

    def rank(row: ConfirmRow):
        if row.bound is None:
            return (1, 0.0, row.trial)
        return (0, -row.bound if maximize else row.bound, row.trial)
    return sorted(rows, key=rank)


def confirmed_choice(sweep: optuna.Study, confirm: optuna.Study | None,
                     at: str = "last") -> ConfirmRow | None:
    """The config with the best bound, when a confirmation has one."""
    return most_trustworthy(confirm_table(sweep, confirm, at) if confirm is not None else [])


def most_trustworthy(rows: list[ConfirmRow]) -> ConfirmRow | None:
    """The first row of a table (best bound first), when it has a bound."""
    return rows[0] if rows and rows[0].bound is not None else None


def load_confirm_study(name: str, storage) -> optuna.Study | None:
    """Sweep NAME's confirm study in `storage` (a URL, or an open Optuna storage), or None
    when it was never confirmed."""
    from orchestrator.study.studies import open_storage

    if isinstance(storage, str):
        storage = open_storage(storage)
    try:
        return optuna.load_study(study_name=confirm_name(name), storage=storage)
    except KeyError:
        return None


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


def plan_confirm(name: str, top: int, seeds: int, storage: str) -> ConfirmPlan:
    """Open sweep NAME's confirm study and enqueue the (config, seed) pairs it lacks."""
    from pathlib import Path

    from orchestrator.study.record import resume_args
    from orchestrator.study.studies import load_study, open_study

    for flag, value, least in (("--top", top, 1), ("--seeds", seeds, 2)):
        if value < least:
            raise SpecError(f"{flag}: must be >= {least}, got {value}"
                            + (" (a spread needs two seeds)" if flag == "--seeds" else ""))
    found = resume_args(name, storage)
    sweep = SweepSpec.parse(found.spec, source=Path(found.spec_path or "spec").name,
                            path=found.spec_path)
    chosen = top_trials(load_study(name, storage), top)
    existing = load_confirm_study(name, storage)
    if existing is not None and existing.user_attrs.get(CONFIRM_ATTR) != name:
        raise SpecError(f"sweep {confirm_name(name)!r} in the same storage is not the confirm "
                        f"study of {name!r}: rename one of the two sweeps")
    study = open_study(confirm_spec(sweep, len(chosen) * seeds), storage)
    study.set_user_attr(CONFIRM_ATTR, name)
    return ConfirmPlan(sweep, confirm_spec(sweep, enqueue_missing(study, chosen, seeds)))


def report_confirm(name: str, plan: ConfirmPlan, settings, at: str = "last") -> list[ConfirmRow]:
    """The table, logged to the sweep's parent run (confirm/table.txt and .csv, and the tags
    gansweep.confirmed_trial / confirmed_bound); returned best bound first."""
    from orchestrator.study.studies import load_study
    from orchestrator.tracking.page import SweepPage
    from orchestrator.tracking.tracker import SweepTracker

    sweep = load_study(name, settings.storage)
    confirm = load_study(confirm_name(name), settings.storage)
    rows = confirm_table(sweep, confirm, at)
    confirm.set_user_attr(AT_ATTR, at)
    objective = plan.sweep.objective
    tracker = SweepTracker(settings.tracking_uri, plan.sweep.experiment, name)
    tracker.parent_run_id = tracker.find_sweep_run()
    text = table_text(rows, objective.metric, objective.direction == "maximize")
    tracker.log_files({"confirm/table.txt": text.encode(), "confirm/table.csv": table_csv(rows)})
    best = most_trustworthy(rows)
    SweepPage(tracker, sweep, plan.sweep).update(final=True)  # its description shows the table
    if best is not None:
        tracker.set_sweep_tags({"gansweep.confirmed_trial": str(best.trial),
                                "gansweep.confirmed_bound": repr(best.bound),
                                "gansweep.confirmed_at": at})
    return rows
