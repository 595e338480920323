"""The MLflow layout, decided here and nowhere else.

Experiment = the spec's `experiment`. One parent run per sweep (role `sweep`), one child run per
trial (role `trial`, run name `trial-0007`, nested through `mlflow.parentRunId`). Everything goes
through `MlflowClient` with explicit run ids. The driver holds a `SweepTracker` and makes every
trial's run; an actor writes into it through `orchestrator.actor.runlog.RunLogger`.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from orchestrator.stores.uris import (  # noqa: F401  (importable from here too)
    DEFAULT_TRACKING_URI,
    check_server,
    check_tracking_uri,
    resolve_tracking_uri,
)

MODEL_NAME = "generator"  # the trial's logged model, as promote looks it up
BEST_MODEL_NAME = "generator_best"  # the generator of the trial's best evaluation
# gansweep state -> MLflow run status when the run ends. A trial stopped by Ctrl-C keeps the
# state RUNNING (resumable) and its run shows KILLED until a resume reopens it.
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED", "RUNNING": "KILLED"}
TAG_SWEEP, TAG_ROLE, TAG_TRIAL, TAG_STATE = (
    "gansweep.sweep", "gansweep.role", "gansweep.trial", "gansweep.state")
TAG_REASON, TAG_NODE, TAG_GPUS = "gansweep.reason", "gansweep.node", "gansweep.gpu_ids"
TAG_FINISH_ERROR = "gansweep.finish_error"
TAG_ATTEMPT, TAG_RESUMED_FROM = "gansweep.attempt", "gansweep.resumed_from_step"
TAG_PID, TAG_RAY_NODE = "gansweep.pid", "gansweep.ray_node_id"
TAG_DEVICE = "gansweep.device"  # the torch device a trial trains on: cuda or cpu
TAG_STARTED_AT = "gansweep.started_at"  # unix time the latest attempt began on its actor
TAG_DIVERGED_STEP = "gansweep.diverged_step"
TAG_BEST_STEP, TAG_BEST_VALUE = "gansweep.best_step", "gansweep.best_value"
TAG_NOTE = "mlflow.note.content"  # a run's description in the MLflow UI (markdown)
TAG_BEST_RUN = "gansweep.best_run_id"  # on the parent run: the best trial's run
MAX_BATCH = 900  # log_batch takes at most 1000 metrics per call
# MLflow prints "View run ... at: URI" for each run it ends on a server, userinfo and all, once
# per trial from every actor: a credential on the screen, and noise under the progress display
os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"


def artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a local sqlite store go to `mlartifacts/` beside the database file.

    Absolute, as MLflow would make it anyway (a relative location is resolved against the working
    directory when the experiment is created, and every run copies it): a moved folder is mended
    by `gansweep ui --relocate` (orchestrator/relocate.py)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None  # a tracking server decides its own artifact root
    db_path = Path(tracking_uri[len("sqlite:///"):])
    return (db_path.resolve().parent / "mlartifacts").as_uri()


def metrics_of(rows: list[tuple[int, dict[str, float]]], now: int | None = None) -> list[Metric]:
    """MLflow metrics of (step, {key: value}) rows, all stamped `now` (ms; default: now)."""
    now = int(time.time() * 1000) if now is None else now
    return [Metric(k, float(v), now, step) for step, row in rows for k, v in row.items()]


def trial_run_name(number: int, role: str = "trial") -> str:
    return f"{role}-{number:04d}"


def params_of(params: dict[str, Any]) -> list[Param]:
    """A trial's params as MLflow writes them (the actor's and the driver's write agree, so
    MLflow accepts the second)."""
    return [Param(k, str(v)) for k, v in sorted(params.items())]


def end_tags(state: str, reason: str) -> list[RunTag]:
    """The tags a trial's run gets when it ends, from its actor or from the driver."""
    return [RunTag(TAG_STATE, state)] + ([RunTag(TAG_REASON, reason)] if reason else [])


def logged_steps(client: MlflowClient, run_id: str) -> dict[str, int]:
    """The last step MLflow has for each metric of a run."""
    keys = client.get_run(run_id).data.metrics
    return {key: max((m.step for m in client.get_metric_history(run_id, key)), default=-1)
            for key in keys}


def not_logged(metrics: list[Metric], logged: dict[str, int]) -> list[Metric]:
    """The metrics past the last step MLflow has for their key: steps never repeat."""
    return [m for m in metrics if m.step > logged.get(m.key, -1)]


def log_missing_metrics(client: MlflowClient, run_id: str, metrics: list[Metric]) -> int:
    """Write those of `metrics` that the run does not have yet, in batches, from the driver
    (e.g. what a dead actor left unwritten). Returns how many were written."""
    fresh = not_logged(metrics, logged_steps(client, run_id))
    for i in range(0, len(fresh), MAX_BATCH):
        client.log_batch(run_id, metrics=fresh[i:i + MAX_BATCH])
    return len(fresh)


class SweepTracker:
    """Driver-side handle on a sweep's experiment and parent run."""

    def __init__(self, tracking_uri: str, experiment: str, sweep: str, role: str = "trial"):
        """`role`: what the runs this driver makes are, under the sweep's parent run: `trial`
        (a sweep's) or `confirm` (`gansweep confirm`'s retrainings)."""
        self.uri, self.sweep, self.role = tracking_uri, sweep, role
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = self._experiment(experiment)
        self.parent_run_id: str | None = None
        self.trial_tags: dict[str, str] = {}  # set on every trial run, e.g. the feature net
        self.on_progress: Callable[[], None] = lambda: None  # the sweep page follows progress

    def fork(self) -> SweepTracker:
        """The same sweep's runs through an MLflow client of its own, for another thread."""
        twin = copy.copy(self)
        twin.client, twin.trial_tags = MlflowClient(self.uri), dict(self.trial_tags)
        return twin

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location(self.uri))
        except MlflowException:  # created meanwhile by another driver
            return self.client.get_experiment_by_name(name).experiment_id

    def find_sweep_run(self) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.`{TAG_SWEEP}` = '{self.sweep}' and tags.`{TAG_ROLE}` = 'sweep'",
            max_results=1, order_by=["attributes.start_time ASC"])
        return runs[0].info.run_id if runs else None

    def trial_runs_exist(self) -> bool:
        """Whether trials of this sweep already have runs in the experiment."""
        return bool(self.client.search_runs(
            [self.experiment_id],
            f"tags.`{TAG_SWEEP}` = '{self.sweep}' and tags.`{TAG_ROLE}` = '{self.role}'",
            max_results=1))

    def open_sweep_run(self, spec_text: str, spec_name: str) -> str:
        """Reuse the sweep's parent run when the sweep is launched again, else create it."""
        run_id = self.find_sweep_run()
        if run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=self.sweep, tags={
                TAG_SWEEP: self.sweep, TAG_ROLE: "sweep"})
            run_id = run.info.run_id
            self.client.log_text(run_id, spec_text, f"spec/{spec_name}")
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.parent_run_id = run_id
        return run_id

    def create_trial_run(self, number: int, tags: dict[str, str] | None = None) -> str:
        """Trial `number`'s run, one write: made by the driver as it asks the trial ahead, so
        its id is on the Optuna trial before any actor starts it."""
        run = self.client.create_run(self.experiment_id, run_name=trial_run_name(
            number, self.role), tags={
            "mlflow.parentRunId": self.parent_run_id, TAG_SWEEP: self.sweep, TAG_ROLE: self.role,
            **self.trial_tags, **(tags or {}), TAG_TRIAL: str(number), TAG_STATE: "RUNNING"})
        return run.info.run_id

    def find_trial_run(self, number: int) -> str | None:
        """The run of trial `number` of this sweep, if one was made."""
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.`{TAG_SWEEP}` = '{self.sweep}' and tags.`{TAG_ROLE}` = '{self.role}' "
            f"and tags.`{TAG_TRIAL}` = '{number}'", max_results=1,
            order_by=["attributes.start_time ASC"])
        return runs[0].info.run_id if runs else None

    def resume_trial_run(self, number: int, run_id: str | None,
                         tags: dict[str, str] | None = None) -> str:
        """The run a trial left RUNNING continues in, RUNNING again (same id, same history): its
        recorded run, else the one found by its tags (its driver died between making the run
        and recording it), else a new one (it died before making it). Never a second run."""
        run_id = run_id or self.find_trial_run(number)
        if run_id is None:
            return self.create_trial_run(number, tags)
        self.client.log_batch(run_id, tags=[RunTag(TAG_STATE, "RUNNING")])
        self.client.update_run(run_id, status="RUNNING")
        return run_id

    def end_trial_run(self, run_id: str, state: str, reason: str = "",
                      params: dict[str, Any] | None = None) -> None:
        """Close a trial's run from the driver (when no actor holds the trial), with its params
        in the same write: an actor may have died before writing them."""
        self.client.log_batch(run_id, params=params_of(params or {}),
                              tags=end_tags(state, reason))
        self.client.set_terminated(run_id, RUN_STATUS.get(state, "KILLED"))

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """A trial's params, from the driver (the same values its actor logs, if it did)."""
        self.client.log_batch(run_id, params=params_of(params))

    def log_sweep_facts(self, metrics: dict[str, float], tags: dict[str, str]) -> None:
        """Facts about the whole sweep on its parent run (e.g. the FD floor of the data)."""
        self.trial_tags = dict(tags)
        self.client.log_batch(self.parent_run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.log_progress(metrics, step=0)

    def log_sweep_params(self, params: dict[str, str], tags: dict[str, str]) -> list[str]:
        """The sweep's settings on its parent run: `params` once (MLflow never changes a param,
        so a relaunch writes only new ones), `tags` (what may change) every time. Returns the
        params whose value changed since the first launch (their first value is kept)."""
        logged = self.client.get_run(self.parent_run_id).data.params
        new = {k: v for k, v in params.items() if k not in logged}
        self.client.log_batch(self.parent_run_id, params=params_of(new),
                              tags=[RunTag(k, v) for k, v in tags.items()])
        return sorted(k for k, v in params.items() if k in logged and logged[k] != str(v))

    def log_page(self, note: str, tags: dict[str, str], files: dict[str, bytes]) -> None:
        """The sweep's page on its parent run: the description (markdown), tags, files."""
        self.client.log_batch(self.parent_run_id, tags=[
            RunTag(TAG_NOTE, note), *(RunTag(k, v) for k, v in tags.items())])
        if files:
            self.log_files(files)

    def log_files(self, files: dict[str, bytes]) -> None:
        """Write {artifact path: content} to the parent run in one upload."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for rel, data in files.items():
                path = Path(tmp) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            self.client.log_artifacts(self.parent_run_id, tmp)

    def log_progress(self, metrics: dict[str, float], step: int) -> None:
        """The sweep's progress on its parent run (`sweep/...`; `confirm/...` for a confirm)."""
        if self.role != "trial":
            metrics = {k.replace("sweep/", f"{self.role}/", 1): v for k, v in metrics.items()}
        now = int(time.time() * 1000)
        self.client.log_batch(self.parent_run_id, metrics=[
            Metric(k, float(v), now, step) for k, v in metrics.items()])

    def set_sweep_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.parent_run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def close_sweep(self, status: str = "FINISHED", tags: dict[str, str] | None = None) -> None:
        if tags:
            self.client.log_batch(self.parent_run_id,
                                  tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self.client.set_terminated(self.parent_run_id, status)
