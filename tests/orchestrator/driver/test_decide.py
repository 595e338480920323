"""What happens to a trial after a chunk, as a table: `decide` without Ray, MLflow or storage."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator.boundary import DIVERGED, ActorLost, ChunkResult
from orchestrator.driver.decide import Action, Outcome, Standing, decide
from orchestrator.driver.health import History, Point
from orchestrator.spec.sweep import SweepSpec
from tests.conftest import SYNTHETIC

SPECS = {  # budget.steps 4, max_retries 2 (the default)
    "single": SweepSpec.parse(SYNTHETIC),
    "pruner metric": SweepSpec.parse(SYNTHETIC + "pruner: {name: median, metric: eval/x_loss}\n"),
    "multi": SweepSpec.parse(SYNTHETIC.replace(
        "objective: {metric: eval/loss, direction: minimize}",
        "objectives:\n  - {metric: eval/loss, direction: minimize}\n"
        "  - {metric: eval/x_loss, direction: minimize}")),
}
SPECS["no health"] = SweepSpec.parse(SYNTHETIC + "health: false\n")
# three evaluations past the warm-up with a tenth of the data's coverage: collapsed
COLLAPSED = History(tuple(Point(s, 0.5, (("eval/coverage", 0.1, 1.0),)) for s in (2, 2, 3)))
COLLAPSE_REASON = ("collapse: samples under 0.25x the data's diversity for 3 evaluations: "
                   "eval/coverage 0.1 (the data's 1) at step 3")
NOW = 100.0
LATE, EARLY = 50.0, 200.0  # deadlines: passed, still ahead
STOP = "stopped by SIGINT"
M = {"eval/loss": 0.5, "eval/x_loss": 0.25}  # a chunk's metrics


def chunk(step: int, metrics: dict | None = None, error: str | None = None) -> ChunkResult:
    return ChunkResult(number=0, step=step, metrics=M if metrics is None else metrics,
                       error=error)


F = Action.FAIL
CASES = [  # (case, spec, result, standing, expected)
    # an actor lost: the stop wins, then max_retries
    ("lost while stopping", "single", ActorLost("ActorDiedError"), Standing(losses=9, stop=STOP),
     Outcome(Action.SUSPEND)),
    ("lost past max_retries", "single", ActorLost("ActorDiedError"), Standing(losses=3),
     Outcome(F, reason="actor lost: ActorDiedError (3 times; max_retries is 2)")),
    ("lost within max_retries", "single", ActorLost("ActorUnavailableError"), Standing(losses=2),
     Outcome(Action.RETRY)),
    # the chunk ended the trial: divergence and errors come before any metric is read
    ("diverged", "single", chunk(3, {}, DIVERGED), Standing(step=2, can_prune=True),
     Outcome(F, reason="diverged", diverged_step=3)),
    ("an error, even while stopping", "single", chunk(3, {}, "RuntimeError: boom"),
     Standing(stop=STOP), Outcome(F, reason="RuntimeError: boom")),
    ("objective missing", "single", chunk(2, {"eval/x_loss": 1.0}), Standing(),
     Outcome(F, reason="objective eval/loss is None at step 2", step=2)),
    ("objective NaN, even at the last step", "single", chunk(4, {"eval/loss": math.nan}),
     Standing(), Outcome(F, reason="objective eval/loss is nan at step 4", step=4)),
    ("pruner metric infinite", "pruner metric", chunk(2, {"eval/loss": 1.0, "eval/x_loss":
                                                          math.inf}),
     Standing(can_prune=True), Outcome(F, reason="pruner.metric eval/x_loss is inf at step 2",
                                       step=2)),
    ("second objective missing", "multi", chunk(2, {"eval/loss": 1.0}), Standing(),
     Outcome(F, reason="objective eval/x_loss is None at step 2", step=2)),
    # the last step completes it, whatever the clock or a stop says
    ("budget.steps reached", "single", chunk(4), Standing(step=2, can_prune=True),
     Outcome(Action.COMPLETE, value=0.5, report=(0.5, 4), step=4)),
    ("budget.steps reached late and stopping", "single", chunk(4),
     Standing(deadline=LATE, stop=STOP), Outcome(Action.COMPLETE, value=0.5, report=(0.5, 4),
                                                 step=4)),
    ("reports the pruner's metric, tells the objective", "pruner metric", chunk(4),
     Standing(can_prune=True), Outcome(Action.COMPLETE, value=0.5, report=(0.25, 4), step=4)),
    ("several objectives: no report", "multi", chunk(4), Standing(),
     Outcome(Action.COMPLETE, value=[0.5, 0.25], step=4)),
    # budget.time: the chunk is checkpointed, no next one
    ("past budget.time", "single", chunk(2), Standing(deadline=LATE, can_prune=True, stop=STOP),
     Outcome(F, reason="timeout", report=(0.5, 2), step=2)),
    ("at budget.time exactly", "single", chunk(2), Standing(deadline=NOW),
     Outcome(F, reason="timeout", report=(0.5, 2), step=2)),
    ("several objectives past budget.time", "multi", chunk(2), Standing(deadline=LATE),
     Outcome(F, reason="timeout", step=2)),
    # on it goes: a pruner is asked first; without one, it reports while it trains on
    ("next chunk", "single", chunk(2), Standing(deadline=EARLY),
     Outcome(Action.NEXT_CHUNK, report=(0.5, 2), step=2)),
    ("next chunk, several objectives", "multi", chunk(2), Standing(),
     Outcome(Action.NEXT_CHUNK, step=2)),
    ("next chunk, pruner asked", "pruner metric", chunk(2), Standing(can_prune=True),
     Outcome(Action.NEXT_CHUNK, report=(0.25, 2), ask_pruner=True, step=2,
             reason="pruner: median at step 2")),
    ("stopping: suspended without a report", "single", chunk(2), Standing(stop=STOP),
     Outcome(Action.SUSPEND, step=2)),
    ("stopping: the pruner is asked first", "single", chunk(2), Standing(can_prune=True,
                                                                          stop=STOP),
     Outcome(Action.SUSPEND, report=(0.5, 2), ask_pruner=True, step=2,
             reason="pruner: none at step 2")),
    # a GAN-health rule prunes before any pruner is asked, with its reason (health.py's table:
    # tests/orchestrator/driver/test_health.py)
    ("unhealthy: pruned with its reason", "single", chunk(3),
     Standing(can_prune=True, health=COLLAPSED),
     Outcome(Action.PRUNE, reason=COLLAPSE_REASON, report=(0.5, 3), step=3)),
    ("unhealthy at the last step: completes", "single", chunk(4), Standing(health=COLLAPSED),
     Outcome(Action.COMPLETE, value=0.5, report=(0.5, 4), step=4)),
    ("unhealthy, health: false", "no health", chunk(3), Standing(health=COLLAPSED),
     Outcome(Action.NEXT_CHUNK, report=(0.5, 3), step=3)),
]


@pytest.mark.parametrize("spec, result, standing, expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_decide(spec, result, standing, expected):
    assert decide(result, standing, SPECS[spec], NOW) == expected


WHY = "pruner: median at step 2"
ASKED = Outcome(Action.NEXT_CHUNK, report=(0.5, 2), ask_pruner=True, step=2, reason=WHY)
STOPPING = Outcome(Action.SUSPEND, report=(0.5, 2), ask_pruner=True, step=2, reason=WHY)
VERDICTS = [  # (case, outcome, the pruner says prune, expected): nothing is reported twice
    ("pruned", ASKED, True, Outcome(Action.PRUNE, step=2, reason=WHY)),
    ("kept", ASKED, False, Outcome(Action.NEXT_CHUNK, step=2)),
    ("pruned while stopping", STOPPING, True, Outcome(Action.PRUNE, step=2, reason=WHY)),
    ("kept while stopping", STOPPING, False, Outcome(Action.SUSPEND, step=2)),
    ("not asked", Outcome(Action.NEXT_CHUNK, report=(0.5, 2), step=2), True,
     Outcome(Action.NEXT_CHUNK, report=(0.5, 2), step=2)),
]


@pytest.mark.parametrize("outcome, verdict, expected", [v[1:] for v in VERDICTS],
                         ids=[v[0] for v in VERDICTS])
def test_the_pruners_verdict(outcome, verdict, expected):
    assert outcome.pruned(verdict) == expected


def test_each_ending_action_is_one_optuna_state_and_the_others_none():
    states = {a: Outcome(a).state for a in Action}
    assert states == {Action.COMPLETE: "COMPLETE", Action.FAIL: "FAIL", Action.PRUNE: "PRUNED",
                      Action.NEXT_CHUNK: None, Action.SUSPEND: None, Action.RETRY: None}
    assert all(TrialState[s].is_finished() for s in states.values() if s)


def test_a_real_median_pruner_prunes_what_decide_reports():
    # the scheduler's sequence on an in-memory study: decide, report, ask the pruner
    spec = SPECS["pruner metric"]
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                                                   n_warmup_steps=0))
    for x_loss in (1.0, 2.0):  # two finished trials set the median at step 2
        trial = study.ask()
        trial.report(x_loss, 2)
        study.tell(trial, 0.0)
    for x_loss, pruned in ((1.0, False), (9.0, True)):
        trial = study.ask()
        outcome = decide(chunk(2, {"eval/loss": 0.0, "eval/x_loss": x_loss}),
                         Standing(can_prune=True), spec, NOW)
        trial.report(*outcome.report)
        after = outcome.pruned(trial.should_prune())
        assert after.action == (Action.PRUNE if pruned else Action.NEXT_CHUNK)
        assert trial.storage.get_trial(trial._trial_id).intermediate_values == {2: x_loss}
