"""Search on a real local Ray: pruning, several objectives, enqueue, reproducibility, time."""

from __future__ import annotations

import json

import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.cli import main
from orchestrator.driver.launch import launch
from orchestrator.spec.sweep import SweepSpec
from tests.conftest import RING8_TINY, SYNTHETIC

# eval/loss = (x-1)^2 + (y+0.5)^2 + 1/(1+step): the good points sit at or below the median
GOOD_A, GOOD_B, GOOD_C = {"x": 1.0, "y": -0.5}, {"x": 0.9, "y": -0.5}, {"x": 1.0, "y": -0.45}
BAD_1, BAD_2 = {"x": -2.0, "y": 2.0}, {"x": 2.0, "y": -2.0}


def _study(settings, name):
    return optuna.load_study(study_name=name, storage=settings.storage)


def test_median_pruner_prunes_bad_trials_at_their_first_eval(ray_local, settings, write_spec):
    # one actor (2 CPUs a trial), so trials run in order and the median is known when they report
    text = (SYNTHETIC.replace("trials: 4", "trials: 5")
            .replace("resources: {cpus_per_trial: 1}", "resources: {cpus_per_trial: 2}")
            + "pruner: {name: median, n_startup_trials: 2, n_warmup_steps: 0}\n"
            + f"enqueue: [{GOOD_A}, {GOOD_B}, {BAD_1}, {GOOD_C}, {BAD_2}]\n")
    stats = launch(SweepSpec.load(write_spec(text)), settings, notice=lambda m: None)
    trials = _study(settings, "synth").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE,
                                         TrialState.PRUNED, TrialState.COMPLETE,
                                         TrialState.PRUNED]
    assert [list(t.intermediate_values) for t in trials if t.state == TrialState.PRUNED] == [
        [2], [2]]  # stopped at the first eval, never trained the second chunk
    assert stats.pruned == 2 and stats.steps_trained == 3 * 4 + 2 * 2
    client = MlflowClient(settings.tracking_uri)
    for t in trials:  # Optuna and MLflow agree, trial by trial
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.data.tags["gansweep.state"] == t.state.name
        assert run.info.status == "FINISHED"
        assert max(m.step for m in client.get_metric_history(run.info.run_id, "eval/loss")) == (
            max(t.intermediate_values))


@pytest.mark.cluster  # a whole sweep of four trials, one at a time (~20 s): make test-cluster
def test_a_pruner_with_its_own_metric_prunes_on_it_while_optuna_keeps_the_objective(
        ray_local, settings, write_spec):
    # eval/x_loss is eval/loss without its y term. Y_BAD (x right, y wrong) has the worst loss
    # of all, yet on x_loss it ties the best and runs to the end; X_BAD is pruned at once.
    y_bad, x_bad = {"x": 1.0, "y": 2.0}, {"x": -2.0, "y": -0.5}
    text = (SYNTHETIC.replace("resources: {cpus_per_trial: 1}", "resources: {cpus_per_trial: 2}")
            + "pruner: {name: median, n_startup_trials: 2, n_warmup_steps: 0, "
              "metric: eval/x_loss}\n"
            + f"enqueue: [{GOOD_A}, {GOOD_B}, {y_bad}, {x_bad}]\n")
    launch(SweepSpec.load(write_spec(text)), settings, notice=lambda m: None)
    trials = _study(settings, "synth").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.PRUNED]
    kept = trials[2]  # its intermediate values are the pruner's metric, its value the objective
    assert kept.intermediate_values == {2: pytest.approx(1 / 3), 4: pytest.approx(1 / 5)}
    assert kept.value == pytest.approx(2.5**2 + 1 / 5)
    # a metric the trainer does not report fails the trial at its first eval, saying which
    typo = (SYNTHETIC.replace("name: synth", "name: synth-typo").replace("trials: 4", "trials: 1")
            + "pruner: {name: median, metric: eval/x_los}\n")
    launch(SweepSpec.load(write_spec(typo)), settings, notice=lambda m: None)
    [failed] = _study(settings, "synth-typo").get_trials()
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"] == "pruner.metric eval/x_los is None at step 2"


@pytest.mark.cluster  # a real GAN sweep of 8 trials (~25 s): make test-cluster
def test_hyperband_on_a_real_2d_sweep_saves_compute(ray_local, settings, write_spec):
    text = (RING8_TINY.replace("trials: 4", "trials: 8").replace("eval_every: 20", "eval_every: 10")
            + "pruner: {name: hyperband, min_resource: 10, reduction_factor: 3}\n")
    stats = launch(SweepSpec.load(write_spec(text)), settings, notice=lambda m: None)
    states = [t.state for t in _study(settings, "ring8-tiny").get_trials()]
    assert states.count(TrialState.PRUNED) >= 1 and stats.pruned == states.count(
        TrialState.PRUNED)
    assert stats.steps_trained < 8 * 60
    assert TrialState.COMPLETE in states


@pytest.mark.cluster  # three launches of a real GAN sweep (~65 s): make test-cluster
def test_same_spec_and_seed_give_identical_trials(ray_local, tmp_path, write_spec):
    from orchestrator.stores.settings import Settings

    text = RING8_TINY.replace("trials: 4", "trials: 2").replace("name: tpe", "name: random")
    results = []
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        settings = Settings.resolve(f"sqlite:///{tmp_path}/{run}.db",
                                    f"sqlite:///{tmp_path}/{run}-mlflow.db",
                                    checkpoint_root=str(tmp_path / run))
        spec = SweepSpec.load(write_spec(text.replace("seed: 0", f"seed: {seed}")))
        launch(spec, settings, notice=lambda m: None)
        results.append([(t.params, t.user_attrs["seed"], t.intermediate_values)
                        for t in _study(settings, "ring8-tiny").get_trials()])
    assert results[0] == results[1]
    assert results[0] != results[2]


@pytest.mark.cluster  # two launches, the second enqueued from a run (~20 s): make test-cluster
def test_enqueued_points_are_the_first_trials(ray_local, settings, write_spec):
    text = SYNTHETIC + "enqueue: [{x: 0.5, y: 1.5}, {x: -1.0, y: 0.25}]\n"
    launch(SweepSpec.load(write_spec(text)), settings, notice=lambda m: None)
    trials = _study(settings, "synth").get_trials()
    assert [t.params for t in trials[:2]] == [{"x": 0.5, "y": 1.5}, {"x": -1.0, "y": 0.25}]
    # launching again (more budget) does not try them twice; an earlier run's params can be
    # enqueued by its MLflow run id
    run_id = trials[3].user_attrs["mlflow_run_id"]
    spec = SweepSpec.load(write_spec(text)).with_trials(5)
    launch(spec, settings, notice=lambda m: None, enqueue_from=run_id)
    trials = _study(settings, "synth").get_trials()
    assert len(trials) == 5 and trials[4].params == trials[3].params


@pytest.mark.cluster  # a real GAN sweep (~25 s): make test-cluster
def test_several_objectives_best_prints_the_pareto_front(ray_local, settings, write_spec):
    text = RING8_TINY.replace(
        "objective: {metric: eval/reverse_kl, direction: minimize}",
        "objectives:\n  - {metric: eval/reverse_kl, direction: minimize}\n"
        "  - {metric: model/g_params, direction: minimize}").replace(
        "  g_depth: {type: int, low: 1, high: 2}", "  g_depth: {type: int, low: 1, high: 3}")
    launch(SweepSpec.load(write_spec(text)), settings, notice=lambda m: None)
    study = _study(settings, "ring8-tiny")
    runner = CliRunner()
    out = runner.invoke(main, ["best", "ring8-tiny", "--storage", settings.storage, "--json"])
    assert out.exit_code == 0, out.output
    found = json.loads(out.stdout)
    assert [o["metric"] for o in found["objectives"]] == ["eval/reverse_kl", "model/g_params"]
    assert [(t["number"], list(t["values"].values())) for t in found["pareto_front"]] == sorted(
        (t.number, t.values) for t in study.best_trials)
    table = runner.invoke(main, ["best", "ring8-tiny", "--storage", settings.storage])
    assert table.exit_code == 0 and "Pareto front" in table.stdout
    args = ["promote", "ring8-tiny", "--model-name", "g", "--storage", settings.storage,
            "--tracking-uri", settings.tracking_uri]
    refused = runner.invoke(main, args)
    assert refused.exit_code == 2 and "--pick METRIC" in refused.stderr
    picked = runner.invoke(main, args + ["--pick", "model/g_params"])
    assert picked.exit_code == 0, picked.output
    smallest = min(study.best_trials, key=lambda t: t.values[1])
    assert f"from trial {smallest.number} " in picked.stdout


@pytest.mark.cluster  # a sweep run out by its time budget (~17 s): make test-cluster
def test_time_budget_stops_new_trials_and_fails_the_unfinished(ray_local, settings, write_spec):
    text = (SYNTHETIC.replace("trials: 4, steps: 4, eval_every: 2",
                              "trials: 50, steps: 6, eval_every: 2, time: 5s")
            + "fixed: {sleep_s: 0.15}\n")
    stats = launch(SweepSpec.load(write_spec(text)), settings, notice=lambda m: None)
    trials = _study(settings, "synth").get_trials()
    assert 2 <= len(trials) < 50 and stats.running == 0
    assert TrialState.RUNNING not in {t.state for t in trials}
    timed_out = [t for t in trials if t.user_attrs.get("fail_reason") == "timeout"]
    assert timed_out and all(t.state == TrialState.FAIL for t in timed_out)
    client = MlflowClient(settings.tracking_uri)
    for t in trials:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status in ("FINISHED", "FAILED")
        assert run.data.tags.get("gansweep.reason") == t.user_attrs.get("fail_reason")
