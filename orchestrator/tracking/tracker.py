"""The driver's MLflow writes: the sweep's experiment and parent run, and every trial's run.

The layout (names, tags, roles) is orchestrator/layout.py's. Everything goes through
`MlflowClient` with explicit run ids. The driver holds a `SweepTracker` and makes every trial's
run; an actor writes into it through orchestrator/actor/runlog.py.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException

from orchestrator.layout import (
    EXPERIMENT_KIND_TAG,
    ROLE_SWEEP,
    ROLE_TRIAL,
    RUN_STATUS,
    SPEC_DIR,
    TAG_NOTE,
    TAG_PARENT_RUN,
    TAG_ROLE,
    TAG_STATE,
    TAG_SWEEP,
    TAG_TRIAL,
    TRAINING_KIND,
    role_metric,
    trial_run_name,
)
from orchestrator.stores.checks import deleted_experiment_text
from orchestrator.stores.uris import sqlite_file
from orchestrator.tracking.runs import end_tags, params_of

# MLflow's import sets its loggers to INFO, after the CLI quietened them: a first launch's
# "Creating initial MLflow database tables..." is no news to a user, and a failed database
# write is logged with its traceback before it is raised, to be reported here in one line
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a local sqlite store go to `mlartifacts/` beside the database file.

    Absolute, as MLflow would make it anyway (a relative location is resolved against the working
    directory when the experiment is created, and every run copies it): a moved folder is mended
    by `gansweep ui --relocate` (orchestrator/stores/relocate.py)."""
    db_path = sqlite_file(tracking_uri)
    if db_path is None:
        return None  # a tracking server decides its own artifact root
    return (db_path.resolve().parent / "mlartifacts").as_uri()


class DeletedExperiment(Exception):
    """The sweep's MLflow experiment exists in the deleted state: runs cannot be made in it."""


class SweepTracker:
    """Driver-side handle on a sweep's experiment and parent run."""

    def __init__(self, tracking_uri: str, experiment: str, sweep: str, role: str = ROLE_TRIAL):
        """`role`: what the runs this driver makes are, under the sweep's parent run: `trial`
        (a sweep's) or `confirm` (`gansweep confirm`'s retrainings)."""
        self.uri, self.sweep, self.role = tracking_uri, sweep, role
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = self._experiment(experiment)
        self.parent_run_id: str | None = None
        self.trial_tags: dict[str, str] = {}  # set on every trial run, e.g. the feature net

    def fork(self) -> SweepTracker:
        """The same sweep's runs through an MLflow client of its own, for another thread."""
        twin = copy.copy(self)
        twin.client, twin.trial_tags = MlflowClient(self.uri), dict(self.trial_tags)
        return twin

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None and found.lifecycle_stage == "deleted":
            raise DeletedExperiment(deleted_experiment_text(name, found.experiment_id))
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(  # its kind: opened on its runs (layout.py)
                name, artifact_location(self.uri), tags={EXPERIMENT_KIND_TAG: TRAINING_KIND})
        except MlflowException:  # created meanwhile by another driver
            return self.client.get_experiment_by_name(name).experiment_id

    def find_sweep_run(self) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.`{TAG_SWEEP}` = '{self.sweep}' and tags.`{TAG_ROLE}` = '{ROLE_SWEEP}'",
            max_results=1, order_by=["attributes.start_time ASC"])
        return runs[0].info.run_id if runs else None

    def trial_runs_exist(self) -> bool:
        """Whether trials of this sweep already have runs in the experiment."""
        return bool(self.client.search_runs(
            [self.experiment_id],
            f"tags.`{TAG_SWEEP}` = '{self.sweep}' and tags.`{TAG_ROLE}` = '{self.role}'",
            max_results=1))

    def open_trial_runs(self) -> set[str]:
        """The ids of this sweep's trial runs that are RUNNING in MLflow."""
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.`{TAG_SWEEP}` = '{self.sweep}' and tags.`{TAG_ROLE}` = '{self.role}' and "
            f"attributes.status = 'RUNNING'", max_results=10_000)
        return {run.info.run_id for run in runs}

    def open_sweep_run(self, spec_text: str, spec_name: str) -> str:
        """Reuse the sweep's parent run when the sweep is launched again, else create it."""
        run_id = self.find_sweep_run()
        if run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=self.sweep, tags={
                TAG_SWEEP: self.sweep, TAG_ROLE: ROLE_SWEEP})
            run_id = run.info.run_id
            self.client.log_text(run_id, spec_text, f"{SPEC_DIR}/{spec_name}")
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.parent_run_id = run_id
        return run_id

    def create_trial_run(self, number: int, tags: dict[str, str] | None = None) -> str:
        """Trial `number`'s run, one write: made by the driver as it asks the trial ahead, so
        its id is on the Optuna trial before any actor starts it."""
        run = self.client.create_run(self.experiment_id, run_name=trial_run_name(
            number, self.role), tags={
            TAG_PARENT_RUN: self.parent_run_id, TAG_SWEEP: self.sweep, TAG_ROLE: self.role,
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

    def has_run(self, run_id: str) -> bool:
        """Whether this tracking store holds run `run_id` (of any experiment)."""
        try:
            self.client.get_run(run_id)
            return True
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise

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
        now = int(time.time() * 1000)
        self.client.log_batch(self.parent_run_id, metrics=[
            Metric(role_metric(k, self.role), float(v), now, step) for k, v in metrics.items()])

    def log_trial_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """Metrics the driver writes into a trial's run: a PBT member's exploit (pbt/donor)."""
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step)
                                               for k, v in metrics.items()])

    def set_sweep_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.parent_run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def close_sweep(self, status: str = "FINISHED", tags: dict[str, str] | None = None) -> None:
        """End the parent run (`tags`: set first, e.g. the best trial)."""
        if tags:
            self.client.log_batch(self.parent_run_id,
                                  tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self.client.set_terminated(self.parent_run_id, status)
