"""Population-based training's loop (orchestrator/driver/population.py): rounds, exploits,
actors handed over, divergence, lost actors and a resumed driver on the fake pool (no Ray, no
MLflow); then a real PBT sweep of the synthetic trainer on a local Ray, whose final values
prove the new params reached the trainers."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from orchestrator.driver.context import SweepContext
from orchestrator.driver.launch import launch
from orchestrator.driver.population import PopulationScheduler
from orchestrator.layout import (
    DONOR_METRIC,
    PBT_LINEAGE_ATTR,
    PBT_PARAMS_ATTR,
    PBT_ROUND_ATTR,
    PBT_SCHEDULE_ATTR,
    RUN_ATTR,
)
from orchestrator.spec.sweep import SweepSpec
from tests.conftest import SYNTHETIC
from tests.orchestrator.driver.fake_pool import DIE, FakePool, Script
from tests.orchestrator.driver.test_scheduler import Sweep

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

PBT = SYNTHETIC.replace(
    "budget: {trials: 4, steps: 4, eval_every: 2, log_every: 1}",
    "budget: {steps: 8, eval_every: 2, log_every: 1}\n"
    "scheduler: {name: pbt, population: 4, interval: 4, quantile: 0.25}").replace(
    "sampler: {name: tpe, seed: 0}", "sampler: {name: random, seed: 0}")
LOSSES = {0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4}  # the fake's objective per member: 3 copies 0


def _sweep(write_spec, tmp_path, actors=2, script=None, text=PBT) -> Sweep:
    spec = SweepSpec.load(write_spec(text))
    return Sweep(tmp_path, spec, FakePool(actors, script or Script(losses=dict(LOSSES))))


def _new_driver(sweep: Sweep) -> None:
    """A fresh pool for the next driver; the checkpoints stay."""
    old, sweep.pool = sweep.pool, FakePool(4, Script(losses=dict(LOSSES)))
    sweep.pool.checkpoints = dict(old.checkpoints)


def _scheduler(sweep: Sweep) -> PopulationScheduler:
    ctx = SweepContext(sweep.spec, sweep.settings, sweep.study, sweep.tracker,
                       notice=sweep.notices.append)
    return PopulationScheduler(ctx, sweep.pool)


def test_members_wait_at_the_round_then_the_worst_copies_the_best_and_all_go_on(
        write_spec, tmp_path):
    sweep = _sweep(write_spec, tmp_path)  # 4 members on 2 actors: handed over at the round
    stats = _scheduler(sweep).run()
    assert sweep.states() == dict.fromkeys(range(4), "COMPLETE") and stats.exploits == 1
    chunks = sweep.pool.chunks
    first_past_round = next(i for i, (_, step) in enumerate(chunks) if step > 4)
    assert sorted(chunks[:first_past_round]) == sorted(
        (n, s) for n in range(4) for s in (2, 4))  # nobody trains past the round before all
    assert sweep.pool.copied == [(3, 0, 4)]
    assert sorted(chunks[first_past_round:]) == sorted((n, s) for n in range(4) for s in (6, 8))
    three = sweep.study.trials[3]
    assert three.user_attrs[PBT_LINEAGE_ATTR] == [[4, 0]]
    donor_params = sweep.study.trials[0].user_attrs[PBT_PARAMS_ATTR]
    schedule = three.user_attrs[PBT_SCHEDULE_ATTR]
    assert schedule[0] == [0, donor_params] and schedule[1][0] == 4  # the donor's, then its own
    assert three.user_attrs[PBT_PARAMS_ATTR] == schedule[1][1] != donor_params
    assert three.params != schedule[1][1]  # Optuna keeps the member's first params
    assert sweep.tracker.trial_metrics == [("run-3", {DONOR_METRIC: 0}, 4)]
    assert sweep.study.user_attrs[PBT_ROUND_ATTR] == 4
    assert any(n.startswith("round at step 4: trial 3 <- 0 (") for n in sweep.notices)


def test_a_member_that_diverges_copies_a_better_one_at_the_round(write_spec, tmp_path):
    script = Script(losses=dict(LOSSES), diverges_at={1: 4})
    sweep = _sweep(write_spec, tmp_path, script=script)
    stats = _scheduler(sweep).run()
    assert sweep.states() == dict.fromkeys(range(4), "COMPLETE")  # not left dead
    copied = {recipient: donor for recipient, donor, _ in sweep.pool.copied}
    assert set(copied) == {1, 3} and copied[1] == 0 and stats.exploits == 2
    assert (1, 8) in sweep.pool.chunks
    assert any("trial 1: diverged at step 4" in n for n in sweep.notices)


def test_a_member_that_fails_leaves_the_round_to_the_others(write_spec, tmp_path):
    # trial 2's first chunk fails after the others reached the round and wait there
    script = Script(losses=dict(LOSSES), errors={2: "RuntimeError: boom"}, seconds={2: 5.0})
    sweep = _sweep(write_spec, tmp_path, actors=4, script=script)
    _scheduler(sweep).run()
    assert sweep.states() == {0: "COMPLETE", 1: "COMPLETE", 2: "FAIL", 3: "COMPLETE"}
    assert sweep.pool.copied == [(3, 0, 4)]  # the round went on without it


def test_when_every_member_diverges_they_fail(write_spec, tmp_path):
    script = Script(losses=dict(LOSSES), diverges_at={n: 4 for n in range(4)})
    sweep = _sweep(write_spec, tmp_path, script=script)
    _scheduler(sweep).run()
    assert sweep.states() == dict.fromkeys(range(4), "FAIL")
    assert {t.user_attrs["fail_reason"] for t in sweep.study.trials} == {"diverged"}


def test_a_member_whose_actor_dies_resumes_and_the_round_waits_for_it(write_spec, tmp_path):
    script = Script(losses=dict(LOSSES), dies_at={2: [4]})
    sweep = _sweep(write_spec, tmp_path, script=script)
    stats = _scheduler(sweep).run()
    assert sweep.states() == dict.fromkeys(range(4), "COMPLETE") and stats.resumed == 1
    assert sweep.pool.copied == [(3, 0, 4)]  # the round happened once, with all four
    assert sweep.study.trials[2].user_attrs["attempt"] == 2


def test_a_driver_stopped_at_the_round_is_resumed_with_the_same_members_and_round(
        write_spec, tmp_path):
    sweep = _sweep(write_spec, tmp_path, actors=4)
    first = _scheduler(sweep)

    def stop_at_the_round(stats) -> None:  # Ctrl-C once three members wait at the round
        if len(first.at_round) == 3:
            first.request_stop("SIGINT")
    first.on_update = stop_at_the_round
    first.run()
    assert sweep.states() == dict.fromkeys(range(4), "RUNNING") and not sweep.pool.copied
    assert all(t.intermediate_values.get(4) is not None for t in sweep.study.trials)

    _new_driver(sweep)  # everyone is at the round: it is applied at once
    second = _scheduler(sweep)
    stats = second.run()
    assert sweep.states() == dict.fromkeys(range(4), "COMPLETE")
    assert len(sweep.study.trials) == 4 and sweep.pool.copied == [(3, 0, 4)]
    assert stats.exploits == 1 and sweep.study.user_attrs[PBT_ROUND_ATTR] == 4


def test_a_round_kept_on_the_study_is_applied_as_planned_by_the_driver_that_resumes_it(
        write_spec, tmp_path):
    sweep = _sweep(write_spec, tmp_path, actors=4)
    first = _scheduler(sweep)
    first.on_update = lambda stats: len(first.at_round) == 3 and first.request_stop("SIGINT")
    first.run()
    planned = {"recipient": 2, "donor": 1, "params": {"x": 0.5, "y": 0.25}, "how": {}}
    sweep.study.set_user_attr("gansweep.pbt.plan", {"step": 4, "exploits": [planned]})
    _new_driver(sweep)
    _scheduler(sweep).run()  # the plan, not a new decision (which would be 3 <- 0)
    assert sweep.pool.copied == [(2, 1, 4)]
    assert sweep.study.trials[2].user_attrs[PBT_PARAMS_ATTR] == {"x": 0.5, "y": 0.25}


def test_a_lost_actor_at_the_last_chunk_does_not_stop_the_others(write_spec, tmp_path):
    script = Script(losses=dict(LOSSES), dies_at={0: [8]})
    sweep = _sweep(write_spec, tmp_path, script=script)
    _scheduler(sweep).run()
    assert sweep.states() == dict.fromkeys(range(4), "COMPLETE")
    assert DIE not in sweep.pool.finished().values()


# -- a real PBT sweep on a local Ray ---------------------------------------------------------------
REAL = PBT.replace("budget: {steps: 8, eval_every: 2, log_every: 1}",
                   "budget: {steps: 6, eval_every: 2, log_every: 1}").replace(
    "interval: 4, quantile: 0.25}", "interval: 2, quantile: 0.25, resample_probability: 0.0}")


def _loss(params: dict, step: int) -> float:
    return (params["x"] - 1) ** 2 + (params["y"] + 0.5) ** 2 + 1 / (1 + step)


def test_a_pbt_sweep_changes_params_in_the_trainers_and_records_them_in_optuna_and_mlflow(
        ray_local, settings, write_spec):
    stats = launch(SweepSpec.load(write_spec(REAL)), settings, notice=lambda m: None)
    assert stats.done == 4 and stats.exploits >= 2  # rounds at steps 2 and 4
    import optuna

    study = optuna.load_study(study_name="synth", storage=settings.storage)
    client = MlflowClient(settings.tracking_uri)
    exploited = [t for t in study.trials if t.user_attrs.get(PBT_LINEAGE_ATTR)]
    assert exploited
    for trial in study.trials:
        final = trial.user_attrs[PBT_PARAMS_ATTR]
        # the trainer trained with the member's final params: its value is theirs
        assert trial.value == pytest.approx(_loss(final, 6))
        run_id = trial.user_attrs[RUN_ATTR]
        hp_x = {m.step: m.value for m in client.get_metric_history(run_id, "hp/x")}
        schedule = trial.user_attrs[PBT_SCHEDULE_ATTR]
        assert hp_x[0] == pytest.approx(trial.params["x"])  # at step 0: its own first params
        donors = {m.step: m.value for m in client.get_metric_history(run_id, DONOR_METRIC)}
        assert donors == {step: float(donor)
                          for step, donor in trial.user_attrs.get(PBT_LINEAGE_ATTR, [])}
        for step, _ in trial.user_attrs.get(PBT_LINEAGE_ATTR, []):
            after = [p for s, p in schedule if s == step][-1]
            assert hp_x[step] == pytest.approx(after["x"])  # the new params, at the exploit
        params = client.get_run(run_id).data.params
        assert float(params["x"]) == pytest.approx(trial.params["x"])  # MLflow: first params


def test_the_progress_line_counts_the_exploits(write_spec):
    import io

    from rich.console import Console

    from orchestrator.cli.progress import SweepProgress
    from orchestrator.driver.stats import SweepStats

    with SweepProgress(SweepSpec.load(write_spec(PBT)),
                       Console(file=io.StringIO(), width=160)) as progress:
        line = progress.describe(SweepStats(budget=4, running=4, exploits=3))
    assert "running 4  pruned 0  failed 0  exploits 3  best eval/loss=-" in line


def test_a_member_that_diverges_after_the_last_round_fails_as_any_trial(write_spec, tmp_path):
    script = Script(losses=dict(LOSSES), diverges_at={1: 8})
    sweep = _sweep(write_spec, tmp_path, script=script)
    _scheduler(sweep).run()
    assert sweep.states() == {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE", 3: "COMPLETE"}
    assert sweep.study.user_attrs[PBT_ROUND_ATTR] == 4  # no round past the last one


def test_the_copied_state_is_the_recipients_newest_even_past_its_own_round_checkpoint(
        tmp_path):
    from orchestrator.actor.checkpoints import TrialCheckpoints
    from orchestrator.actor.worker import copy_state
    from orchestrator.boundary import TrialSpec

    root = str(tmp_path / "ck")
    donor, recipient = (TrialCheckpoints(root, "s", n) for n in (0, 1))
    donor.save({"spec": {"number": 0, "run_id": "r0", "params": {"x": 1.0}}, "run_id": "r0",
                "step": 4, "best": {"step": 4}, "unwritten": [("eval/loss", 0.1, 1, 4)]}, 4)
    for step in (4, 6):  # its own: at the round, and a chunk past it (its driver died there)
        recipient.save({"spec": {"number": 1, "run_id": "r1"}, "run_id": "r1", "step": step}, step)
    spec = TrialSpec(sweep="s", number=1, trainer="synthetic", params={"x": 0.5}, seed=1,
                     run_id="r1", checkpoint_root=root, total_steps=8, log_every=1)
    assert copy_state(spec, donor=0, step=4) is None
    latest = recipient.load_latest("r1")
    assert latest["step"] == 4 and latest["donor"] == 0 and recipient.steps() == [4]
    assert latest["spec"] == {"number": 1, "run_id": "r1", "params": {"x": 1.0}}
    assert latest["best"] is None and latest["unwritten"] == []  # nothing of the donor's run
