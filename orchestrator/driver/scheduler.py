"""The sweep loop: Optuna ask/tell on the driver, chunks of training on a pool of trial actors.

Results are handled in completion order (the pool's `wait` over every in-flight chunk), with at
most one chunk in flight per actor. A trial stays on its actor while it runs, since its state
lives there. The next trial is asked while the actors are busy, so an actor that frees up gets
new work at once instead of waiting on storage writes; its MLflow run is made then too, by the
driver, and recorded on the Optuna trial before any actor starts it.

Nothing is lost: a trial whose actor dies (process killed, node gone) waits for the next free
actor and resumes from its last checkpoint in the same Optuna trial and MLflow run; trials a dead
driver left RUNNING are resumed the same way. `request_stop` (Ctrl-C) lets the chunks in flight
finish and checkpoint, then leaves their trials RUNNING in Optuna, to be resumed. Nothing hangs:
a chunk that does not come back within its limit (watchdog.py: `budget.chunk_timeout`, else from
the trial's own pace; past `budget.time`; after a stop) has its actor killed.

What happens to a trial after a chunk is decided by `decide.decide` (pure, tested as a table);
the loop here only waits, dispatches and applies its `Outcome`, and a trial's end reaches Optuna
through one function, `trials.tell`. It reaches the actors only through an `Actors` pool (on Ray:
orchestrator/cluster/pool.py), so that tests drive it with a fake one, as Ray Tune's controller
takes a resource manager.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.boundary import COMPLETE, FAIL, PRUNED, RUNNING, ActorLost, ChunkResult
from orchestrator.driver.context import Actors, SweepContext
from orchestrator.driver.decide import TIMEOUT, Action, Outcome, Standing, decide, out_of_time
from orchestrator.driver.health import point, references
from orchestrator.driver.stats import SweepStats
from orchestrator.driver.trials import Active, TrialMaker, tell
from orchestrator.driver.watchdog import HUNG, STOPPING, Watchdog
from orchestrator.errors import out_of_space
from orchestrator.layout import (
    ATTEMPT_ATTR,
    PRUNED_REASON_ATTR,
    REASON_ATTR,
    SWEEP_BEST_VALUE,
    SWEEP_COMPLETED,
    reason_kind,
)
from orchestrator.study.ranking import better
from orchestrator.study.studies import trials_used

WAIT_S = 0.5  # the loop wakes at least this often, to notice Ctrl-C
START_TIMEOUT_S = 300.0  # a trial waiting to resume gives up when no actor starts for this long
PROGRESS_EVERY_S = 5.0  # the parent run's sweep/completed, unless the best improved


class Scheduler:
    def __init__(self, ctx: SweepContext, pool: Actors):
        self.spec, self.study, self.tracker = ctx.spec, ctx.study, ctx.tracker
        self.pool, self.page = pool, ctx.page
        self.on_update: Callable[[SweepStats], None] = ctx.on_update or (lambda s: None)
        self.notice = ctx.notice
        self.maximize = self.spec.objective.direction == "maximize"
        self.remaining = self.spec.budget.trials - trials_used(self.study)
        self.deadline: float | None = None  # budget.time counts from the first actor ready
        self.progress_logged_at = 0.0
        self.stats = self._initial_stats()
        self.trials = TrialMaker(ctx)
        orphans = self.trials.orphans(self.notice)  # left RUNNING by an earlier driver
        self.stats.resumed += len(orphans)
        self.salvaging: dict[Hashable, Active] = {}  # salvage() of trials that failed
        for active, state in self.trials.unclosed():  # a disk filled up as they ended
            self.salvaging[pool.salvage(active.spec)] = active
            self._close(active, state, active.trial.user_attrs.get(REASON_ATTR, ""))
        self.waiting: deque[Active] = deque(orphans)  # to resume on the next free actor
        work = self.remaining + len(self.waiting)
        # actor's ready() -> actor: the pool's, made while the driver opened the stores
        self.starting: dict[Hashable, Any] = pool.take(max(0, min(pool.size, work)))
        self.workers = list(self.starting.values())
        self.idle: list[Any] = []  # actors with nothing to do (budget asked out, or stopping)
        self.in_flight: dict[Hashable, Active] = {}
        self.closing: dict[Hashable, Active] = {}  # finish() calls, checked at the end
        self.prepared: Active | None = None
        self.can_prune = not isinstance(self.study.pruner, optuna.pruners.NopPruner)
        self.stop_requested: str | None = None  # why (e.g. SIGINT), once asked to stop
        self.stop_since: float | None = None  # when it was asked
        self.watch = Watchdog(self.spec.budget.chunk_timeout_s)  # chunks that never come back
        self.suspended: list[int] = []  # trials left RUNNING to resume, when stopped early
        self.disk_full: str | None = None  # the first write that failed for space
        self.references = references(ctx.data.sweep_metrics if ctx.data else {})

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> SweepStats:
        self.on_update(self.stats)
        while True:  # each actor takes a trial once placed and ready
            self._prepare_next()
            if not self.in_flight and not (self.starting and self._work_left()):
                break
            ref = self.pool.wait(list(self.in_flight) + list(self.starting), WAIT_S)
            if ref is None:
                self._give_up_waiting()
            elif ref in self.starting:
                self._started(ref, self.starting.pop(ref))
            else:
                self._handle(ref, self.in_flight.pop(ref))
            self._stop_overdue()
        unplaced = {id(actor) for actor in self.starting.values()}
        for actor in self.starting.values():  # never placed, and no work left for them
            self.pool.kill(actor)
        self.workers = [w for w in self.workers if id(w) not in unplaced]  # nothing to flush
        for active in self._unfinished():
            if not self.stop_requested:
                self.notice(f"trial {active.trial.number}: no actor could take it; `gansweep "
                            f"resume {self.spec.name}` continues it")
            self._suspend(active)
        self.waiting.clear()
        self.prepared = None
        self._log_progress()
        self._drain_closing()
        return self.stats

    def request_stop(self, why: str) -> None:
        """Start no more chunks; those in flight finish and checkpoint (a chunk still out
        STOP_GRACE_S later is stopped, its trial resumable from its last checkpoint), then `run`
        returns."""
        self.stop_requested = why
        self.stop_since = self.stop_since or time.time()

    def _drain_closing(self) -> None:
        """Wait for every run to be closed by its actor; close from here what an actor could not
        (it died after its trial ended). Late write failures are reported, not raised: every
        trial has already been told to Optuna."""
        for ref, active in self.closing.items():
            try:
                self.pool.get(ref)
            except ActorLost as lost:
                self._close(active, FAIL, f"actor lost while closing: {lost}")
        for ref, active in self.salvaging.items():
            try:
                problem = self.pool.get(ref)
            except ActorLost as lost:
                problem = f"{lost.what}: {lost}"
            if problem:
                self.notice(f"trial {active.trial.number}: unwritten metrics lost: {problem}")
        for worker in self.workers:
            try:
                self.pool.get(self.pool.flush(worker))
            except ActorLost as lost:
                self.notice(f"some MLflow writes of an actor were lost: {lost}")
        self._end_actors(now=False)

    def _end_actors(self, now: bool) -> None:
        """The pool ends with the sweep, not when its handles are garbage collected: a handle
        kept alive elsewhere (a traceback's frames) would hold the actors' CPUs and GPUs, and
        the next sweep in this Ray session would wait for them forever."""
        for worker in self.workers:
            if now:
                self.pool.kill(worker)
            else:  # after the calls it was given
                self.pool.retire(worker)
        self.workers = []

    def abort(self, why: str) -> None:
        """The driver is stopping at once: no run is left RUNNING in MLflow, and every trial that
        had not ended stays RUNNING in Optuna, to be resumed from its last checkpoint."""
        for active in list(self.in_flight.values()) + self._unfinished():
            self._close(active, RUNNING, why)
            self.suspended.append(active.trial.number)
        self.in_flight.clear()
        self.waiting.clear()
        self.prepared = None
        self._end_actors(now=True)

    def _unfinished(self) -> list[Active]:
        """Trials not in flight that have not ended: waiting to resume, or asked ahead."""
        return list(self.waiting) + ([self.prepared] if self.prepared else [])

    def _work_left(self) -> bool:
        """Trials an actor could take now: waiting to resume, or new ones from the budget."""
        if self.stop_requested:
            return False
        return bool(self.waiting) or (bool(self.prepared or self.remaining > 0)
                                      and not self._out_of_time())

    def _out_of_time(self) -> bool:
        return out_of_time(self.deadline, time.time())

    def _release(self, worker) -> None:
        """A free actor gets the next trial at once: a trial waiting to resume first, then a new
        one if the budget has one left."""
        if self._work_left():
            active = (self.waiting.popleft() if self.waiting else self.prepared) or self._ask()
            self.prepared = None if active is self.prepared else self.prepared
            return self._dispatch(worker, active)
        self.idle.append(worker)

    def _dispatch(self, worker, active: Active) -> None:
        active.worker = worker
        self.pool.start(worker, active.spec)
        self._next_chunk(active)
        self.stats.running += 1
        self.on_update(self.stats)

    def _prepare_next(self) -> None:
        """Ask the next trial while every actor is busy, so a freed actor never waits on it."""
        if self.stop_requested:
            return
        if self._out_of_time():  # budget.time: no new trial; one asked ahead never ran
            self.remaining = 0
            if self.prepared is not None:
                self._close(self.prepared, FAIL, TIMEOUT)
                self._conclude(self.prepared, Outcome(Action.FAIL, reason=TIMEOUT))
                self.prepared = None
        elif self.prepared is None and self.remaining > 0:
            self.prepared = self._ask()

    def _ask(self) -> Active:
        self.remaining -= 1
        return self.trials.ask()

    # -- one finished chunk: wait, decide, apply -------------------------------------------------
    def _handle(self, ref: Hashable, active: Active) -> None:
        """One chunk came back, or its actor died: `decide` what follows, and do it."""
        try:
            result: ChunkResult | ActorLost = self.pool.get(ref)
        except ActorLost as lost:  # the actor died, or its node with it
            result = self._bury(active, lost)
        self.watch.back(ref, result.step if isinstance(result, ChunkResult) else None,
                        time.time())
        if isinstance(result, ChunkResult) and out_of_space(result.error):
            return self._disk_full(active, result.error)
        if isinstance(result, ChunkResult) and result.error is None:  # what health rules read
            objective = None if self.spec.multi else self.spec.objective.metric
            active.health = active.health.add(point(result.step, result.metrics, result.train,
                                                     objective, self.references))
        outcome = decide(result, self._standing(active), self.spec, time.time())
        if outcome.ask_pruner:  # before the next chunk (never with several objectives)
            self._report(active, outcome.report)
            outcome = outcome.pruned(active.trial.should_prune())
        if isinstance(result, ActorLost):
            return self._after_loss(active, outcome, result.what)
        self._apply(active, outcome)

    def _disk_full(self, active: Active, error: str) -> None:
        """A write failed for space (its checkpoint, most often): the trial stays RUNNING at its
        last complete checkpoint and the sweep stops as on a signal; any other trial would fail
        the same way. `gansweep resume` goes on once there is space."""
        if self.disk_full is None:  # said once the sweep has stopped (orchestrator/cli)
            self.disk_full = f"trial {active.trial.number}: {' '.join(error.split())}"
        self.request_stop(f"no space left ({error})")
        self._apply(active, Outcome(Action.SUSPEND))

    def _standing(self, active: Active) -> Standing:
        return Standing(step=active.step, losses=active.losses, can_prune=self.can_prune,
                        deadline=self.deadline, stop=self.stop_requested, health=active.health,
                        sweep_best=None if self.spec.multi else self.stats.best)

    def _apply(self, active: Active, outcome: Outcome) -> None:
        """On its live actor: the trial's next chunk, or its end."""
        if outcome.step is not None:
            self.stats.steps_trained += max(0, outcome.step - active.step)
            active.step = outcome.step
        if outcome.state is not None:
            return self._end(active, outcome)
        if outcome.action is Action.SUSPEND:  # checkpointed at this step: resumable from here
            ref = self.pool.finish(active.worker, RUNNING, self.stop_requested)
            self.closing[ref] = active
            self.stats.running -= 1
            self.suspended.append(active.trial.number)
            return
        self._next_chunk(active)
        if outcome.report is not None:  # while the actor trains on
            self._report(active, outcome.report)

    def _bury(self, active: Active, lost: ActorLost) -> ActorLost:
        """Its actor died: release what it held; the trial counts one more loss."""
        active.losses += 1
        self.stats.running -= 1
        self.workers = [w for w in self.workers if w is not active.worker]
        self.pool.kill(active.worker)  # an unreachable actor may still hold its GPU
        return lost

    def _after_loss(self, active: Active, outcome: Outcome, what: str) -> None:
        """The trial of a dead actor is suspended, fails, or waits for the next free actor to
        resume from its last checkpoint (same trial, same run); an actor takes the work left."""
        if outcome.action is Action.SUSPEND:
            self._suspend(active)
        elif outcome.action is Action.FAIL:
            # what the actor had not written yet is in its checkpoint: keep it
            self.salvaging[self.pool.salvage(active.spec)] = active
            self._close(active, FAIL, outcome.reason)
            self._conclude(active, outcome)
        else:
            self._requeue(active, what)
        if self.idle and self.waiting:
            self._release(self.idle.pop())
        elif self._work_left():
            ready, replacement = self.pool.new_actor()  # placed where resources allow, maybe never
            self.workers.append(replacement)
            self.starting[ready] = replacement

    def _requeue(self, active: Active, what: str) -> None:
        attempt = active.spec.attempt + 1
        active.trial.set_user_attr(ATTEMPT_ATTR, attempt)
        active.spec = dataclasses.replace(active.spec, attempt=attempt)
        active.worker, active.waiting_since = None, time.time()
        self.stats.resumed += 1
        self.notice(f"trial {active.trial.number}: its actor was lost ({what}); resuming "
                    f"from its last checkpoint (step {active.step}, attempt {attempt})")
        self.waiting.append(active)

    def _started(self, ref: Hashable, actor) -> None:
        """An actor is up (or could not start). The first one up starts `budget.time`: placing
        actors, importing torch and an autoscaler adding nodes are not part of the budget."""
        try:
            self.pool.get(ref)
        except ActorLost as lost:
            self.workers = [w for w in self.workers if w is not actor]
            self.notice(f"an actor could not start: {lost.what}: {lost}")
            return
        if self.deadline is None and self.spec.budget.time_s:  # not spent on start-up
            self.deadline = time.time() + self.spec.budget.time_s
        self._release(actor)

    def _give_up_waiting(self) -> None:
        """Nothing in flight and no actor starts: trials waiting to resume cannot run."""
        if self.in_flight or not self.waiting:
            return
        oldest = min(a.waiting_since for a in self.waiting)
        if time.time() - oldest < START_TIMEOUT_S:
            return
        for actor in self.starting.values():
            self.pool.kill(actor)
            self.workers = [w for w in self.workers if w is not actor]
        self.starting.clear()
        while self.waiting:
            active = self.waiting.popleft()
            reason = f"no actor could start within {START_TIMEOUT_S:.0f}s to resume it"
            self._close(active, FAIL, reason)
            self._conclude(active, Outcome(Action.FAIL, reason=reason))

    def _suspend(self, active: Active) -> None:
        """Leave a trial RUNNING in Optuna, its run KILLED: `gansweep resume` continues it."""
        self._close(active, RUNNING, self.stop_requested or "")
        self.suspended.append(active.trial.number)

    def _close(self, active: Active, state: str, reason: str) -> None:
        """End the trial's run from the driver: no actor holds the trial (it died, or the trial
        never started)."""
        self.tracker.end_trial_run(active.spec.run_id, state, reason, active.spec.run_params)

    def _next_chunk(self, active: Active) -> None:
        steps = self.spec.budget.eval_every
        ref = self.pool.train(active.worker, steps)
        self.in_flight[ref] = active
        self.watch.start(ref, active.trial.number, active.step, steps, time.time())

    def _stop_overdue(self) -> None:
        """Chunks out past their limit (watchdog.py): each actor is killed, as a lost one is;
        its trial fails with the reason (its last checkpoint's metrics salvaged), or stays
        RUNNING, resumable, when the sweep is stopping; the work left goes to a fresh actor."""
        for item in self.watch.overdue(time.time(), self.deadline, self.stop_since):
            active = self.in_flight.pop(item.ref)
            what = item.reason if item.kind == HUNG else (
                "still training after budget.time" if item.kind != STOPPING else item.reason)
            self.notice(f"trial {active.trial.number}: {what}; its actor is stopped")
            self.stats.running -= 1
            self.workers = [w for w in self.workers if w is not active.worker]
            self.pool.kill(active.worker)
            outcome = Outcome(Action.SUSPEND) if item.kind == STOPPING else \
                Outcome(Action.FAIL, reason=item.reason)
            self._after_loss(active, outcome, item.reason)

    def _end(self, active: Active, outcome: Outcome) -> None:
        """Free the actor first (it closes the run and starts the next trial while the driver
        writes to Optuna), then report the trial's last intermediate value and its end."""
        self.closing[self.pool.finish(active.worker, outcome.state, outcome.reason)] = active
        self._release(active.worker)
        if outcome.report is not None:
            self._report(active, outcome.report)
        self.stats.running -= 1
        self._conclude(active, outcome)

    def _report(self, active: Active, report: tuple[float, int]) -> None:
        value, step = report
        active.trial.report(value, step)

    def _conclude(self, active: Active, outcome: Outcome) -> None:
        """The trial ended: tell Optuna, then count it."""
        tell(self.study, active.trial, outcome)  # the one exit to Optuna
        stats = self.stats
        if outcome.state == COMPLETE:
            stats.done += 1
            self._record_best(outcome.value, active.trial.number, stats)
        elif outcome.state == PRUNED:
            stats.pruned += 1
            stats.pruned_why[reason_kind(outcome.reason)] += 1
        else:
            stats.failed += 1
        self.on_update(stats)

    def _record_best(self, value, number: int, stats: SweepStats, log: bool = True):
        """Best so far, for a single objective; several objectives have a front, not a best.
        The parent run gets it when it improves, else at most every PROGRESS_EVERY_S seconds
        (and at the end), not one write per trial."""
        improved = not self.spec.multi and better(value, stats.best, self.maximize)
        if improved:
            stats.best, stats.best_trial = value, number
        if log and (improved or time.time() - self.progress_logged_at >= PROGRESS_EVERY_S):
            self._log_progress()

    def _log_progress(self) -> None:
        stats = self.stats
        best = {} if self.spec.multi or stats.best is None else {SWEEP_BEST_VALUE: stats.best}
        self.tracker.log_progress({**best, SWEEP_COMPLETED: stats.done}, step=stats.done)
        self.page.request()  # the sweep page: a request, written off this thread
        self.progress_logged_at = time.time()

    def _initial_stats(self) -> SweepStats:
        """Counts carried over from earlier launches of the same sweep."""
        stats = SweepStats(budget=self.spec.budget.trials)
        for t in self.study.get_trials(deepcopy=False):
            if t.state == TrialState.COMPLETE:
                stats.done += 1
                self._record_best(t.values[0], t.number, stats, log=False)
            if t.state == TrialState.PRUNED:
                stats.pruned += 1
                stats.pruned_why[reason_kind(t.user_attrs.get(PRUNED_REASON_ATTR))] += 1
            stats.failed += t.state == TrialState.FAIL
        return stats
