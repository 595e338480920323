"""A finished trial's generators exported by a helper actor beside its trial actor, on a real
local Ray and a real sqlite store: exports in flight are flushed, and the run ends after them."""

from __future__ import annotations

import torch
from mlflow import MlflowClient

from orchestrator.actor.runlog import RunLogger


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
    good, bad = (client.create_run(experiment, run_name=f"trial-{i:04d}").info.run_id
                 for i in range(2))
    trainer = build_trainer("mlp_gan", {"g_width": 16}, load_dataset("ring8"), 0)
    logger = RunLogger(client.tracking_uri)
    logger.log_models(good, [("last", trainer.generator(), []),
                             ("best", trainer.generator(), [])], trainer.z_dim)
    logger.end_run(good, "COMPLETE")
    logger.log_models(bad, [("last", Untraceable(), [])], trainer.z_dim)
    logger.end_run(bad, "COMPLETE")
    logger.flush()

    models = client.search_logged_models([experiment], f"source_run_id = '{good}'")
    assert sorted(m.name for m in models) == ["trial-0000-best", "trial-0000-last"]
    ended = client.get_run(good).info
    assert ended.status == "FINISHED"
    assert ended.end_time >= max(m.creation_timestamp for m in models)
    failed = client.get_run(bad)
    assert failed.info.status == "FINISHED"
    assert failed.data.tags["gansweep.finish_error"].startswith("MlflowException")
    tried = client.search_logged_models([experiment], f"source_run_id = '{bad}'")
    assert all(m.status.name == "FAILED" for m in tried)  # MLflow's record of each try
