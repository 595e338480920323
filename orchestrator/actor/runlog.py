"""The trial's MLflow writer inside its actor: every write on one background thread.

The layout it writes (run names, tags, statuses, params) is orchestrator/layout.py's;
this module only decides *when* and *how* writes happen: queued, retried with backoff, metrics
never dropped. It imports no MLflow itself: the logging thread does, with its first write (a
trial's params, queued as the trial starts), so an actor is ready, and its first chunk trains,
without waiting for MLflow. Metrics travel as plain `MetricRow`s until that thread writes them.
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from orchestrator.actor.retry import RETRIES, with_retries
from orchestrator.layout import MAX_BATCH, RUN_STATUS, TAG_FINISH_ERROR


class MetricRow(NamedTuple):
    """One metric value at one step, as MLflow keeps it (timestamp in ms)."""

    key: str
    value: float
    timestamp: int
    step: int


def metric_rows(rows: Iterable[tuple[int, dict[str, float]]],
                now: int | None = None) -> list[MetricRow]:
    """The metrics of (step, {key: value}) rows, all stamped `now` (ms; default: now)."""
    now = int(time.time() * 1000) if now is None else now
    return [MetricRow(k, float(v), now, step) for step, row in rows for k, v in row.items()]


def not_logged(rows: list[MetricRow], logged: dict[str, int]) -> list[MetricRow]:
    """The rows past the last step MLflow has for their key: steps never repeat."""
    return [m for m in rows if m.step > logged.get(m.key, -1)]


class RunLogger:
    """Writes one trial run from inside its actor, on a background thread.

    Training never waits on MLflow: calls enqueue work and return. A failed write is retried with
    backoff. Metrics are never dropped: a batch that still fails stays in `unwritten()` (which
    the worker puts in every checkpoint) and is tried again at the next `retry_unwritten()` or
    `flush()`. `flush()` waits until everything queued so far is written and raises the first
    write that failed for good.
    """

    def __init__(self, tracking_uri: str, retries: int = RETRIES):
        self.uri, self.retries = tracking_uri, retries
        self._client: Any = None  # an MlflowClient, made on first use
        self._exporter: Any = None  # the export helper actor, once made (False: none here)
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._lock = threading.Lock()  # the metrics not yet written
        self._client_lock = threading.Lock()
        self._unwritten: dict[int, tuple[str, list[MetricRow]]] = {}  # batch id -> (run, rows)
        self._failed: set[int] = set()  # unwritten batches not queued any more
        self._metric_error: Exception | None = None
        self._next_id = 0
        self._thread = threading.Thread(target=self._drain, name="mlflow-logger", daemon=True)
        self._thread.start()

    @property
    def client(self):
        """An MlflowClient, made (and MLflow imported) at first use, on the thread that first
        writes: not with the actor, whose first chunk trains meanwhile. Under a lock of its own:
        the training thread's `unwritten()` never waits on the import."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    from mlflow import MlflowClient

                    self._client = MlflowClient(self.uri)
        return self._client

    @client.setter
    def client(self, client) -> None:  # tests: one whose writes fail for a while
        self._client = client

    # -- enqueue -------------------------------------------------------------------------------
    def log_metrics(self, run_id: str, rows: list[MetricRow]) -> None:
        for i in range(0, len(rows), MAX_BATCH):
            with self._lock:
                batch_id, self._next_id = self._next_id, self._next_id + 1
                self._unwritten[batch_id] = (run_id, rows[i:i + MAX_BATCH])
            self._queue_batch(batch_id)

    def unwritten(self, run_id: str) -> list[MetricRow]:
        """Metrics of `run_id` not yet confirmed written (queued, or failed for now)."""
        with self._lock:
            return [m for run, batch in self._unwritten.values() if run == run_id for m in batch]

    def retry_unwritten(self) -> None:
        with self._lock:
            again, self._failed = sorted(self._failed), set()
        for batch_id in again:
            self._queue_batch(batch_id)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        def write():
            from mlflow.entities import RunTag

            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self._put(write)

    def log_start(self, run_id: str, params: dict[str, Any], tags: dict[str, str],
                  wait: bool = False) -> None:
        """A trial's params and where it runs. Queued, so a first attempt trains without waiting
        on MLflow (a run the driver ends for a lost trial gets the params from the driver). With
        `wait` (a resumed attempt: its tags say where it resumed from), written before
        returning, with retries."""
        def write():
            from mlflow.entities import RunTag

            from orchestrator.tracking.runs import params_of

            self.client.log_batch(run_id, params=params_of(params),
                                  tags=[RunTag(k, str(v)) for k, v in tags.items()])
        if wait:
            with_retries(write, self.retries)
        else:
            self._put(write)

    def log_image(self, run_id: str, png: bytes, key: str, step: int) -> None:
        def write():
            from PIL import Image

            self.client.log_image(run_id, Image.open(io.BytesIO(png)), key=key, step=step)
        self._put(write)

    def log_bytes(self, run_id: str, data: bytes, artifact_path: str) -> None:
        def write():
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / Path(artifact_path).name
                path.write_bytes(data)
                folder = str(Path(artifact_path).parent)  # "." for a top-level file
                self.client.log_artifact(run_id, str(path), None if folder == "." else folder)
        self._put(write)

    def log_models(self, run_id: str, models: list[tuple[str, Any, list]],
                   input_dim: int) -> None:
        """A finished trial's generators, (at, CPU module, the eval metrics it was chosen at)
        triples (orchestrator/actor/models.py: `log_model`), as the run's MLflow models,
        traced and logged by a helper process while this actor trains on
        (orchestrator/actor/exporter.py); the run's later writes, its end among them, wait for
        the export, and `flush()` with them. A failed export is said on the run
        (`gansweep.finish_error`). Outside Ray: exported here, before returning."""
        from orchestrator.actor.exporter import start_exporter
        from orchestrator.actor.models import log_model

        if self._exporter is None:
            self._exporter = start_exporter(self.uri) or False
        if self._exporter is False:
            for at, module, rows in models:
                with_retries(lambda a=at, m=module, r=rows: log_model(self.uri, run_id, m,
                                                                      input_dim, a, r),
                             self.retries)
            return
        exported = self._exporter.export.remote(run_id, models, input_dim)

        def wait():
            import ray

            try:
                ray.get(exported)
            except ray.exceptions.RayError as exc:  # the run's end still comes
                cause = getattr(exc, "cause", None) or exc
                self.client.set_tag(run_id, TAG_FINISH_ERROR,
                                    f"{type(cause).__name__}: {cause}"[:5000])
        self._queue.put(wait)

    def end_run(self, run_id: str, state: str, reason: str = "") -> None:
        def tags():
            from orchestrator.tracking.runs import end_tags

            self.client.log_batch(run_id, tags=end_tags(state, reason))
        self._put(tags)
        self._put(lambda: self.client.set_terminated(run_id, RUN_STATUS.get(state, "KILLED")))

    def flush(self) -> None:
        """Write everything queued, trying failed metric batches once more; raise if a write
        failed for good or metrics are still unwritten (they stay kept)."""
        self.retry_unwritten()
        self._queue.join()
        error, self._error = self._error, None
        if error is not None:
            raise error
        with self._lock:
            left = sum(len(batch) for _, batch in self._unwritten.values())
        if left:
            raise OSError(f"{left} metrics not written yet ({self._metric_error}); kept")

    # -- the thread ----------------------------------------------------------------------------
    def _put(self, work: Callable[[], Any]) -> None:
        self._queue.put(lambda: with_retries(work, self.retries))

    def _queue_batch(self, batch_id: int) -> None:
        def write():
            from orchestrator.tracking.runs import metrics

            with self._lock:
                if batch_id not in self._unwritten:
                    return
                run_id, rows = self._unwritten[batch_id]
            try:
                with_retries(lambda: self.client.log_batch(run_id, metrics=metrics(rows)),
                             self.retries)
            except Exception as exc:
                with self._lock:
                    self._failed.add(batch_id)  # kept: tried again later, never dropped
                    self._metric_error = exc
                return
            with self._lock:
                del self._unwritten[batch_id]
        self._queue.put(write)

    def _drain(self) -> None:
        while True:
            work = self._queue.get()
            try:
                work()
            except BaseException as exc:  # kept for flush(); the thread must survive
                self._error = self._error or exc
            finally:
                self._queue.task_done()
