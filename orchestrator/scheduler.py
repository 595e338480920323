"""The sweep loop: Optuna ask/tell on the driver, chunks of training on a pool of Ray actors.

Results are handled in completion order (`ray.wait` over every in-flight chunk), with at most one
chunk in flight per actor. A trial stays on its actor while it runs, since its state lives there.
The next trial is asked (and its MLflow run created) while the actors are busy, so an actor that
frees up gets new work at once instead of waiting on sqlite writes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
import ray
from optuna.trial import TrialState

from orchestrator.space import suggest_all
from orchestrator.spec import SweepSpec
from orchestrator.study import (
    USER_ATTR_REASON,
    USER_ATTR_RUN,
    USER_ATTR_SEED,
    trial_seed,
    trials_used,
)
from orchestrator.tracking import SweepTracker
from orchestrator.worker import ChunkResult, TrialSpec, TrialWorker


@dataclass
class SweepStats:
    """What the progress display shows; updated after every event."""

    budget: int
    done: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best: float | None = None
    best_trial: int | None = None
    steps_trained: int = 0
    started_at: float = field(default_factory=time.time)


@dataclass
class Active:
    trial: optuna.Trial
    spec: TrialSpec
    worker: Any = None
    step: int = 0


def pool_plan(spec: SweepSpec, cluster: dict[str, float]) -> tuple[int, dict[str, float]]:
    """How many actors the cluster holds, and each actor's Ray resource request."""
    res = spec.resources
    cpus, gpus = cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
    by_cpu = int(cpus // res.cpus_per_trial + 1e-9)
    if gpus > 0 and res.gpus_per_trial > 0:
        size = min(int(gpus // res.gpus_per_trial + 1e-9), by_cpu)
        return size, {"num_cpus": res.cpus_per_trial, "num_gpus": res.gpus_per_trial}
    return by_cpu, {"num_cpus": res.cpus_per_trial, "num_gpus": 0}


class Scheduler:
    def __init__(self, spec: SweepSpec, study: optuna.Study, tracker: SweepTracker,
                 data_ref: ray.ObjectRef, checkpoint_root: str, n_workers: int,
                 actor_options: dict[str, float],
                 on_update: Callable[[SweepStats], None] | None = None,
                 notice: Callable[[str], None] = print):
        self.spec, self.study, self.tracker = spec, study, tracker
        self.data_ref, self.checkpoint_root = data_ref, checkpoint_root
        self.actor_options, self.on_update = actor_options, on_update or (lambda s: None)
        self.notice = notice
        self.actor_class = ray.remote(TrialWorker)
        self.remaining = spec.budget.trials - trials_used(study)
        self.stats = self._initial_stats()
        self.workers = [self._new_worker() for _ in range(max(0, min(n_workers, self.remaining)))]
        self.in_flight: dict[ray.ObjectRef, Active] = {}
        self.closing: dict[ray.ObjectRef, str] = {}  # finish() call -> run id, checked at end
        self.prepared: Active | None = None
        self.can_prune = not isinstance(study.pruner, optuna.pruners.NopPruner)

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> SweepStats:
        time_s = self.spec.budget.time_s
        self.deadline = time.time() + time_s if time_s else None
        self.on_update(self.stats)
        for worker in list(self.workers):
            self._release(worker)
        while True:
            self._prepare_next()
            if not self.in_flight:
                break
            [ref], _ = ray.wait(list(self.in_flight), num_returns=1)
            self._handle(ref, self.in_flight.pop(ref))
        self._drain_closing()
        return self.stats

    def _drain_closing(self) -> None:
        """Wait for every run to be closed by its actor; close from here what an actor could not
        (it died after its trial ended). Late write failures are reported, not raised: every
        trial has already been told to Optuna."""
        for ref, run_id in self.closing.items():
            try:
                ray.get(ref)
            except ray.exceptions.RayError as exc:
                self.tracker.end_trial_run(run_id, "FAIL", f"actor lost while closing: {exc}")
        for worker in self.workers:
            try:
                ray.get(worker.flush.remote())
            except ray.exceptions.RayError as exc:
                self.notice(f"some MLflow writes of an actor were lost: {exc}")

    def abort(self, why: str) -> None:
        """The driver is stopping early: no trial is left RUNNING in Optuna or MLflow."""
        actives = list(self.in_flight.values()) + ([self.prepared] if self.prepared else [])
        for active in actives:
            self.tracker.end_trial_run(active.spec.run_id, "FAIL", why)
            self._tell(active, TrialState.FAIL, reason=why)
        self.in_flight.clear()
        self.prepared = None

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    def _release(self, worker) -> None:
        """A free actor gets the next trial at once, if the budget has one left."""
        if (self.prepared or self.remaining > 0) and not self._out_of_time():
            self._dispatch(worker)

    def _dispatch(self, worker) -> None:
        active = self.prepared or self._ask()
        self.prepared, active.worker = None, worker
        worker.start.remote(active.spec)  # actor calls run in order: start, then train
        self._next_chunk(active)
        self.stats.running += 1
        self.on_update(self.stats)

    def _prepare_next(self) -> None:
        """Ask the next trial while every actor is busy, so a freed actor never waits on it."""
        if self._out_of_time():  # budget.time: no new trial; one asked ahead never ran
            self.remaining = 0
            if self.prepared is not None:
                self.tracker.end_trial_run(self.prepared.spec.run_id, "FAIL", "timeout")
                self._tell(self.prepared, TrialState.FAIL, reason="timeout")
                self.prepared = None
        elif self.prepared is None and self.remaining > 0:
            self.prepared = self._ask()

    def _ask(self) -> Active:
        self.remaining -= 1
        trial = self.study.ask()
        params = {**self.spec.fixed, **suggest_all(self.spec.space, trial)}
        seed = trial_seed(self.spec.sampler.seed, trial.number)
        run_id = self.tracker.create_trial_run(trial.number, params, seed)
        trial.set_user_attr(USER_ATTR_RUN, run_id)
        trial.set_user_attr(USER_ATTR_SEED, seed)
        budget = self.spec.budget
        return Active(trial, TrialSpec(
            sweep=self.spec.name, number=trial.number, trainer=self.spec.trainer, params=params,
            seed=seed, run_id=run_id, checkpoint_root=self.checkpoint_root,
            total_steps=budget.steps, eval_every=budget.eval_every, log_every=budget.log_every))

    # -- one finished chunk ----------------------------------------------------------------------
    def _handle(self, ref: ray.ObjectRef, active: Active) -> None:
        """Act on one chunk's result: next chunk, or end the trial and free its actor."""
        try:
            result: ChunkResult = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the actor died, or its node with it
            reason = f"actor lost: {type(exc).__name__}"
            self.tracker.end_trial_run(active.spec.run_id, "FAIL", reason)
            replacement = self._replace(active.worker)
            if replacement is not None:
                self._release(replacement)
            self._tell(active, TrialState.FAIL, reason=reason)
            return
        if result.error is not None:
            return self._end(active, TrialState.FAIL, reason=result.error)
        self.stats.steps_trained += result.step - active.step
        active.step = result.step
        values = [result.metrics.get(o.metric) for o in self.spec.objectives]
        for objective, v in zip(self.spec.objectives, values, strict=True):
            if v is None or not math.isfinite(v):
                return self._end(active, TrialState.FAIL, reason=f"objective "
                                 f"{objective.metric} is {v} at step {result.step}")
        value = values if self.spec.multi else values[0]
        if result.step >= self.spec.budget.steps:
            return self._end(active, TrialState.COMPLETE, value=value, step=result.step)
        if self._out_of_time():  # its chunk is done and checkpointed; no more chunks
            return self._end(active, TrialState.FAIL, value=value, step=result.step,
                             reason="timeout")
        if self.can_prune:  # decide before the next chunk (never with several objectives)
            active.trial.report(value, result.step)
            if active.trial.should_prune():
                return self._end(active, TrialState.PRUNED)
        self._next_chunk(active)
        if not self.can_prune and not self.spec.multi:  # report while the actor trains on
            active.trial.report(value, result.step)

    def _next_chunk(self, active: Active) -> None:
        self.in_flight[active.worker.train.remote(self.spec.budget.eval_every)] = active

    def _end(self, active: Active, state: TrialState, value: float | list[float] | None = None,
             reason: str = "", step: int | None = None) -> None:
        """Free the actor first (it closes the run and starts the next trial while the driver
        writes to Optuna), then record the outcome."""
        self.closing[active.worker.finish.remote(state.name, reason)] = active.spec.run_id
        self._release(active.worker)
        if step is not None and not self.spec.multi:
            active.trial.report(value, step)
        self._tell(active, state, value, reason)

    def _tell(self, active: Active, state: TrialState, value: float | list[float] | None = None,
              reason: str = "") -> None:
        if reason:
            active.trial.set_user_attr(USER_ATTR_REASON, reason)
        if state == TrialState.COMPLETE:
            self.study.tell(active.trial, value)
        else:
            self.study.tell(active.trial, state=state)
        stats = self.stats
        stats.running -= active.worker is not None  # a trial asked ahead never ran
        if state == TrialState.COMPLETE:
            stats.done += 1
            self._record_best(value, active.trial.number, stats)
        elif state == TrialState.PRUNED:
            stats.pruned += 1
        else:
            stats.failed += 1
        self.on_update(stats)

    def _record_best(self, value, number: int, stats: SweepStats, log: bool = True):
        """Best so far, for a single objective; several objectives have a front, not a best."""
        minimize = self.spec.objective.direction == "minimize"
        if not self.spec.multi and (stats.best is None or (
                value < stats.best if minimize else value > stats.best)):
            stats.best, stats.best_trial = value, number
        if log:
            best = {} if self.spec.multi else {"sweep/best_value": stats.best}
            self.tracker.log_progress({**best, "sweep/completed": stats.done}, step=stats.done)

    def _initial_stats(self) -> SweepStats:
        """Counts carried over from earlier launches of the same sweep."""
        stats = SweepStats(budget=self.spec.budget.trials)
        for t in self.study.get_trials(deepcopy=False):
            if t.state == TrialState.COMPLETE:
                stats.done += 1
                self._record_best(t.values[0], t.number, stats, log=False)
            stats.pruned += t.state == TrialState.PRUNED
            stats.failed += t.state == TrialState.FAIL
        return stats

    def _new_worker(self):
        threads = max(1, int(self.actor_options["num_cpus"]))
        return self.actor_class.options(**self.actor_options).remote(
            self.data_ref, self.tracker.uri, threads)

    def _replace(self, dead):
        """Drop a dead actor; start a replacement only if there is work left for it."""
        ray.kill(dead)  # an unreachable actor may still hold its GPU: release it
        self.workers = [w for w in self.workers if w is not dead]
        if not (self.prepared or self.remaining > 0):
            return None
        self.workers.append(self._new_worker())
        return self.workers[-1]
