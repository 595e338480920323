"""A sweep read back from its study: the trial table, the best trial or Pareto front, the
objectives. For `status` and `best`; Optuna only (no MLflow, no Ray, no torch), so the
read-only commands start fast. Which trial is best is orchestrator/study/ranking.py's to say.
"""

from __future__ import annotations

from typing import Any

import optuna

from orchestrator.errors import SpecError
from orchestrator.layout import (
    ATTEMPT_ATTR,
    PRUNED_REASON_ATTR,
    REASON_ATTR,
    RUN_ATTR,
    SEED_ATTR,
)
from orchestrator.study.ranking import best_trials as ranked_best
from orchestrator.study.studies import metric_names


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
            "params": t.params, "seed": t.user_attrs.get(SEED_ATTR),
            "run_id": t.user_attrs.get(RUN_ATTR),
            "reason": t.user_attrs.get(REASON_ATTR) or t.user_attrs.get(PRUNED_REASON_ATTR),
            "attempt": t.user_attrs.get(ATTEMPT_ATTR, 1),
            "last_step": max(t.intermediate_values, default=None),
            "duration_s": duration})
    return rows


def best_trials(study: optuna.Study) -> list[dict[str, Any]]:
    """The best trial, or with several objectives the Pareto front, as plain dicts."""
    names = metric_names(study)
    return [{"number": t.number, "values": _values(t, names), "params": t.params,
             "seed": t.user_attrs.get(SEED_ATTR), "run_id": t.user_attrs.get(RUN_ATTR)}
            for t in ranked_best(study)]


def objectives(study: optuna.Study) -> list[dict[str, str]]:
    return [{"metric": m, "direction": d.name.lower()}
            for m, d in zip(metric_names(study), study.directions, strict=True)]


def sweep_summaries(storage: str) -> list[dict[str, Any]]:
    """One dict per study in `storage`, by name: trials, first metric, best value (one
    objective only)."""
    from orchestrator.study.studies import open_storage

    opened, found = open_storage(storage), []
    for name in sorted(optuna.get_all_study_names(opened)):
        study = optuna.load_study(study_name=name, storage=opened)
        try:
            best = ranked_best(study) if len(study.directions) == 1 else []
        except SpecError:  # no completed trial yet
            best = []
        found.append({"name": name, "trials": len(study.get_trials(deepcopy=False)),
                      "metric": metric_names(study)[0],
                      "best": best[0].value if best else None})
    return found
