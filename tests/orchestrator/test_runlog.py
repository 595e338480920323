"""RunLogger against a real sqlite MLflow store whose writes fail for a while."""

from __future__ import annotations

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from orchestrator.actor.runlog import RunLogger
from orchestrator.tracking.tracker import metrics_of


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


@pytest.fixture
def run(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.create_run(client.create_experiment("x", (tmp_path / "a").as_uri()))
    return client, run.info.run_id


def test_a_transient_error_is_retried_and_nothing_is_lost(run):
    client, run_id = run
    logger = RunLogger(client.tracking_uri, retries=3)
    logger.client = Flaky(client, failures=2)
    logger.log_metric_objects(run_id, metrics_of([(1, {"loss": 1.0}), (2, {"loss": 0.5})]))
    logger.flush()  # no error: the third try went through
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [
        (1, 1.0), (2, 0.5)]


def test_a_self_conditioned_generator_loads_back_from_mlflow_with_any_batch(run):
    from trainers import build_trainer, load_dataset

    client, run_id = run
    trainer = build_trainer("mlp_gan", {"clusters": 8, "g_width": 16}, load_dataset("grid25"), 0)
    generator = trainer.generator()
    logger = RunLogger(client.tracking_uri)
    logger.log_model(run_id, generator, trainer.z_dim)  # an example batch of 16
    logger.flush()
    mlflow.set_tracking_uri(client.tracking_uri)
    loaded = mlflow.pytorch.load_model(f"runs:/{run_id}/generator")
    z = torch.randn(100, trainer.z_dim)
    with torch.no_grad():
        assert torch.equal(loaded(z), generator(z))  # the cluster draw is part of the model


def test_metrics_that_fail_for_good_are_kept_and_written_later(run):
    client, run_id = run
    logger = RunLogger(client.tracking_uri, retries=1)
    logger.client = Flaky(client, failures=2)  # both tries of the first write fail
    logger.log_metric_objects(run_id, metrics_of([(1, {"loss": 1.0})]))
    logger._queue.join()
    assert [(m.key, m.step) for m in logger.unwritten(run_id)] == [("loss", 1)]  # kept
    assert client.get_metric_history(run_id, "loss") == []
    logger.log_metric_objects(run_id, metrics_of([(2, {"loss": 0.5})]))  # the server is back
    logger.flush()  # tries the kept batch again
    assert logger.unwritten(run_id) == []
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == [1, 2]


def test_flush_says_when_metrics_are_still_unwritten(run):
    client, run_id = run
    logger = RunLogger(client.tracking_uri, retries=0)
    logger.client = Flaky(client, failures=10)
    logger.log_metric_objects(run_id, metrics_of([(1, {"loss": 1.0}), (1, {"acc": 0.1})]))
    with pytest.raises(OSError, match="2 metrics not written yet"):
        logger.flush()
    assert len(logger.unwritten(run_id)) == 2


class Untraceable(torch.nn.Module):
    def forward(self, z):
        raise RuntimeError("this generator cannot be traced")


def test_exports_in_flight_are_flushed_and_the_run_ends_after_them(ray_local, tmp_path):
    """In a Ray process the generators are exported by a helper actor while the caller goes
    on; `flush()` waits for them (none is dropped when the sweep ends), the run's end lands
    after its models, and an export that fails is said on the run, which still ends."""
    from trainers import build_trainer, load_dataset

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("x", (tmp_path / "a").as_uri())
    good, bad = (client.create_run(experiment).info.run_id for _ in range(2))
    trainer = build_trainer("mlp_gan", {"g_width": 16}, load_dataset("ring8"), 0)
    logger = RunLogger(client.tracking_uri)
    logger.log_models(good, [("generator", trainer.generator()),
                             ("generator_best", trainer.generator())], trainer.z_dim)
    logger.end_run(good, "COMPLETE")
    logger.log_models(bad, [("generator", Untraceable())], trainer.z_dim)
    logger.end_run(bad, "COMPLETE")
    logger.flush()

    models = client.search_logged_models([experiment], f"source_run_id = '{good}'")
    assert sorted(m.name for m in models) == ["generator", "generator_best"]
    ended = client.get_run(good).info
    assert ended.status == "FINISHED"
    assert ended.end_time >= max(m.creation_timestamp for m in models)
    failed = client.get_run(bad)
    assert failed.info.status == "FINISHED"
    assert failed.data.tags["gansweep.finish_error"].startswith("MlflowException")
    tried = client.search_logged_models([experiment], f"source_run_id = '{bad}'")
    assert all(m.status.name == "FAILED" for m in tried)  # MLflow's record of each try
