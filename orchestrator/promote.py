"""Promoting a sweep's best generator to the MLflow Model Registry.

`promote` registers the best trial's logged generator in the MLflow Model Registry and points the
alias `champion` at that version. It is idempotent: a second call finds the version already
registered from that run and the alias already set, and changes nothing. Reading the sweep back
(status, best trial) is orchestrator/results.py, which needs no MLflow.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass

import optuna
from mlflow import MlflowClient

from orchestrator.errors import SpecError
from orchestrator.results import pick_trial
from orchestrator.tracking import MODEL_NAME, TAG_SWEEP, TAG_TRIAL

ALIAS = "champion"


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
