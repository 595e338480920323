"""RunLogger against a real sqlite MLflow store whose writes fail for a while."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from orchestrator.actor.runlog import RunLogger, metric_rows


class Flaky:
    """The real client, with its first `failures` log_batch calls raising an OSError."""

    def __init__(self, client: MlflowClient, failures: int):
        self.client, self.failures = client, failures

    def __getattr__(self, name):
        return getattr(self.client, name)

    def log_batch(self, *args, **kwargs):
        if self.failures > 0:
            self.failures -= 1
            raise OSError("connection reset by peer")
        return self.client.log_batch(*args, **kwargs)



def test_a_transient_error_is_retried_and_nothing_is_lost(run):
    client, run_id = run
    logger = RunLogger(client.tracking_uri, retries=3)
    logger.client = Flaky(client, failures=2)
    logger.log_metrics(run_id, metric_rows([(1, {"loss": 1.0}), (2, {"loss": 0.5})]))
    logger.flush()  # no error: the third try went through
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [
        (1, 1.0), (2, 0.5)]


def test_metrics_that_fail_for_good_are_kept_and_written_later(run):
    client, run_id = run
    logger = RunLogger(client.tracking_uri, retries=1)
    logger.client = Flaky(client, failures=2)  # both tries of the first write fail
    logger.log_metrics(run_id, metric_rows([(1, {"loss": 1.0})]))
    logger._queue.join()
    assert [(m.key, m.step) for m in logger.unwritten(run_id)] == [("loss", 1)]  # kept
    assert client.get_metric_history(run_id, "loss") == []
    logger.log_metrics(run_id, metric_rows([(2, {"loss": 0.5})]))  # the server is back
    logger.flush()  # tries the kept batch again
    assert logger.unwritten(run_id) == []
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == [1, 2]


def test_flush_says_when_metrics_are_still_unwritten(run):
    client, run_id = run
    logger = RunLogger(client.tracking_uri, retries=0)
    logger.client = Flaky(client, failures=10)
    logger.log_metrics(run_id, metric_rows([(1, {"loss": 1.0}), (1, {"acc": 0.1})]))
    with pytest.raises(OSError, match="2 metrics not written yet"):
        logger.flush()
    assert len(logger.unwritten(run_id)) == 2
