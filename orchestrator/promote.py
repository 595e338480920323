"""Reading a finished sweep back (status, best trial) and promoting its best generator.

`promote` registers the best trial's logged generator in the MLflow Model Registry and points the
alias `champion` at that version. It is idempotent: a second call finds the version already
registered from that run and the alias already set, and changes nothing.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any

import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.spec import SpecError
from orchestrator.study import (
    USER_ATTR_ATTEMPT,
    USER_ATTR_REASON,
    USER_ATTR_RUN,
    USER_ATTR_SEED,
    metric_names,
)
from orchestrator.tracking import MODEL_NAME, TAG_SWEEP, TAG_TRIAL

ALIAS = "champion"


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


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: str
    run_id: str
    trial: int
    created: bool
    alias_moved: bool


def check_model_name(model_name: str) -> None:
    """A registered model name MLflow's search filters can hold: no quotes, no control
    characters (the filter is a quoted string), at most 200 characters."""
    bad = [c for c in model_name if c in "'\"\\" or not c.isprintable()]
    if not model_name.strip() or bad or len(model_name) > 200:
        why = f"must not contain {bad[0]!r}" if bad else "must be 1 to 200 printable characters"
        raise SpecError(f"--model-name: {why}, got {reprlib.repr(model_name)}")


def promote(study: optuna.Study, tracking_uri: str, model_name: str,
            pick: str | None = None) -> Promotion:
    import mlflow

    check_model_name(model_name)
    best = pick_trial(study, pick)
    # the registry store resolves `models:/m-...` sources through the process-wide tracking URI
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    run_id = best["run_id"]
    existing = client.search_model_versions(f"name = '{model_name}' and run_id = '{run_id}'")
    if existing:
        version, created = existing[0].version, False
    else:
        version, created = _register(client, run_id, model_name), True
    current = _alias_version(client, model_name)
    if current != str(version):
        client.set_registered_model_alias(model_name, ALIAS, version)
    return Promotion(model_name, str(version), run_id, best["number"], created,
                     current != str(version))


def _register(client: MlflowClient, run_id: str, model_name: str) -> str:
    import mlflow

    run = client.get_run(run_id)
    models = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_NAME}'")
    if not models:
        raise SpecError(f"run {run_id} has no logged {MODEL_NAME} model to promote")
    try:
        client.get_registered_model(model_name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(model_name, tags={TAG_SWEEP: run.data.tags.get(TAG_SWEEP)})
    version = client.create_model_version(
        model_name, source=models[0].model_uri, run_id=run_id, model_id=models[0].model_id,
        tags={TAG_TRIAL: run.data.tags.get(TAG_TRIAL)})
    return str(version.version)


def _alias_version(client: MlflowClient, model_name: str) -> str | None:
    import mlflow

    try:
        return str(client.get_model_version_by_alias(model_name, ALIAS).version)
    except mlflow.exceptions.MlflowException:
        return None
