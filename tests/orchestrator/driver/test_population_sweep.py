"""Population-based training as a user runs it: a PBT sweep of mlp_gan on ring8 through the CLI
(exploits happen, hyperparameters change in MLflow, the lineage agrees between Optuna and
MLflow, the champion is promoted and sampled); a driver killed with SIGKILL mid-sweep, resumed
with the same population; a trainer without PBT support refused in one line."""

from __future__ import annotations

import os
import signal

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.cli import main
from orchestrator.layout import (
    DONOR_METRIC,
    PBT_LINEAGE_ATTR,
    PBT_PARAMS_ATTR,
    PBT_ROUND_ATTR,
    PBT_SCHEDULE_ATTR,
    RUN_ATTR,
)
from tests.conftest import RING8_TINY
from tests.orchestrator.driver.test_fault_tolerance import (
    SLOW_SYNTHETIC,
    _cli,
    _finish,
    _stores,
    _study,
    _wait_for,
)

RING8_PBT = RING8_TINY.replace("name: ring8-tiny", "name: ring8-pbt-tiny").replace(
    "budget: {trials: 4, steps: 60, eval_every: 20, log_every: 10}",
    "budget: {steps: 60, eval_every: 20, log_every: 10, confirm: {top: 1, seeds: 2}}\n"
    "scheduler: {name: pbt, population: 4, interval: 20, quantile: 0.25, "
    "mutable: [lr_g, lr_d]}").replace(
    "sampler: {name: tpe, seed: 0}", "sampler: {name: random, seed: 1}").replace(
    "  loss: {type: categorical, choices: [ns, wgan_gp]}\n"
    "  gp_weight: {type: float, low: 1.0, high: 10.0, log: true, when: {loss: wgan_gp}}\n",
    "  lr_d: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}\n")


@pytest.mark.cluster  # a PBT sweep of 4 ring8 members, promoted and sampled (~40 s)
def test_a_pbt_sweep_through_the_cli_is_recorded_promoted_and_sampled(tmp_path, ray_local):
    spec = tmp_path / "pbt.yaml"
    spec.write_text(RING8_PBT)
    runner = CliRunner()
    launched = runner.invoke(main, ["launch", str(spec), *_stores(tmp_path)])
    assert launched.exit_code == 0, launched.output
    assert "round at step 20: trial" in launched.output
    study = optuna.load_study(study_name="ring8-pbt-tiny", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4  # the population, once
    assert study.user_attrs[PBT_ROUND_ATTR] == 40
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exploits = 0
    for trial in study.trials:
        run_id = trial.user_attrs[RUN_ATTR]
        lineage = trial.user_attrs.get(PBT_LINEAGE_ATTR, [])
        exploits += len(lineage)
        donors = {m.step: int(m.value)
                  for m in client.get_metric_history(run_id, DONOR_METRIC)}
        assert donors == {step: donor for step, donor in lineage}  # Optuna and MLflow agree
        lr_g = {m.step: m.value for m in client.get_metric_history(run_id, "hp/lr_g")}
        assert lr_g[0] == pytest.approx(trial.params["lr_g"])
        schedule = trial.user_attrs[PBT_SCHEDULE_ATTR]
        for step, _ in lineage:  # the new lr_g from the step it copied its donor
            assert lr_g[step] == pytest.approx([p for s, p in schedule if s == step][-1]["lr_g"])
            assert lr_g[step] != pytest.approx(trial.params["lr_g"])
        if lineage:
            assert trial.user_attrs[PBT_PARAMS_ATTR] == schedule[-1][1]
    assert exploits >= 2  # a round at 20 and at 40, the worst member copying each time
    confirm = optuna.load_study(study_name="ring8-pbt-tiny-confirm",
                                storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state for t in confirm.trials] == [TrialState.COMPLETE] * 2
    for t in confirm.trials:  # each replays the member's schedule, its hp/lr_g with it
        source = study.trials[t.user_attrs["confirms_trial"]]
        schedule = source.user_attrs[PBT_SCHEDULE_ATTR]
        lr_g = {m.step: m.value
                for m in client.get_metric_history(t.user_attrs[RUN_ATTR], "hp/lr_g")}
        assert {s for s, _ in _changes(schedule, "lr_g")} <= set(lr_g)
        for step, value in lr_g.items():
            in_force = [p for s, p in schedule if s <= step][-1]
            assert value == pytest.approx(in_force["lr_g"])

    status = runner.invoke(main, ["status", "ring8-pbt-tiny", *_stores(tmp_path)[:2]])
    assert status.exit_code == 0 and "pbt" in status.output
    promoted = runner.invoke(main, ["promote", "ring8-pbt-tiny", "--model-name", "ring-pbt",
                                    *_stores(tmp_path)])
    assert promoted.exit_code == 0, promoted.output
    best = min(study.trials, key=lambda t: t.value)
    version = client.get_model_version_by_alias("ring-pbt", "champion")
    assert version.run_id == best.user_attrs[RUN_ATTR]  # the final state of the best member
    out = tmp_path / "points.npy"
    sampled = runner.invoke(main, ["sample", "models:/ring-pbt@champion", "-n", "50", "-o",
                                   str(out), "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"])
    assert sampled.exit_code == 0, sampled.output
    points = np.load(out)
    assert points.shape == (50, 2) and np.isfinite(points).all()


def _changes(schedule: list, name: str) -> list:
    """The schedule's entries where `name` changes (the first always)."""
    kept = []
    for step, params in schedule:
        if not kept or params[name] != kept[-1][1][name]:
            kept.append((step, params))
    return kept


PBT_SLOW = SLOW_SYNTHETIC.replace("trials: TRIALS, ", "").replace(
    "sampler:", "scheduler: {name: pbt, population: 4, interval: 10, quantile: 0.25}\nsampler:")


@pytest.mark.cluster  # a PBT driver killed at its second round, then resumed (~1 min)
def test_a_killed_pbt_driver_is_resumed_with_the_same_members_and_schedule(tmp_path):
    (tmp_path / "ft.yaml").write_text(PBT_SLOW.replace("STEPS", "40").replace("SLEEP", "0.1"))
    driver = _cli(tmp_path, "launch", "ft.yaml", *_stores(tmp_path))
    try:
        _wait_for("the first round", lambda: (_study(tmp_path) is not None and _study(
            tmp_path).user_attrs.get(PBT_ROUND_ATTR, 0) >= 10), timeout=180)
        os.kill(driver.pid, signal.SIGKILL)  # 30 steps (3 s) a member left: surely mid-sweep
        driver.wait(timeout=30)
    finally:
        _finish(driver)
    before = _study(tmp_path)
    assert any(t.state == TrialState.RUNNING for t in before.trials)
    kept = {t.number: (t.params, t.user_attrs.get(PBT_LINEAGE_ATTR, []))
            for t in before.trials}
    done_round = before.user_attrs[PBT_ROUND_ATTR]

    code, err = _finish(_cli(tmp_path, "resume", "ft", *_stores(tmp_path)), timeout=240)
    assert code == 0, err
    after = _study(tmp_path)
    assert [t.state for t in after.trials] == [TrialState.COMPLETE] * 4  # no member added
    assert after.user_attrs[PBT_ROUND_ATTR] == 30
    for t in after.trials:
        params, lineage = kept[t.number]
        assert t.params == params  # the same members
        now = t.user_attrs.get(PBT_LINEAGE_ATTR, [])
        assert now[:len(lineage)] == lineage  # the schedule so far is kept
        assert all(step > done_round for step, _ in now[len(lineage):])
        # the synthetic loss is a function of the params it trained with last and its step
        final = t.user_attrs[PBT_PARAMS_ATTR]
        assert t.value == pytest.approx((final["x"] - 1) ** 2 + (final["y"] + 0.5) ** 2
                                        + 1 / 41)
    runs = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(
        [MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_experiment_by_name(
            "ft").experiment_id], "tags.`gansweep.role` = 'trial'")
    assert sorted(int(r.data.tags["gansweep.trial"]) for r in runs) == [0, 1, 2, 3]
    assert all(r.info.status == "FINISHED" for r in runs)


def test_a_trainer_without_pbt_support_is_refused_in_one_line(tmp_path, write_spec):
    plugin = tmp_path / "plain_trainer.py"
    plugin.write_text(
        "from trainers.synthetic import SyntheticTrainer\n"
        "class Plain(SyntheticTrainer):\n"
        "    MUTABLE = ()\n")
    spec = write_spec(PBT_SLOW.replace("trainer: synthetic", "trainer: plain_trainer:Plain")
                      .replace("STEPS", "40").replace("SLEEP", "0.0"), "plain.yaml")
    before = sorted(p.name for p in tmp_path.iterdir())
    done = CliRunner().invoke(main, ["launch", str(spec), *_stores(tmp_path)])
    assert done.exit_code == 2
    [line] = done.output.strip().splitlines()
    assert line.startswith("gansweep: error: plain.yaml: scheduler: trainer plain_trainer:Plain "
                           "does not support pbt")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.cluster  # a PBT member's actor killed mid-sweep (~30 s): make test-cluster
def test_a_pbt_member_whose_actor_is_killed_resumes_and_the_rounds_go_on(
        ray_local, settings, write_spec):
    import threading

    from orchestrator.actor.checkpoints import TrialCheckpoints
    from orchestrator.driver.launch import launch
    from orchestrator.spec.sweep import SweepSpec
    from tests.orchestrator.driver.test_fault_tolerance import _trial_runs

    spec = SweepSpec.load(write_spec(PBT_SLOW.replace("STEPS", "40").replace("SLEEP", "0.1")))
    done: dict = {}
    driver = threading.Thread(target=lambda: done.update(stats=launch(spec, settings,
                                                                      notice=lambda m: None)))
    driver.start()

    def victim():  # an actor that trained member 0, once it has checkpointed
        runs = [r for r in _trial_runs(settings.tracking_uri)
                if r.data.tags.get("gansweep.trial") == "0" and "gansweep.pid" in r.data.tags]
        if runs and TrialCheckpoints(settings.checkpoint_root, "ft", 0).steps():
            return runs[0]
    run = _wait_for("member 0 to checkpoint", victim)
    os.kill(int(run.data.tags["gansweep.pid"]), signal.SIGKILL)
    driver.join(timeout=180)
    assert not driver.is_alive() and done["stats"].resumed >= 1
    study = optuna.load_study(study_name="ft", storage=settings.storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    # members share the actors: the one killed was training member 0 or another by then
    assert max(t.user_attrs.get("attempt", 1) for t in study.trials) == 2
    assert study.user_attrs[PBT_ROUND_ATTR] == 30  # every round happened, with all four
    for t in study.trials:
        final = t.user_attrs[PBT_PARAMS_ATTR]
        assert t.value == pytest.approx((final["x"] - 1) ** 2 + (final["y"] + 0.5) ** 2 + 1 / 41)
