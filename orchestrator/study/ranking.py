"""Which trial is best, and which config to trust: one ranking for every reader that asks (the
scheduler's running best, `best`, the sweep page, `confirm`'s top K, `promote`'s champion).

- A trial ranks by its value of the (first) objective in the study's direction, ties to the
  lower trial number: a complete trial by its final value, a running one (where the reader asks
  for it) by its latest report. A value that is not finite never ranks.
- With several objectives, the best is the Pareto front (Optuna's); `promote --pick METRIC`
  chooses the point of the front best on one objective.
- A confirmed config (`gansweep confirm`: retrained on fresh seeds) ranks by a pessimistic
  one-sided 95% Student-t bound of its runs' objective, mean - t * std / sqrt(n) for a
  maximized objective (a lower confidence bound), mean + t * std / sqrt(n) for a minimized one;
  configs without a bound (fewer than two values) rank last. Once a confirmation has a bound,
  the champion is its best config, not the sweep's luckiest run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from orchestrator.errors import SpecError
from orchestrator.layout import CONFIRM_AT_ATTR, CONFIRMS_ATTR, RUN_ATTR
from orchestrator.study.studies import metric_names

CONFIDENCE = 0.95


def maximizes(study: optuna.Study) -> bool:
    """Whether the study's (first) objective is maximized."""
    return study.directions[0] == optuna.study.StudyDirection.MAXIMIZE


def better(value: float, than: float | None, maximize: bool) -> bool:
    """Whether `value` beats `than` (None: nothing to beat)."""
    return than is None or (value > than if maximize else value < than)


# -- trials -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ranked:
    """A ranked trial: its (first) objective value, or a running trial's latest report."""

    trial: FrozenTrial
    value: float
    step: int | None = None  # the step of a running trial's reported value; None once complete

    @property
    def run_id(self) -> str | None:
        return self.trial.user_attrs.get(RUN_ATTR)


def ranked(trials: Iterable[FrozenTrial], maximize: bool, running: bool = False) -> list[Ranked]:
    """The complete trials, best first; with `running`, the running ones too, by their latest
    reported value (for a reader whose reports are of the objective)."""
    found = []
    for t in trials:
        if t.state == TrialState.COMPLETE and t.values:
            found.append(Ranked(t, t.values[0]))
        elif running and t.state == TrialState.RUNNING and t.intermediate_values:
            step = max(t.intermediate_values)
            found.append(Ranked(t, t.intermediate_values[step], step))
    sign = -1.0 if maximize else 1.0
    return sorted((r for r in found if math.isfinite(r.value)),
                  key=lambda r: (sign * r.value, r.trial.number))


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial, or with several objectives the Pareto front (by trial number)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    top = ranked(done, maximizes(study)) if len(study.directions) == 1 else []
    if not done or (len(study.directions) == 1 and not top):
        raise SpecError(f"sweep {study.study_name!r} has no completed trial yet")
    if top:
        return [top[0].trial]
    return sorted(study.best_trials, key=lambda t: t.number)


def top_trials(study: optuna.Study, top: int) -> list[FrozenTrial]:
    """The `top` best completed trials of a single-objective study, best first."""
    if len(study.directions) > 1:
        raise SpecError(f"sweep {study.study_name!r} has {len(study.directions)} objectives: "
                        f"confirm ranks configs on one objective")
    found = ranked(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                   maximizes(study))
    if not found:
        raise SpecError(f"sweep {study.study_name!r} has no completed trial to confirm")
    return [r.trial for r in found[:top]]


def pareto_pick(study: optuna.Study, pick: str | None) -> tuple[FrozenTrial, str]:
    """The trial to promote by its sweep value, and the metric it was chosen on: the best
    trial, or the point of the Pareto front best on the objective `pick`."""
    front, names = best_trials(study), metric_names(study)
    if pick is None:
        if len(names) > 1:
            raise SpecError(f"sweep {study.study_name!r} has {len(names)} objectives: choose a "
                            f"point of its Pareto front with --pick METRIC (one of "
                            f"{', '.join(names)})")
        return front[0], names[0]
    if pick not in names:
        raise SpecError(f"--pick: {pick!r} is not an objective of {study.study_name!r} "
                        f"(objectives: {', '.join(names)})")
    i = names.index(pick)
    maximize = study.directions[i] == optuna.study.StudyDirection.MAXIMIZE
    best = max if maximize else min
    return best(front, key=lambda t: t.values[i]), pick


# -- confirmed configs --------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfirmRow:
    """One config of a confirm table: the sweep trial it came from and its retrainings."""

    trial: int
    run_id: str | None  # the sweep trial's run: the generator `promote` registers
    params: dict[str, Any]
    sweep_value: float
    values: tuple[float, ...]  # final objective of each completed confirm run
    failed: int  # confirm runs that failed or were pruned
    mean: float | None
    std: float | None
    bound: float | None  # pessimistic 95% bound; None with fewer than 2 values


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
    maximize = maximizes(sweep)
    by_source: dict[int, list[FrozenTrial]] = {}
    for t in confirm.get_trials(deepcopy=False):
        if CONFIRMS_ATTR in t.user_attrs and t.state != TrialState.WAITING:
            by_source.setdefault(int(t.user_attrs[CONFIRMS_ATTR]), []).append(t)
    sources = {t.number: t for t in sweep.get_trials(deepcopy=False)}
    rows = []
    for number, runs in by_source.items():
        values = [v for t in runs if (v := run_value(t, at, maximize)) is not None]
        failed = sum(t.state in (TrialState.FAIL, TrialState.PRUNED) for t in runs)
        source = sources[number]
        rows.append(ConfirmRow(number, source.user_attrs.get(RUN_ATTR), source.params,
                               source.value, tuple(values), failed, *bound(values, maximize)))

    def rank(row: ConfirmRow):
        if row.bound is None:
            return (1, 0.0, row.trial)
        return (0, -row.bound if maximize else row.bound, row.trial)
    return sorted(rows, key=rank)


def most_trustworthy(rows: list[ConfirmRow]) -> ConfirmRow | None:
    """The first row of a confirm table (best bound first), when it has a bound."""
    return rows[0] if rows and rows[0].bound is not None else None


# -- the champion -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    """Which trial to promote and why."""

    sweep: str
    trial: int
    run_id: str
    metric: str  # the objective it was ranked by
    direction: str  # minimize | maximize
    value: float  # its value of `metric` (a confirmed config's: its mean over fresh seeds)
    rule: str  # for people: "best eval/score (maximize)"


def champion(study: optuna.Study, confirm: optuna.Study | None = None,
             pick: str | None = None) -> Choice:
    """The trial `promote` registers: the config `gansweep confirm` found most trustworthy
    (`confirm`: the sweep's confirm study, ranked as its last table was), when it has one and
    no `pick` was given; else the best trial, or the Pareto point best on `pick`."""
    if pick is None and confirm is not None and len(study.directions) == 1:
        rows = confirm_table(study, confirm, confirm.user_attrs.get(CONFIRM_AT_ATTR, "last"))
        row = most_trustworthy(rows)
        if row is not None and row.run_id:
            _check_no_newcomer(study, {r.trial for r in rows})
            return _confirmed_choice(study, row)
    found, metric = pareto_pick(study, pick)
    direction = study.directions[metric_names(study).index(metric)].name.lower()
    rule = f"best {metric} ({direction})"
    if pick is not None:
        rule = f"--pick {pick}: the Pareto point with the {rule}"
    run_id = found.user_attrs.get(RUN_ATTR)
    if not run_id:
        raise SpecError(f"trial {found.number} of {study.study_name!r} has no MLflow run")
    value = found.values[metric_names(study).index(metric)]
    return Choice(study.study_name, found.number, run_id, metric, direction, value, rule)


def _check_no_newcomer(study: optuna.Study, confirmed: set[int]) -> None:
    """The confirm table ranks only the configs it saw: a trial that entered the sweep's top k
    since (k: the configs it confirmed) has no bound, and may be the better one. Refused with
    what to run, never passed over in silence."""
    newcomers = [t.number for t in top_trials(study, len(confirmed)) if t.number not in confirmed]
    if newcomers:
        name, k = study.study_name, len(confirmed)
        listed = ", ".join(map(str, newcomers))
        raise SpecError(f"sweep {name!r}: trial(s) {listed} entered its top {k} after `gansweep "
                        f"confirm` ranked it, and have no bound: run `gansweep confirm {name} "
                        f"--top {k}` (it retrains only what it lacks), or promote by the sweep's "
                        f"own values with --unconfirmed")


def _confirmed_choice(study: optuna.Study, row: ConfirmRow) -> Choice:
    metric, direction = metric_names(study)[0], study.directions[0].name.lower()
    side = "upper" if direction == "minimize" else "lower"
    best = "lowest" if direction == "minimize" else "highest"
    rule = (f"{best} 95% {side} bound of {metric} over {len(row.values)} fresh seeds "
            f"(confirmed: bound {row.bound:.4g}, mean {row.mean:.4g} +- {row.std:.2g}; "
            f"the sweep's own value {row.sweep_value:.4g})")
    return Choice(study.study_name, row.trial, row.run_id, metric, direction, row.mean, rule)
