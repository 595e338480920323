"""The trial's MLflow writer inside its actor: every write on one background thread.

The layout it writes (run names, tags, statuses, params) is decided in orchestrator/tracking;
this module only decides *when* and *how* writes happen: queued, retried with backoff, metrics
never dropped. The fluent API (global active run) is used only inside `RunLogger.log_model`,
because `log_model` has no client form.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException

from orchestrator.tracking.tracker import (
    MAX_BATCH,
    MODEL_NAME,
    RUN_STATUS,
    TAG_FINISH_ERROR,
    end_tags,
    params_of,
)

log = logging.getLogger(__name__)


class RunLogger:
    """Writes one trial run from inside its actor, on a background thread.

    Training never waits on MLflow: calls enqueue work and return. A failed write is retried with
    backoff. Metrics are never dropped: a batch that still fails stays in `unwritten()` (which
    the worker puts in every checkpoint) and is tried again at the next `retry_unwritten()` or
    `flush()`. `flush()` waits until everything queued so far is written and raises the first
    write that failed for good.
    """

    def __init__(self, tracking_uri: str, retries: int = 5):
        self.uri, self.retries = tracking_uri, retries
        self._client: MlflowClient | None = None
        self._exporter: Any = None  # the export helper actor, once made (False: none here)
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._unwritten: dict[int, tuple[str, list[Metric]]] = {}  # batch id -> (run, metrics)
        self._failed: set[int] = set()  # unwritten batches not queued any more
        self._metric_error: Exception | None = None
        self._next_id = 0
        self._thread = threading.Thread(target=self._drain, name="mlflow-logger", daemon=True)
        self._thread.start()

    @property
    def client(self) -> MlflowClient:
        """Made at first use, not with the actor: the driver may still be creating a sqlite
        store's tables when the actors start."""
        with self._lock:
            if self._client is None:
                self._client = MlflowClient(self.uri)
            return self._client

    @client.setter
    def client(self, client: MlflowClient) -> None:  # tests: one whose writes fail for a while
        self._client = client

    # -- enqueue -------------------------------------------------------------------------------
    def log_metric_objects(self, run_id: str, metrics: list[Metric]) -> None:
        for i in range(0, len(metrics), MAX_BATCH):
            with self._lock:
                batch_id, self._next_id = self._next_id, self._next_id + 1
                self._unwritten[batch_id] = (run_id, metrics[i:i + MAX_BATCH])
            self._queue_batch(batch_id)

    def unwritten(self, run_id: str) -> list[Metric]:
        """Metrics of `run_id` not yet confirmed written (queued, or failed for now)."""
        with self._lock:
            return [m for run, batch in self._unwritten.values() if run == run_id for m in batch]

    def retry_unwritten(self) -> None:
        with self._lock:
            again, self._failed = sorted(self._failed), set()
        for batch_id in again:
            self._queue_batch(batch_id)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        batch = [RunTag(k, str(v)) for k, v in tags.items()]
        self._put(lambda: self.client.log_batch(run_id, tags=batch))

    def log_start(self, run_id: str, params: dict[str, Any], tags: dict[str, str],
                  wait: bool = False) -> None:
        """A trial's params and where it runs. Queued, so a first attempt trains without waiting
        on MLflow (a run the driver ends for a lost trial gets the params from the driver). With
        `wait` (a resumed attempt: its tags say where it resumed from), written before
        returning, with retries."""
        batch = [RunTag(k, str(v)) for k, v in tags.items()]
        values = params_of(params)

        def write():
            self.client.log_batch(run_id, params=values, tags=batch)
        if wait:
            self._with_retries(write)
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

    def log_model(self, run_id: str, module, input_dim: int, name: str = MODEL_NAME) -> None:
        """The generator as the run's MLflow PyTorch model `name` (torch.export format, dynamic
        batch; float32 or float64 noise, a seeded input example, torch pinned: see
        orchestrator/generator_model.py).

        Runs on the caller's thread, not the logger's: torch.export is not thread-safe. An actor
        calls `log_models` instead, which exports in a helper process.
        """
        import mlflow

        from orchestrator.actor.models import log_model_kwargs

        def write():
            mlflow.set_tracking_uri(self.uri)
            with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
                # torch's archive writer on CPU weights: noise under the progress display
                warnings.filterwarnings("ignore", "No complete tensor found")
                mlflow.pytorch.log_model(name=name, **log_model_kwargs(module, input_dim))
        self._with_retries(write)

    def log_models(self, run_id: str, models: list[tuple[str, Any]], input_dim: int) -> None:
        """A finished trial's generators, (name, CPU module) pairs, as the run's MLflow models,
        traced and logged by a helper process while this actor trains on
        (orchestrator/exporter.py); the run's later writes, its end among them, wait for the
        export, and `flush()` with them. A failed export is said on the run
        (`gansweep.finish_error`). Outside Ray: exported here, before returning."""
        from orchestrator.actor.exporter import start_exporter

        if self._exporter is None:
            self._exporter = start_exporter(self.uri) or False
        if self._exporter is False:
            for name, module in models:
                self.log_model(run_id, module, input_dim, name=name)
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
        tags = end_tags(state, reason)
        self._put(lambda: self.client.log_batch(run_id, tags=tags))
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
        self._queue.put(lambda: self._with_retries(work))

    def _queue_batch(self, batch_id: int) -> None:
        def write():
            with self._lock:
                if batch_id not in self._unwritten:
                    return
                run_id, metrics = self._unwritten[batch_id]
            try:
                self._with_retries(lambda: self.client.log_batch(run_id, metrics=metrics))
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

    def _with_retries(self, work: Callable[[], Any]) -> None:
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                return work()
            except (MlflowException, OSError) as exc:
                if attempt == self.retries:
                    raise
                log.warning("mlflow write failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
