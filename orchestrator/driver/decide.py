"""What happens to a trial when one of its chunks comes back: one pure function, no Ray, no
Optuna, no I/O (it imports the boundary's plain types and the spec only). The scheduler waits,
asks `decide`, and applies the `Outcome`; the table in tests/orchestrator/driver/test_decide.py
holds every case.

As in Ray Tune's `OptunaSearch.on_trial_complete`, each way a chunk can come back maps to one
action, and each action that ends a trial to one Optuna state (`Outcome.state`):

  came back                                    action      Optuna     reason, report
  actor lost, the sweep stopping               SUSPEND     RUNNING    (resumed by the next driver)
  actor lost more than max_retries times       FAIL        FAIL       "actor lost: ..."
  actor lost                                   RETRY       RUNNING    (next free actor, same run)
  diverged                                     FAIL        FAIL       "diverged" + diverged_step
  an error                                     FAIL        FAIL       the error
  objective / pruner metric missing or NaN     FAIL        FAIL       "objective M is V at step S"
  step >= budget.steps                         COMPLETE    COMPLETE   report at its last step
  past budget.time                             FAIL        FAIL       "timeout", report
  a GAN-health rule fails (health.py)          PRUNE       PRUNED     "collapse: ...", report
  a pruner: report first, then its verdict     PRUNE       PRUNED     "pruner: ..." (else below)
  the sweep stopping                           SUSPEND     RUNNING    (checkpointed at this step)
  otherwise                                    NEXT_CHUNK  RUNNING    report while it trains on

The intermediate value is the pruner's own metric where it has one, else the objective; a sweep
with several objectives reports none (Optuna refuses them).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from orchestrator.boundary import COMPLETE, DIVERGED, FAIL, PRUNED, ActorLost, ChunkResult
from orchestrator.driver.health import History, verdict
from orchestrator.layout import PRUNER
from orchestrator.spec.sweep import SweepSpec

TIMEOUT = "timeout"  # the reason of a trial that budget.time ended


class Action(enum.Enum):
    NEXT_CHUNK = "next chunk"  # train on, on the same actor
    COMPLETE = "complete"
    FAIL = "fail"
    PRUNE = "prune"
    SUSPEND = "suspend"  # leave it RUNNING in Optuna: `gansweep resume` continues it
    RETRY = "retry"  # its actor died: resume from its checkpoint on the next free actor


_ENDS = {Action.COMPLETE: COMPLETE, Action.FAIL: FAIL, Action.PRUNE: PRUNED}


@dataclass(frozen=True)
class Standing:
    """What the driver knows of the trial and the sweep when a chunk comes back."""

    step: int = 0  # the trial's step before this chunk
    losses: int = 0  # actors this trial has lost, a `Lost` result counted
    can_prune: bool = False  # the study has a pruner (never with several objectives)
    deadline: float | None = None  # when budget.time ends; None: no time budget, or not started
    stop: str | None = None  # why the sweep is stopping (a signal, a lease lost), once it is
    health: History = History()  # the trial's evaluations, this chunk's included (health.py)
    sweep_best: float | None = None  # the best completed trial's value (single objective)


@dataclass(frozen=True)
class Outcome:
    action: Action
    reason: str = ""  # why it failed (REASON_ATTR) or was pruned (PRUNED_REASON_ATTR), or ""
    value: float | list[float] | None = None  # told to Optuna when it completes
    report: tuple[float, int] | None = None  # (intermediate value, step) for `trial.report`
    ask_pruner: bool = False  # report first; then the pruner may make it PRUNE (`pruned`)
    step: int | None = None  # the step the chunk reached (counted as trained); None: failed
    diverged_step: int | None = None  # USER_ATTR_DIVERGED_STEP

    @property
    def state(self) -> str | None:
        """The state this outcome ends the trial in (COMPLETE, PRUNED or FAIL: its Optuna state
        and its run's); None while it runs on."""
        return _ENDS.get(self.action)

    def pruned(self, verdict: bool) -> Outcome:
        """The pruner's verdict, asked once `report` went in: it may end the trial; nothing is
        left to report."""
        if not self.ask_pruner:
            return self
        return replace(self, action=Action.PRUNE if verdict else self.action, report=None,
                       ask_pruner=False, reason=self.reason if verdict else "")


def out_of_time(deadline: float | None, now: float) -> bool:
    return deadline is not None and now >= deadline


def decide(result: ChunkResult | ActorLost, standing: Standing, spec: SweepSpec,
           now: float) -> Outcome:
    """What to do with a trial whose chunk came back as `result` at time `now` (`ActorLost`:
    it never came back, its actor died)."""
    if isinstance(result, ActorLost):
        return _lost(result, standing, spec.max_retries)
    if result.error == DIVERGED:
        return Outcome(Action.FAIL, reason=DIVERGED, diverged_step=result.step)
    if result.error is not None:
        return Outcome(Action.FAIL, reason=result.error)
    invalid = invalid_metric(result, spec)
    if invalid:
        return Outcome(Action.FAIL, reason=invalid, step=result.step)
    values = [result.metrics[o.metric] for o in spec.objectives]
    value = values if spec.multi else values[0]
    prune_metric = spec.pruner.metric  # None: the pruner's is the objective
    reported = (result.metrics[prune_metric] if prune_metric else value, result.step)
    report = None if spec.multi else reported
    if result.step >= spec.budget.steps:
        return Outcome(Action.COMPLETE, value=value, report=report, step=result.step)
    if out_of_time(standing.deadline, now):  # its chunk is checkpointed; no more chunks
        return Outcome(Action.FAIL, reason=TIMEOUT, report=report, step=result.step)
    unhealthy = verdict(standing.health, spec.health, spec.budget.steps,
                        spec.objective.direction == "maximize", standing.sweep_best)
    if unhealthy:
        return Outcome(Action.PRUNE, reason=unhealthy, report=report, step=result.step)
    go_on = Action.SUSPEND if standing.stop else Action.NEXT_CHUNK
    if standing.can_prune:  # decided before the next chunk; the reason, if it prunes
        why = f"{PRUNER}: {spec.pruner.name} at step {result.step}"
        return Outcome(go_on, report=reported, ask_pruner=True, step=result.step, reason=why)
    # without a pruner, a trial stopped here reports nothing: it resumes from its last report
    return Outcome(go_on, report=report if go_on is Action.NEXT_CHUNK else None,
                   step=result.step)


def invalid_metric(result: ChunkResult, spec: SweepSpec) -> str | None:
    """Why a chunk's metrics cannot be told: an objective or the pruner's metric is missing or
    not finite."""
    needed = [("objective", o.metric) for o in spec.objectives] + (
        [("pruner.metric", spec.pruner.metric)] if spec.pruner.metric else [])
    for role, metric in needed:
        v = result.metrics.get(metric)
        if v is None or not math.isfinite(v):
            return f"{role} {metric} is {v} at step {result.step}"
    return None


def _lost(lost: ActorLost, standing: Standing, retries: int) -> Outcome:
    if standing.stop:
        return Outcome(Action.SUSPEND)
    if standing.losses > retries:
        return Outcome(Action.FAIL, reason=f"actor lost: {lost.what} ({standing.losses} times; "
                                            f"max_retries is {retries})")
    return Outcome(Action.RETRY)
