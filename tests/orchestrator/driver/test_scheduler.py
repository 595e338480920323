"""The scheduler: its decisions on a fake actor pool (tests/orchestrator/driver/fake_pool.py:
no Ray, no MLflow, milliseconds each), then trial outcomes on a real local Ray."""

from __future__ import annotations

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.driver import scheduler as scheduler_module
from orchestrator.driver.context import SweepContext
from orchestrator.driver.launch import launch
from orchestrator.driver.scheduler import Scheduler
from orchestrator.layout import ATTEMPT_ATTR, REASON_ATTR, RUN_ATTR
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.settings import Settings
from orchestrator.study.studies import open_study
from tests.conftest import SYNTHETIC
from tests.orchestrator.driver.fake_pool import FakePool, FakeTracker, Script

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _spec(write_spec, text=SYNTHETIC, **replace):
    for old, new in replace.items():
        text = text.replace(old, new)
    return SweepSpec.load(write_spec(text))


# -- the loop's decisions on a fake pool -----------------------------------------------------------
class Sweep:
    """A scheduler over a fake pool, a recording tracker and a real Optuna study (a journal file:
    fast, and reopened by name as a resumed driver does)."""

    def __init__(self, tmp_path, spec: SweepSpec, pool: FakePool):
        storage = str(tmp_path / "study.journal")
        self.settings = Settings(storage=storage, tracking_uri="sqlite:///unused.db",
                                 checkpoint_root=str(tmp_path / "ck"))
        self.study = open_study(spec, storage)
        self.spec, self.pool, self.tracker, self.notices = spec, pool, FakeTracker(), []

    def scheduler(self) -> Scheduler:
        ctx = SweepContext(self.spec, self.settings, self.study, self.tracker,
                           notice=self.notices.append)
        return Scheduler(ctx, self.pool)

    def run(self):
        return self.scheduler().run()

    def states(self) -> dict[int, str]:
        return {t.number: t.state.name for t in self.study.trials}


def _fake(write_spec, tmp_path, actors=2, script=None, **replace) -> Sweep:
    replace.setdefault("sampler: {name: tpe, seed: 0}", "sampler: {name: random, seed: 0}")
    return Sweep(tmp_path, _spec(write_spec, **replace), FakePool(actors, script))


def test_chunks_are_handled_in_completion_order_one_in_flight_per_actor(write_spec, tmp_path):
    # trial 0's chunks take 5 s, the others 1 s: the second actor runs trials 1-3 meanwhile
    sweep = _fake(write_spec, tmp_path, script=Script(seconds={0: 5.0}))
    stats = sweep.run()
    assert stats.done == 4 and sweep.states() == dict.fromkeys(range(4), "COMPLETE")
    trained = sweep.pool.trained()
    first, second = trained[0][0], trained[1][0]
    assert [n for actor, n in trained if actor == first] == [0, 0]  # a trial stays on its actor
    assert [n for actor, n in trained if actor == second] == [1, 1, 2, 2, 3, 3]
    assert sweep.pool.now == 10.0  # the slow trial's two chunks: nobody waited on anybody
    assert sweep.pool.finished() == dict.fromkeys(range(4), "COMPLETE")


def test_the_next_trial_and_its_run_are_made_while_every_actor_is_busy(write_spec, tmp_path):
    sweep = _fake(write_spec, tmp_path, actors=1, **{"trials: 4": "trials: 2"})
    scheduler = sweep.scheduler()
    scheduler._prepare_next()
    assert sweep.tracker.made == [0]  # asked ahead of any actor being free
    scheduler.run()
    assert sweep.tracker.made == [0, 1] and sweep.states() == {0: "COMPLETE", 1: "COMPLETE"}
    assert all(t.user_attrs[RUN_ATTR] == f"run-{t.number}" for t in sweep.study.trials)


def test_a_lost_actor_resumes_its_trial_on_a_new_one_from_its_checkpoint(write_spec, tmp_path):
    # trial 0's actor dies on its second chunk (at step 4); trial 0 goes on elsewhere, attempt 2
    sweep = _fake(write_spec, tmp_path, actors=1, script=Script(dies_at={0: [4]}),
                  **{"trials: 4": "trials: 1"})
    stats = sweep.run()
    assert sweep.states() == {0: "COMPLETE"} and stats.resumed == 1
    trial = sweep.study.trials[0]
    assert trial.user_attrs[ATTEMPT_ATTR] == 2 and trial.user_attrs[RUN_ATTR] == "run-0"
    assert sweep.tracker.made == [0]  # the same run: no second one
    starts = [(actor, n) for call, actor, n in sweep.pool.calls if call == "start"]
    assert len(starts) == 2 and starts[0][0] != starts[1][0]  # a new actor took it
    assert sweep.pool.trained().count(starts[1]) == 1  # from step 2's checkpoint: one chunk left
    assert "its actor was lost (ActorDiedError)" in sweep.notices[0]


def test_a_trial_whose_actors_keep_dying_fails_and_its_unwritten_metrics_are_salvaged(
        write_spec, tmp_path):
    sweep = _fake(write_spec, tmp_path, actors=1, script=Script(dies_at={0: [2, 2, 2, 2]}),
                  **{"trials: 4": "trials: 2"})
    stats = sweep.run()
    assert sweep.states() == {0: "FAIL", 1: "COMPLETE"} and stats.failed == 1
    assert sweep.study.trials[0].user_attrs[REASON_ATTR] == (
        "actor lost: ActorDiedError (3 times; max_retries is 2)")
    assert sweep.tracker.closed["run-0"] == ("FAIL", sweep.study.trials[0].user_attrs[REASON_ATTR])
    assert sweep.pool.salvaged == [0]


def test_a_pruner_ends_a_bad_trial_on_its_actor_at_its_report(write_spec, tmp_path):
    # the median of trials 0 and 1 at step 2 is 1.5: trial 2's 9.0 is pruned there
    sweep = _fake(write_spec, tmp_path, actors=1, script=Script(losses={0: 1.0, 1: 2.0, 2: 9.0}),
                  **{"trials: 4": "trials: 3",
                     "resources:": "pruner: {name: median, n_startup_trials: 2}\nresources:"})
    stats = sweep.run()
    assert sweep.states() == {0: "COMPLETE", 1: "COMPLETE", 2: "PRUNED"} and stats.pruned == 1
    assert sweep.pool.finished()[2] == "PRUNED"
    assert sweep.pool.trained().count(sweep.pool.trained()[-1]) == 1  # pruned after one chunk


def test_a_stop_lets_chunks_in_flight_finish_and_leaves_their_trials_resumable(
        write_spec, tmp_path):
    sweep = _fake(write_spec, tmp_path)
    scheduler = sweep.scheduler()
    trains = sweep.pool.train

    def stop_once_both_train(actor, steps):
        ref = trains(actor, steps)
        if len(sweep.pool.trained()) == 2:  # both actors have a chunk in flight: Ctrl-C
            scheduler.request_stop("stopped by SIGINT")
        return ref
    sweep.pool.train = stop_once_both_train
    stats = scheduler.run()
    assert sweep.states() == {0: "RUNNING", 1: "RUNNING"}  # trials 2 and 3 never asked
    assert sorted(scheduler.suspended) == [0, 1] and stats.done == 0
    assert sweep.pool.finished() == {0: "RUNNING", 1: "RUNNING"}  # their runs: KILLED
    assert len(sweep.pool.trained()) == 2  # no chunk after the stop


def test_a_resumed_driver_continues_the_trials_an_earlier_one_left_running(write_spec, tmp_path):
    first = _fake(write_spec, tmp_path)
    trial = first.study.ask()  # as a driver that died after asking and recording trial 0
    trial.set_user_attr(RUN_ATTR, "run-0")
    trial.report(1.0, 2)
    again = Sweep(tmp_path, first.spec, FakePool(2))
    again.pool.checkpoints[0] = 2  # what its last chunk checkpointed
    stats = again.run()
    assert again.states() == dict.fromkeys(range(4), "COMPLETE") and stats.resumed == 1
    assert again.study.trials[0].user_attrs[ATTEMPT_ATTR] == 2
    assert again.tracker.made == [1, 2, 3]  # trial 0 kept its run
    assert [n for _, n in again.pool.trained()].count(0) == 1  # from step 2: one chunk left
    assert "trial 0: left running by an earlier driver" in again.notices[0]


def test_budget_time_starts_no_trial_after_it_and_fails_the_one_asked_ahead(
        write_spec, tmp_path, monkeypatch):
    clock = {"now": 1000.0}
    monkeypatch.setattr(scheduler_module, "time", type("Clock", (), {
        "time": staticmethod(lambda: clock["now"])}))
    sweep = _fake(write_spec, tmp_path, actors=1, **{"trials: 4": "trials: 4, time: 10s"})
    chunks = sweep.pool.train

    def late(actor, steps):
        clock["now"] += 6.0  # each chunk: 6 s of the 10
        return chunks(actor, steps)
    sweep.pool.train = late
    stats = sweep.run()
    states = sweep.states()
    assert states[0] == "COMPLETE" and stats.done == 1
    assert [s for n, s in states.items() if n > 0] == ["FAIL"] * (len(states) - 1)
    assert {sweep.study.trials[n].user_attrs[REASON_ATTR] for n in states if n > 0} == {
        "timeout"}
    assert len(states) < 4  # the budget's last trials were never asked


def _virtual_clock(monkeypatch, sweep: Sweep) -> None:
    """The scheduler reads the fake pool's virtual time, so a hung chunk costs no real second."""
    monkeypatch.setattr(scheduler_module, "time", type("Clock", (), {
        "time": staticmethod(lambda: sweep.pool.now)}))


def test_a_chunk_that_never_returns_is_stopped_and_its_trial_fails_with_the_reason(
        write_spec, tmp_path, monkeypatch):
    sweep = _fake(write_spec, tmp_path, actors=1, script=Script(hangs_at={1: 2}),
                  **{"trials: 4": "trials: 4, chunk_timeout: 50s"})
    _virtual_clock(monkeypatch, sweep)
    stats = sweep.run()
    assert sweep.states() == {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE", 3: "COMPLETE"}
    assert sweep.study.trials[1].user_attrs[REASON_ATTR] == "no progress for 50 s at step 2"
    assert stats.done == 3 and stats.failed == 1
    assert sweep.tracker.closed["run-1"] == ("FAIL", "no progress for 50 s at step 2")
    assert sweep.pool.salvaged == [1]  # its first chunk's metrics, from its checkpoint
    killed = [actor for call, actor, _ in sweep.pool.calls if call == "kill"]
    hung_actor = next(actor for actor, n in sweep.pool.trained() if n == 1)
    assert killed == [hung_actor]
    assert {actor for actor, n in sweep.pool.trained() if n > 1} != {hung_actor}  # a fresh one
    assert any("trial 1: no progress for 50 s at step 2; its actor is stopped" in m
               for m in sweep.notices)


def test_without_chunk_timeout_a_chunk_is_hung_at_ten_times_its_trials_pace_or_300_s(
        write_spec, tmp_path, monkeypatch):
    script = Script(seconds={0: 40.0}, hangs_at={0: 2})  # 40 s for 2 steps: 20 s a step
    sweep = _fake(write_spec, tmp_path, actors=1, script=script, **{"trials: 4": "trials: 1"})
    _virtual_clock(monkeypatch, sweep)
    sweep.run()
    # its second chunk, 2 steps, gets 10 x 20 s x 2 = 400 s (more than the 300 s floor)
    assert sweep.study.trials[0].user_attrs[REASON_ATTR] == "no progress for 400 s at step 2"
    assert 440.0 <= sweep.pool.now < 441.0

    (tmp_path / "quick").mkdir()
    quick = _fake(write_spec, tmp_path / "quick", actors=1, script=Script(hangs_at={0: 2}),
                  **{"trials: 4": "trials: 1"})  # 1 s a chunk: the floor
    _virtual_clock(monkeypatch, quick)
    quick.run()
    assert quick.study.trials[0].user_attrs[REASON_ATTR] == "no progress for 300 s at step 2"


def test_budget_time_ends_the_sweep_on_time_with_a_chunk_that_never_returns(
        write_spec, tmp_path, monkeypatch):
    sweep = _fake(write_spec, tmp_path, actors=2, script=Script(hangs_at={0: 0}),
                  **{"trials: 4": "trials: 4, time: 10s"})
    _virtual_clock(monkeypatch, sweep)
    stats = sweep.run()
    assert sweep.pool.now <= 10.0 + 5.0 + 0.5  # budget.time, the grace, one wait
    assert sweep.states()[0] == "FAIL"
    assert sweep.study.trials[0].user_attrs[REASON_ATTR] == "timeout"
    assert stats.done >= 1  # the other actor went on meanwhile


def test_a_stop_stops_a_chunk_that_never_returns_and_leaves_its_trial_resumable(
        write_spec, tmp_path, monkeypatch):
    sweep = _fake(write_spec, tmp_path, actors=1, script=Script(hangs_at={0: 2}),
                  **{"trials: 4": "trials: 2"})
    _virtual_clock(monkeypatch, sweep)
    scheduler = sweep.scheduler()
    trains = sweep.pool.train

    def stop_at_the_hung_chunk(actor, steps):
        ref = trains(actor, steps)
        if len(sweep.pool.trained()) == 2:
            scheduler.request_stop("stopped by SIGTERM")
        return ref
    sweep.pool.train = stop_at_the_hung_chunk
    scheduler.run()
    assert sweep.pool.now <= 20.0 + 2.0  # the stop's grace, not a chunk timeout
    assert set(sweep.states().values()) == {"RUNNING"}  # trial 1 was asked ahead, never ran
    assert 0 in scheduler.suspended
    assert sweep.tracker.closed["run-0"] == ("RUNNING", "stopped by SIGTERM")


def test_an_actor_that_never_starts_leaves_the_work_to_the_others(write_spec, tmp_path):
    sweep = _fake(write_spec, tmp_path, script=Script(unplaceable=1))
    stats = sweep.run()
    assert stats.done == 4 and len({actor for actor, _ in sweep.pool.trained()}) == 1
    assert sweep.notices == ["an actor could not start: ActorUnschedulableError: never placed"]


def test_a_trial_that_raises_fails_alone_and_its_actor_takes_the_next(write_spec, tmp_path):
    sweep = _fake(write_spec, tmp_path, actors=1, script=Script(errors={1: "RuntimeError: boom"}))
    stats = sweep.run()
    assert sweep.states() == {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE", 3: "COMPLETE"}
    assert sweep.study.trials[1].user_attrs[REASON_ATTR] == "RuntimeError: boom"
    assert len({actor for actor, _ in sweep.pool.trained()}) == 1 and stats.failed == 1


def test_a_chunk_that_cannot_checkpoint_for_space_stops_the_sweep_and_no_trial_fails(
        write_spec, tmp_path):
    """The disk filled up: trial 1's checkpoint write failed. Every other trial would fail the
    same way, so the sweep stops as on a signal, each trial in flight left RUNNING at its last
    complete checkpoint for `resume`; none is failed for it."""
    full = "OSError: [Errno 28] Error writing bytes to file. Detail:\nNo space left on device"
    sweep = _fake(write_spec, tmp_path, script=Script(errors={1: full}))
    scheduler = sweep.scheduler()
    stats = scheduler.run()
    # trial 0's last chunk was in flight and came back complete; trial 2, asked ahead, never
    # started; nothing after them
    assert sweep.states() == {0: "COMPLETE", 1: "RUNNING", 2: "RUNNING"}
    assert sorted(scheduler.suspended) == [1, 2] and stats.failed == 0
    assert scheduler.disk_full == ("trial 1: OSError: [Errno 28] Error writing bytes to file. "
                                   "Detail: No space left on device")
    assert sweep.pool.finished() == {0: "COMPLETE", 1: "RUNNING"}  # trial 1's run: KILLED
    assert len(sweep.pool.trained()) == 3


def test_a_trial_that_ended_while_its_run_could_not_be_closed_gets_it_closed_on_resume(
        write_spec, tmp_path):
    """Trial 0 completed as the disk filled up: Optuna has it, its actor could not close its
    run (nor write its last metrics). The next launch writes what its checkpoint kept and
    closes the run COMPLETE, once."""
    first = _fake(write_spec, tmp_path)
    trial = first.study.ask()
    trial.set_user_attr(RUN_ATTR, "run-0")
    first.study.tell(trial, 1.0)
    again = Sweep(tmp_path, first.spec, FakePool(2))
    again.tracker.left_open = {"run-0"}
    again.run()
    assert again.tracker.closed["run-0"] == ("COMPLETE", "")
    assert again.pool.salvaged == [0]
    assert again.tracker.made == [1, 2, 3]


# -- on a real local Ray ---------------------------------------------------------------------------
def test_a_trial_that_raises_fails_alone_and_says_why(ray_local, settings, write_spec):
    spec = _spec(write_spec, **{"  y: {type: float, low: -2.0, high: 2.0}":
                                "  y: {type: float, low: -2.0, high: 2.0}\n"
                                "  fail_at: {type: categorical, choices: [-1, 3]}",
                                "trials: 4": "trials: 6"})
    stats = launch(spec, settings, notice=lambda m: None)
    study = optuna.load_study(study_name="synth", storage=settings.storage)
    trials = study.get_trials()
    bad = [t for t in trials if t.params["fail_at"] == 3]
    good = [t for t in trials if t.params["fail_at"] == -1]
    assert bad and good and stats.failed == len(bad) and stats.done == len(good)
    for t in bad:  # failed in its second chunk, after one report at step 2
        assert t.state == TrialState.FAIL and list(t.intermediate_values) == [2]
        assert t.user_attrs["fail_reason"] == "RuntimeError: synthetic failure at step 3"
    assert all(t.state == TrialState.COMPLETE for t in good)
    client = MlflowClient(settings.tracking_uri)
    for t in bad:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED" and run.data.tags["gansweep.state"] == "FAIL"
        assert run.data.tags["gansweep.reason"] == t.user_attrs["fail_reason"]
        traceback = client.download_artifacts(run.info.run_id, "errors/traceback.txt")
        assert "synthetic failure at step 3" in open(traceback).read()


def test_a_trial_left_running_by_a_dead_driver_resumes_in_its_own_run(ray_local, settings,
                                                                     write_spec):
    from orchestrator.tracking.tracker import SweepTracker

    spec = _spec(write_spec)
    tracker = SweepTracker(settings.tracking_uri, "synth", "synth")
    tracker.open_sweep_run(spec.text, "spec.yaml")
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    orphan = study.ask()  # a trial a dead driver left RUNNING, with its run
    run_id = tracker.create_trial_run(orphan.number)
    orphan.set_user_attr("mlflow_run_id", run_id)
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4  # the budget, not 5
    assert trials[0].user_attrs["attempt"] == 2 and stats.done == 4 and stats.resumed == 1
    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["gansweep.attempt"] == "2"
    runs = client.search_runs([run.info.experiment_id], "tags.`gansweep.role` = 'trial'")
    assert sorted(r.data.tags["gansweep.trial"] for r in runs) == ["0", "1", "2", "3"]


def test_a_run_the_driver_made_but_never_recorded_is_reused_on_resume(
        ray_local, settings, write_spec):
    # The driver died after making trial 0's run and before recording its id on the trial;
    # trial 1 had been asked and its run never made. Resume: no trial gets a second run.
    from orchestrator.tracking.tracker import SweepTracker

    spec = _spec(write_spec)
    tracker = SweepTracker(settings.tracking_uri, "synth", "synth")
    tracker.open_sweep_run(spec.text, "spec.yaml")
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    made, _never_started = study.ask(), study.ask()
    run_id = tracker.create_trial_run(made.number)  # and no user attr
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4 and stats.resumed == 2
    assert trials[made.number].user_attrs["mlflow_run_id"] == run_id
    client = MlflowClient(settings.tracking_uri)
    runs = client.search_runs([client.get_run(run_id).info.experiment_id],
                              "tags.`gansweep.role` = 'trial'")
    by_trial = {}
    for r in runs:
        by_trial.setdefault(r.data.tags["gansweep.trial"], []).append(r)
    assert sorted(by_trial) == ["0", "1", "2", "3"]
    assert all(len(found) == 1 for found in by_trial.values())  # one run per trial
    assert by_trial["0"][0].info.status == "FINISHED"
    assert by_trial["0"][0].data.tags["gansweep.attempt"] == "2"
    for t in trials:
        assert client.get_run(t.user_attrs["mlflow_run_id"]).data.tags["gansweep.trial"] == (
            str(t.number))


def _launch_with_a_dying_trial(write_spec, settings, trials: int, retries: int, die_at: int):
    """A sweep whose first trial (enqueued, so that one surely runs) exits its process at step
    `die_at` on every attempt; the others may too (die_at is in the space)."""
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    spec = _spec(write_spec, **{"trials: 4": f"trials: {trials}",
                                "space:": f"max_retries: {retries}\nspace:",
                                "  y: {type: float, low: -2.0, high: 2.0}":
                                "  y: {type: float, low: -2.0, high: 2.0}\n"
                                f"  die_at: {{type: categorical, choices: [-1, {die_at}]}}"})
    study.enqueue_trial({"x": 0.0, "y": 0.0, "die_at": die_at})
    return launch(spec, settings, notice=lambda m: None)


@pytest.mark.cluster  # actors lost three times over (~15 s): make test-cluster
def test_a_trial_whose_actor_keeps_dying_fails_after_max_retries(ray_local, settings,
                                                                 write_spec):
    stats = _launch_with_a_dying_trial(write_spec, settings, trials=5, retries=1, die_at=3)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    dead = [t for t in trials if t.params.get("die_at") == 3]
    assert dead and len(trials) == 5 and stats.failed == len(dead)
    client = MlflowClient(settings.tracking_uri)
    for t in dead:  # attempt 1 dies at 3, attempt 2 resumes from step 2 and dies at 3 again
        assert t.state == TrialState.FAIL and t.user_attrs["attempt"] == 2
        assert t.user_attrs["fail_reason"] == ("actor lost: ActorDiedError (2 times; "
                                               "max_retries is 1)")
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED" and run.data.tags["gansweep.state"] == "FAIL"
        assert run.data.tags["gansweep.resumed_from_step"] == "2"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
        assert steps == [1, 2]  # each step once, though steps 1-2 were logged before a death
    assert all(t.state == TrialState.COMPLETE for t in trials if t not in dead)


def test_a_trial_whose_actor_dies_at_once_gets_one_failed_run_with_its_params(
        ray_local, settings, write_spec):
    # the actor dies before its first chunk returns, maybe before its logging thread wrote
    # the run: the driver ends the one run there is (or makes it) and writes the params
    _launch_with_a_dying_trial(write_spec, settings, trials=2, retries=0, die_at=1)
    dead = optuna.load_study(study_name="synth", storage=settings.storage).trials[0]
    assert dead.state == TrialState.FAIL and dead.user_attrs["fail_reason"].startswith(
        "actor lost")
    client = MlflowClient(settings.tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "tags.`gansweep.trial` = '0'")
    assert [r.info.run_id for r in runs] == [dead.user_attrs["mlflow_run_id"]]
    assert runs[0].info.status == "FAILED" and runs[0].data.tags["gansweep.state"] == "FAIL"
    assert runs[0].data.params == {"x": "0.0", "y": "0.0", "die_at": "1",
                                   "seed": str(dead.user_attrs["seed"])}


def test_a_trial_that_diverges_fails_with_reason_diverged_and_its_step(ray_local, settings,
                                                                       write_spec):
    study = optuna.create_study(study_name="synth", storage=settings.storage)
    spec = _spec(write_spec, **{"  y: {type: float, low: -2.0, high: 2.0}":
                                "  y: {type: float, low: -2.0, high: 2.0}\n"
                                "  nan_at: {type: categorical, choices: [-1, 3]}"})
    study.enqueue_trial({"x": 0.0, "y": 0.0, "nan_at": 3})
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    bad = [t for t in trials if t.params["nan_at"] == 3]
    assert bad and stats.failed == len(bad) and stats.done == 4 - len(bad)
    client = MlflowClient(settings.tracking_uri)
    for t in bad:
        assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == "diverged"
        assert t.user_attrs["diverged_step"] == 3
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED" and run.data.tags["gansweep.reason"] == "diverged"
        assert run.data.tags["gansweep.diverged_step"] == "3"
        history = client.get_metric_history(run.info.run_id, "train/loss")
        assert [m.step for m in history][-1] == 3 and str(history[-1].value) == "nan"
    assert all(t.state == TrialState.COMPLETE for t in trials if t not in bad)


def test_a_nan_objective_fails_the_trial_and_says_so(ray_local, settings, write_spec):
    """A metric no trainer declares (an eval/ or train/ one would be refused with the spec) is
    found missing at the first evaluation: each trial fails saying so."""
    spec = _spec(write_spec, **{"eval/loss": "model/missing"})
    stats = launch(spec, settings, notice=lambda m: None)
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    assert stats.failed == 4 and all(t.state == TrialState.FAIL for t in trials)
    assert trials[0].user_attrs["fail_reason"] == "objective model/missing is None at step 2"
    run = MlflowClient(settings.tracking_uri).get_run(trials[0].user_attrs["mlflow_run_id"])
    assert run.data.tags["gansweep.reason"] == "objective model/missing is None at step 2"


def test_spec_storage_sets_where_checkpoints_go_and_how_many_stay(ray_local, tmp_path,
                                                                  write_spec):
    from click.testing import CliRunner

    from orchestrator.cli import main

    path = write_spec(SYNTHETIC.replace("budget: {trials: 4, steps: 4, eval_every: 2",
                                        "budget: {trials: 2, steps: 8, eval_every: 2")
                      + f"storage: {{checkpoints: {tmp_path}/ck, keep_checkpoints: 3}}\n"
                      # checkpoints are the subject: trial 1's floor is higher than trial 0's,
                      # and when trial 0 ends first, stagnation's pace rightly prunes trial 1
                      # at step 6 (seen on CI); health off keeps both trials to step 8
                      + "health: false\n")
    result = CliRunner().invoke(main, ["launch", str(path),
                                       "--storage", f"sqlite:///{tmp_path}/optuna.db",
                                       "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"])
    assert result.exit_code == 0, result.output
    for trial in ("trial-0000", "trial-0001"):
        assert sorted(p.name for p in (tmp_path / "ck" / "synth" / trial).iterdir()) == [
            "step-00000004.pt", "step-00000006.pt", "step-00000008.pt"]
