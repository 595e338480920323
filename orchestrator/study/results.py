"""A sweep read back from its study: the trial table, the best trial or Pareto front, the
objectives, the trial to promote. For `status`, `best` and `promote`; Optuna only (no MLflow, no
Ray, no torch), so the read-only commands start fast.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.errors import SpecError
from orchestrator.study.studies import (
    USER_ATTR_ATTEMPT,
    USER_ATTR_REASON,
    USER_ATTR_RUN,
    USER_ATTR_SEED,
    metric_names,
)


def _values(t: optuna.trial.FrozenTrial, names: list[str]) -> dict[str, float] | None:
    return None if t.values is None else dict(zip(names, t.values, strict=True))


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One plain dict per trial, for tables and `--json`."""
    names, rows = metric_names(study), []
    for t in study.get_trials(deepcopy=False):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        values = _values(t, names)
        rows.append({
            "number": t.number, "state": t.state.name,
            "value": values[names[0]] if values and len(names) == 1 else None, "values": values,
            "params": t.params, "seed": t.user_attrs.get(USER_ATTR_SEED),
            "run_id": t.user_attrs.get(USER_ATTR_RUN),
            "reason": t.user_attrs.get(USER_ATTR_REASON),
            "attempt": t.user_attrs.get(USER_ATTR_ATTEMPT, 1),
            "last_step": max(t.intermediate_values, default=None),
            "duration_s": duration})
    return rows


def best_trials(study: optuna.Study) -> list[dict[str, Any]]:
    """The best trial, or with several objectives the Pareto front (Optuna's best_trials)."""
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        raise SpecError(f"sweep {study.study_name!r} has no completed trial yet")
    names = metric_names(study)
    return [{"number": t.number, "values": _values(t, names), "params": t.params,
             "seed": t.user_attrs.get(USER_ATTR_SEED), "run_id": t.user_attrs.get(USER_ATTR_RUN)}
            for t in sorted(study.best_trials, key=lambda t: t.number)]


def objectives(study: optuna.Study) -> list[dict[str, str]]:
    return [{"metric": m, "direction": d.name.lower()}
            for m, d in zip(metric_names(study), study.directions, strict=True)]


def pick_trial(study: optuna.Study, pick: str | None) -> dict[str, Any]:
    """The trial to promote: the best one, or the Pareto point best on the metric `pick`."""
    front, goals = best_trials(study), objectives(study)
    if pick is None:
        if len(goals) > 1:
            raise SpecError(f"sweep {study.study_name!r} has {len(goals)} objectives: choose a "
                            f"point of its Pareto front with --pick METRIC (one of "
                            f"{', '.join(g['metric'] for g in goals)})")
        return front[0]
    goal = next((g for g in goals if g["metric"] == pick), None)
    if goal is None:
        raise SpecError(f"--pick: {pick!r} is not an objective of {study.study_name!r} "
                        f"(objectives: {', '.join(g['metric'] for g in goals)})")
    best = min if goal["direction"] == "minimize" else max
    return best(front, key=lambda t: t["values"][pick])
