"""A trial run's contents as MLflow entities (params, end tags, metrics), the steps a run already
has, and an earlier run's params read back as a space's values (`--enqueue-from`). Used by the
driver's tracker and, on its logging thread, by an actor's run logger."""

from __future__ import annotations

import os
import reprlib
from collections.abc import Iterable
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from orchestrator.errors import SpecError
from orchestrator.layout import TAG_REASON, TAG_STATE
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.redact import redact_uri
from orchestrator.stores.uris import sqlite_file

# MLflow prints "View run ... at: URI" for each run it ends on a server, userinfo and all, once
# per trial from every actor: a credential on the screen, and noise under the progress display.
# Set here, where the driver's tracker and every actor's run logger import from.
os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"


def params_of(params: dict[str, Any]) -> list[Param]:
    """A trial's params as MLflow writes them (the actor's and the driver's write agree, so
    MLflow accepts the second)."""
    return [Param(k, str(v)) for k, v in sorted(params.items())]


def end_tags(state: str, reason: str) -> list[RunTag]:
    """The tags a trial's run gets when it ends, from its actor or from the driver."""
    return [RunTag(TAG_STATE, state)] + ([RunTag(TAG_REASON, reason)] if reason else [])


def metrics(rows: Iterable[tuple[str, float, int, int]]) -> list[Metric]:
    """MLflow metrics of (key, value, timestamp ms, step) rows."""
    return [Metric(key, float(value), int(ts), int(step)) for key, value, ts, step in rows]


def logged_steps(client: MlflowClient, run_id: str) -> dict[str, int]:
    """The last step MLflow has for each metric of a run."""
    keys = client.get_run(run_id).data.metrics
    return {key: max((m.step for m in client.get_metric_history(run_id, key)), default=-1)
            for key in keys}


def params_from_run(tracking_uri: str, run_id: str, spec: SweepSpec) -> dict:
    """An earlier run's values of this spec's searched params, typed as the space says; read
    before anything is created (a sqlite file that is not there holds no run)."""
    file = sqlite_file(tracking_uri)
    try:
        if file is not None and not file.exists():
            raise LookupError(run_id)
        logged = MlflowClient(tracking_uri).get_run(run_id).data.params
    except Exception:
        raise SpecError(f"--enqueue-from: no MLflow run {reprlib.repr(run_id)} in "
                        f"{redact_uri(tracking_uri)}") from None
    params = {}
    for p in spec.space:
        if p.name not in logged:
            continue
        text = logged[p.name]
        if p.kind == "categorical":
            matches = [c for c in p.choices if str(c) == text]
            if not matches:
                raise SpecError(f"--enqueue-from: {p.name}={reprlib.repr(text)} is not one of "
                                f"space.{p.name}.choices")
            params[p.name] = matches[0]
            continue
        try:
            params[p.name] = int(float(text)) if p.kind == "int" else float(text)
        except ValueError:
            raise SpecError(f"--enqueue-from: {p.name}={reprlib.repr(text)} in run {run_id} "
                            f"is not a number") from None
    if not params:
        raise SpecError(f"--enqueue-from: run {run_id} has none of this spec's parameters")
    return params
