"""The trial worker: its decisions without Ray, and one real actor filling its trials' runs."""

from __future__ import annotations

import dataclasses
import math

import torch

from orchestrator.actor.checkpoints import TrialCheckpoints
from orchestrator.actor.runlog import metric_rows
from orchestrator.actor.worker import (
    TrialWorker,
    _finite,
    _finite_tensors,
    _rows,
    salvage_metrics,
)
from orchestrator.boundary import TrialSpec
from orchestrator.tracking.runs import metrics
from orchestrator.tracking.tracker import SweepTracker


def _trial(number: int, tmp_path, run_id: str) -> TrialSpec:
    return TrialSpec(sweep="s", number=number, trainer="synthetic", params={"x": 0.5, "y": -1.0},
                     seed=7, run_id=run_id, checkpoint_root=str(tmp_path / "ck"), total_steps=2,
                     log_every=1)


def test_a_nan_or_inf_train_metric_diverges_and_other_namespaces_do_not():
    assert _finite({"train/d_loss": 1.0, "eval/fd": math.nan})
    assert not _finite({"train/d_loss": math.nan})
    assert not _finite({"train/g_loss": -math.inf})


def test_a_non_finite_float_weight_anywhere_in_a_state_dict_diverges():
    state = {"g": {"w": torch.ones(2)}, "opt": [torch.zeros(1), (3, "adam")],
             "step": torch.tensor(5)}
    assert _finite_tensors(state)
    state["opt"][1] = (torch.tensor([1.0, math.inf]), "adam")
    assert not _finite_tensors(state)


def test_a_dead_actors_unwritten_metrics_are_salvaged_from_its_checkpoint_once(tmp_path):
    tracker = SweepTracker(f"sqlite:///{tmp_path}/mlflow.db", "exp", "s")
    tracker.open_sweep_run("name: s", "spec.yaml")
    run_id = tracker.create_trial_run(0)
    spec = _trial(0, tmp_path, run_id)
    tracker.client.log_batch(run_id, metrics=metrics(metric_rows([(1, {"train/loss": 1.0})])))
    unwritten = metric_rows([(1, {"train/loss": 1.0}), (2, {"train/loss": 0.5})])
    rows = [tuple(m) for m in unwritten]  # as the worker saves them
    assert _rows(rows) == unwritten
    TrialCheckpoints(spec.checkpoint_root, "s", 0).save({"run_id": run_id, "unwritten": rows}, 2)
    assert salvage_metrics(spec, tracker.uri) is None  # step 1 was written already
    assert salvage_metrics(spec, tracker.uri) is None  # and now step 2: nothing twice
    history = tracker.client.get_metric_history(run_id, "train/loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 0.5)]


def test_an_actor_fills_the_runs_the_driver_made_and_survives_a_trial_that_cannot_start(
        ray_local, tmp_path):
    """The driver makes each trial's run; the actor writes params, placement, metrics and the
    end into it. A trial whose trainer cannot be built fails with that error, on its own run,
    and the same actor trains the next trial."""
    tracker = SweepTracker(f"sqlite:///{tmp_path}/mlflow.db", "exp", "s")
    tracker.open_sweep_run("name: s", "spec.yaml")
    actor = ray_local.remote(TrialWorker).remote(None, tracker.uri, 1)

    broken = tracker.create_trial_run(0)
    actor.start.remote(dataclasses.replace(_trial(0, tmp_path, broken), trainer="no_such_gan"))
    failed = ray_local.get(actor.train.remote(2))
    assert failed.step == 0 and "no_such_gan" in failed.error
    ray_local.get(actor.finish.remote("FAIL", failed.error))

    run_id = tracker.create_trial_run(1)
    actor.start.remote(_trial(1, tmp_path, run_id))
    done = ray_local.get(actor.train.remote(2))
    assert done.error is None and done.step == 2
    ray_local.get(actor.finish.remote("COMPLETE"))
    ray_local.get(actor.flush.remote())
    run = tracker.client.get_run(run_id)
    assert run.data.params == {"x": "0.5", "y": "-1.0", "seed": "7"}
    assert run.data.tags["gansweep.trial"] == "1" and run.data.tags["gansweep.attempt"] == "1"
    assert run.data.tags["mlflow.parentRunId"] == tracker.parent_run_id
    assert run.info.status == "FINISHED" and "eval/loss" in run.data.metrics
    failed_run = tracker.client.get_run(broken)
    assert failed_run.info.status == "FAILED"
    assert "no_such_gan" in failed_run.data.tags["gansweep.reason"]
    assert [a.path for a in tracker.client.list_artifacts(broken, "errors")] == [
        "errors/traceback.txt"]


def _mlp_trial(tmp_path, run_id: str, attempt: int = 1) -> TrialSpec:
    return TrialSpec(sweep="s", number=3, trainer="mlp_gan", params={"g_width": 16, "d_width": 16},
                     seed=5, run_id=run_id, checkpoint_root=str(tmp_path / "ck"), total_steps=4,
                     log_every=2, attempt=attempt, objective="eval/reverse_kl")


def test_a_trial_shows_titled_samples_from_step_0_and_keeps_its_best_generator(ray_local,
                                                                                tmp_path):
    """The slider's first step shows the first eval; samples.png is top level for the compare
    page; the generator of the best eval is logged beside the last one, and a resumed attempt
    gets the best back from the checkpoint."""
    import mlflow
    from mlflow.pytorch import load_model

    from trainers.mixtures import ring8

    tracker = SweepTracker(f"sqlite:///{tmp_path}/mlflow.db", "exp", "s")
    tracker.open_sweep_run("name: s", "spec.yaml")
    run_id = tracker.create_trial_run(3)
    worker = TrialWorker(ring8(), tracker.uri, 1)  # in the driver: the same code as an actor
    worker.start(_mlp_trial(tmp_path, run_id))
    first = worker.train(2)
    assert first.error is None and worker.best.step == 2
    kept = TrialCheckpoints(str(tmp_path / "ck"), "s", 3).load_latest(run_id)["best"]
    assert kept["step"] == 2 and kept["value"] == first.metrics["eval/reverse_kl"]

    again = TrialWorker(ring8(), tracker.uri, 1)  # its actor died: attempt 2 resumes
    again.start(_mlp_trial(tmp_path, run_id, attempt=2))
    assert again.best.step == 2 and again.best.value == kept["value"]
    state = again.best.generator.state_dict()
    assert all(torch.equal(state[k], kept["state"][k]) for k in kept["state"])
    last = again.train(2)
    again.finish("COMPLETE")
    again.flush()

    client = tracker.client
    steps = sorted(int(a.path.split("+step+")[1].split("+")[0])
                   for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png"))
    assert steps == [0, 2, 4]  # step 0 holds the first eval's picture
    top = {a.path for a in client.list_artifacts(run_id)}
    assert "samples.png" in top
    tags = client.get_run(run_id).data.tags
    values = {2: first.metrics["eval/reverse_kl"], 4: last.metrics["eval/reverse_kl"]}
    best_step = min(values, key=values.get)
    assert tags["gansweep.best_step"] == str(best_step)
    models = {m.tags["gansweep.at"]: m for m in client.search_logged_models(
        experiment_ids=[tracker.experiment_id], filter_string=f"source_run_id = '{run_id}'")}
    name = client.get_run(run_id).info.run_name
    assert {at: m.name for at, m in models.items()} == {"best": f"{name}-best",
                                                         "last": f"{name}-last"}
    # each carries its eval's metrics, at its step: what MLflow's Models tab lists
    scored = {at: {m.key: (m.step, m.value) for m in models[at].metrics} for at in models}
    assert scored["best"]["eval/reverse_kl"] == (best_step, values[best_step])
    assert scored["last"]["eval/reverse_kl"] == (4, values[4])
    assert all(key.startswith("eval/") for key in scored["last"])
    mlflow.set_tracking_uri(tracker.uri)
    best = load_model(models["best"].model_uri)
    z = torch.randn(8, 2)
    assert best(z).shape == (8, 2)
