"""The sweep loop: Optuna ask/tell on the driver, chunks of training on a pool of Ray actors.

Results are handled in completion order (`ray.wait` over every in-flight chunk), with at most one
chunk in flight per actor. A trial stays on its actor while it runs, since its state lives there.
The next trial is asked while the actors are busy, so an actor that frees up gets new work at
once instead of waiting on storage writes. Each trial's MLflow run is made by its actor (off the
driver's path; found again by its tags if the driver never learnt its id), and recorded on the
Optuna trial when its first chunk returns.

Nothing is lost: a trial whose actor dies (process killed, node gone) waits for the next free
actor and resumes from its last checkpoint in the same Optuna trial and MLflow run; trials a dead
driver left RUNNING are resumed the same way. `request_stop` (Ctrl-C) lets the chunks in flight
finish and checkpoint, then leaves their trials RUNNING in Optuna, to be resumed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
import ray
from optuna.trial import TrialState

from orchestrator.space import suggest_all
from orchestrator.spec import SpecError, SweepSpec
from orchestrator.study import (
    USER_ATTR_ATTEMPT,
    USER_ATTR_DIVERGED_STEP,
    USER_ATTR_REASON,
    USER_ATTR_RUN,
    USER_ATTR_SEED,
    trial_seed,
    trials_used,
)
from orchestrator.tracking import SweepTracker
from orchestrator.worker import DIVERGED, ChunkResult, TrialSpec, TrialWorker, salvage_metrics
from trainers.params import describe

WAIT_S = 0.5  # the loop wakes at least this often, to notice Ctrl-C
START_TIMEOUT_S = 300.0  # a trial waiting to resume gives up when no actor starts for this long
PROGRESS_EVERY_S = 5.0  # the parent run's sweep/completed, unless the best improved


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
    resumed: int = 0  # trials continued from a checkpoint after a lost actor or driver
    started_at: float = field(default_factory=time.time)


@dataclass
class Active:
    trial: optuna.Trial
    spec: TrialSpec
    worker: Any = None
    step: int = 0
    losses: int = 0  # actors lost under this trial; past max_retries it FAILs
    waiting_since: float = 0.0  # when it was queued to resume


def pool_plan(spec: SweepSpec, nodes: list[dict[str, float]]) -> tuple[int, dict[str, float]]:
    """How many actors the cluster's `nodes` (each node's resources) hold, and each actor's Ray
    resource request.

    Planned device by device, as Ray places actors: a share below 1 must fit on one GPU, so 0.3
    GPU per trial packs 3 actors per GPU and 8 GPUs hold 24, not the 26 that 8 / 0.3 suggests;
    CPUs are counted per node. With no GPU anywhere, trials run on CPU slots. With
    `resources.actors`, the pool has that many actors whatever fits now: on an autoscaling
    cluster the pending ones make the autoscaler add nodes."""
    res = spec.resources
    if res.actors:
        return res.actors, {"num_cpus": res.cpus_per_trial, "num_gpus": res.gpus_per_trial}
    on_gpu = res.gpus_per_trial > 0 and any(node.get("GPU", 0) > 0 for node in nodes)
    size = 0
    for node in nodes:
        fits = _fits(node.get("CPU", 0.0), res.cpus_per_trial)
        if on_gpu:
            fits = min(fits, _gpu_fits(node.get("GPU", 0.0), res.gpus_per_trial))
        size += fits
    return size, {"num_cpus": res.cpus_per_trial, "num_gpus": res.gpus_per_trial if on_gpu else 0}


def _gpu_fits(gpus: float, share: float) -> int:
    """Actors of `share` GPU on a node with `gpus` devices: a fraction never spans two."""
    return int(gpus + 1e-9) * _fits(1.0, share) if share < 1 else _fits(gpus, share)


def _fits(available: float, share: float) -> int:
    """How many `share`s fit in `available` (a share of 0 is never the limit)."""
    return 1 << 30 if share <= 0 else int(available / share + 1e-9)


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
        self.run_template = tracker.run_template()  # actors create their trials' runs
        self.progress_logged_at = 0.0
        self.stats = self._initial_stats()
        self.waiting: deque[Active] = deque(self._orphans())  # to resume on the next free actor
        work = self.remaining + len(self.waiting)
        self.workers = [self._new_worker() for _ in range(max(0, min(n_workers, work)))]
        self.starting: dict[ray.ObjectRef, Any] = {}  # replacement actor's ready() -> actor
        self.idle: list[Any] = []  # actors with nothing to do (budget asked out, or stopping)
        self.in_flight: dict[ray.ObjectRef, Active] = {}
        self.closing: dict[ray.ObjectRef, Active] = {}  # finish() calls, checked at the end
        self.prepared: Active | None = None
        self.can_prune = not isinstance(study.pruner, optuna.pruners.NopPruner)
        self.stop_requested: str | None = None  # why (e.g. SIGINT), once asked to stop
        self.suspended: list[int] = []  # trials left RUNNING to resume, when stopped early

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> SweepStats:
        self.deadline: float | None = None  # budget.time counts from the first actor ready
        self.on_update(self.stats)
        for worker in self.workers:  # each takes a trial once placed and constructed
            self.starting[worker.ready.remote()] = worker
        while True:
            self._prepare_next()
            if not self.in_flight and not (self.starting and self._work_left()):
                break
            ready, _ = ray.wait(list(self.in_flight) + list(self.starting), num_returns=1,
                                timeout=WAIT_S)
            if not ready:
                self._give_up_waiting()
                continue
            ref = ready[0]
            if ref in self.starting:
                self._started(ref, self.starting.pop(ref))
            else:
                self._handle(ref, self.in_flight.pop(ref))
        for actor in self.starting.values():  # never placed, and no work left for them
            ray.kill(actor)
        for active in list(self.waiting) + ([self.prepared] if self.prepared else []):
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
        """Start no more chunks; those in flight finish and checkpoint, then `run` returns."""
        self.stop_requested = why

    def _drain_closing(self) -> None:
        """Wait for every run to be closed by its actor; close from here what an actor could not
        (it died after its trial ended). Late write failures are reported, not raised: every
        trial has already been told to Optuna."""
        for ref, active in self.closing.items():
            try:
                ray.get(ref)
            except ray.exceptions.RayError as exc:
                self.tracker.end_trial_run(self._run_of(active), "FAIL",
                                           f"actor lost while closing: {exc}")
        for worker in self.workers:
            try:
                ray.get(worker.flush.remote())
            except ray.exceptions.RayError as exc:
                self.notice(f"some MLflow writes of an actor were lost: {exc}")

    def abort(self, why: str) -> None:
        """The driver is stopping at once: no run is left RUNNING in MLflow, and every trial that
        had not ended stays RUNNING in Optuna, to be resumed from its last checkpoint."""
        actives = list(self.in_flight.values()) + list(self.waiting)
        for active in actives + ([self.prepared] if self.prepared else []):
            # an actor may be making the run right now: find it, never make a second one
            run_id = active.spec.run_id or self.tracker.find_trial_run(active.trial.number)
            if run_id is not None:
                self.tracker.end_trial_run(run_id, "RUNNING", why)
            self.suspended.append(active.trial.number)
        self.in_flight.clear()
        self.waiting.clear()
        self.prepared = None

    def _work_left(self) -> bool:
        """Trials an actor could take now: waiting to resume, or new ones from the budget."""
        if self.stop_requested:
            return False
        return bool(self.waiting) or (bool(self.prepared or self.remaining > 0)
                                      and not self._out_of_time())

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

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
        worker.start.remote(active.spec)  # actor calls run in order: start, then train
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
                self.tracker.end_trial_run(self._run_of(self.prepared), "FAIL", "timeout")
                self._tell(self.prepared, TrialState.FAIL, reason="timeout")
                self.prepared = None
        elif self.prepared is None and self.remaining > 0:
            self.prepared = self._ask()

    def _ask(self) -> Active:
        self.remaining -= 1
        trial = self.study.ask()
        params = self._suggest(trial)
        seed = trial_seed(self.spec.sampler.seed, trial.number)
        trial.set_user_attr(USER_ATTR_SEED, seed)  # its run: made by its actor, recorded later
        return Active(trial, self._trial_spec(trial.number, params, seed, None))

    def _suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's params; a sampler that cannot draw them fails the trial (none is left
        RUNNING without params) and stops the sweep in one line."""
        try:
            return {**self.spec.fixed, **suggest_all(self.spec.space, trial)}
        except Exception as exc:
            reason = f"the sampler could not suggest its params: {describe(exc)}"
            trial.set_user_attr(USER_ATTR_REASON, reason)
            self.study.tell(trial, state=TrialState.FAIL)
            raise SpecError(f"{self.spec.path or self.spec.name}: space: {reason}") from None

    def _trial_spec(self, number: int, params: dict, seed: int, run_id: str | None,
                    attempt: int = 1) -> TrialSpec:
        budget = self.spec.budget
        return TrialSpec(
            sweep=self.spec.name, number=number, trainer=self.spec.trainer_target, params=params,
            seed=seed, run_id=run_id, checkpoint_root=self.checkpoint_root,
            total_steps=budget.steps, eval_every=budget.eval_every, log_every=budget.log_every,
            attempt=attempt, keep_checkpoints=self.spec.storage.keep_checkpoints,
            run_template=self.run_template)

    def _orphans(self) -> list[Active]:
        """Trials an earlier driver left RUNNING (it was killed or interrupted): each resumes
        from its checkpoint in its own trial and run."""
        found = []
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            attrs = frozen.user_attrs
            trial = optuna.Trial(self.study, frozen._trial_id)
            seed = attrs.get(USER_ATTR_SEED, trial_seed(self.spec.sampler.seed, frozen.number))
            params = ({**self.spec.fixed, **frozen.params} if frozen.params
                      else self._suggest(trial))  # asked, then its driver died
            if USER_ATTR_SEED not in attrs:  # the driver died between asking and recording it
                trial.set_user_attr(USER_ATTR_SEED, seed)
            run_id = attrs.get(USER_ATTR_RUN)  # None: its next actor finds or makes the run
            if run_id is not None:
                self.tracker.reopen_trial_run(run_id)
            attempt = int(attrs.get(USER_ATTR_ATTEMPT, 1)) + 1
            trial.set_user_attr(USER_ATTR_ATTEMPT, attempt)
            step = max(frozen.intermediate_values, default=0)
            spec = self._trial_spec(frozen.number, params, seed, run_id, attempt)
            found.append(Active(trial, spec, step=step, waiting_since=time.time()))
            self.stats.resumed += 1
            self.notice(f"trial {frozen.number}: left running by an earlier driver; resuming "
                        f"from its last checkpoint (reported step {step}, attempt {attempt})")
        return found

    # -- one finished chunk ----------------------------------------------------------------------
    def _handle(self, ref: ray.ObjectRef, active: Active) -> None:
        """Act on one chunk's result: next chunk, or end the trial and free its actor."""
        try:
            result: ChunkResult = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the actor died, or its node with it
            return self._lost(active, exc)
        self._record_run(active, result.run_id)
        if result.error == DIVERGED:
            active.trial.set_user_attr(USER_ATTR_DIVERGED_STEP, result.step)
            return self._end(active, TrialState.FAIL, reason=DIVERGED)
        if result.error is not None:
            return self._end(active, TrialState.FAIL, reason=result.error)
        self.stats.steps_trained += max(0, result.step - active.step)
        active.step = result.step
        prune_metric = self.spec.pruner.metric  # None: the pruner's is the objective
        needed = [("objective", o.metric) for o in self.spec.objectives] + (
            [("pruner.metric", prune_metric)] if prune_metric else [])
        for role, metric in needed:
            v = result.metrics.get(metric)
            if v is None or not math.isfinite(v):
                return self._end(active, TrialState.FAIL, reason=f"{role} {metric} is {v} at "
                                 f"step {result.step}")
        values = [result.metrics[o.metric] for o in self.spec.objectives]
        value = values if self.spec.multi else values[0]
        # the intermediate value: the pruner's metric where it has its own
        reported = result.metrics[prune_metric] if prune_metric else value
        if result.step >= self.spec.budget.steps:
            return self._end(active, TrialState.COMPLETE, value=value, step=result.step,
                             reported=reported)
        if self._out_of_time():  # its chunk is done and checkpointed; no more chunks
            return self._end(active, TrialState.FAIL, value=value, step=result.step,
                             reported=reported, reason="timeout")
        if self.can_prune:  # decide before the next chunk (never with several objectives)
            active.trial.report(reported, result.step)
            if active.trial.should_prune():
                return self._end(active, TrialState.PRUNED)
        if self.stop_requested:  # checkpointed at this step: resumable from here
            self.closing[active.worker.finish.remote("RUNNING", self.stop_requested)] = active
            self.stats.running -= 1
            self.suspended.append(active.trial.number)
            return
        self._next_chunk(active)
        if not self.can_prune and not self.spec.multi:  # report while the actor trains on
            active.trial.report(reported, result.step)

    def _lost(self, active: Active, exc: Exception) -> None:
        """Its actor died: the trial waits for the next free actor and resumes from its last
        checkpoint (same trial, same run), unless it has lost max_retries actors already."""
        active.losses += 1
        self.stats.running -= 1
        self.workers = [w for w in self.workers if w is not active.worker]
        ray.kill(active.worker)  # an unreachable actor may still hold its GPU: release it
        retries, what = self.spec.max_retries, type(exc).__name__
        if self.stop_requested:
            self._suspend(active)
        elif active.losses > retries:
            reason = f"actor lost: {what} ({active.losses} times; max_retries is {retries})"
            run_id = self._run_of(active)
            try:  # what the actor had not written yet is in its checkpoint: keep it
                salvage_metrics(active.spec, self.tracker.client)
            except Exception as err:
                self.notice(f"trial {active.trial.number}: unwritten metrics lost: {err}")
            self.tracker.end_trial_run(run_id, "FAIL", reason)
            self._tell(active, TrialState.FAIL, reason=reason)
        else:
            attempt = active.spec.attempt + 1
            active.trial.set_user_attr(USER_ATTR_ATTEMPT, attempt)
            active.spec = dataclasses.replace(active.spec, attempt=attempt)
            active.worker, active.waiting_since = None, time.time()
            self.stats.resumed += 1
            self.notice(f"trial {active.trial.number}: its actor was lost ({what}); resuming "
                        f"from its last checkpoint (step {active.step}, attempt {attempt})")
            self.waiting.append(active)
        if self.idle and self.waiting:
            self._release(self.idle.pop())
        elif self._work_left():
            replacement = self._new_worker()  # placed where resources allow, maybe never
            self.workers.append(replacement)
            self.starting[replacement.ready.remote()] = replacement

    def _started(self, ref: ray.ObjectRef, actor) -> None:
        """An actor is up (or could not start). The first one up starts `budget.time`: placing
        actors, importing torch and an autoscaler adding nodes are not part of the budget."""
        try:
            ray.get(ref)
        except ray.exceptions.RayError as exc:
            self.workers = [w for w in self.workers if w is not actor]
            self.notice(f"an actor could not start: {type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
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
            ray.kill(actor)
            self.workers = [w for w in self.workers if w is not actor]
        self.starting.clear()
        while self.waiting:
            active = self.waiting.popleft()
            reason = f"no actor could start within {START_TIMEOUT_S:.0f}s to resume it"
            self.tracker.end_trial_run(self._run_of(active), "FAIL", reason)
            self._tell(active, TrialState.FAIL, reason=reason)

    def _suspend(self, active: Active) -> None:
        """Leave a trial RUNNING in Optuna, its run KILLED: `gansweep resume` continues it."""
        self.tracker.end_trial_run(self._run_of(active), "RUNNING", self.stop_requested or "")
        self.suspended.append(active.trial.number)

    def _record_run(self, active: Active, run_id: str | None) -> None:
        """The run its actor made: on the trial (for status, best, promote) and its spec."""
        if active.spec.run_id is None and run_id is not None:
            active.spec = dataclasses.replace(active.spec, run_id=run_id)
            active.trial.set_user_attr(USER_ATTR_RUN, run_id)

    def _run_of(self, active: Active) -> str:
        """The trial's run, for the driver to write to when no actor holds the trial: the one
        an actor made (found by its tags if never recorded), else one made here."""
        if active.spec.run_id is None:  # no chunk came back: its params may not be written
            number = active.trial.number
            self._record_run(active, self.tracker.find_trial_run(number)
                             or self.tracker.create_trial_run(number))
            self.tracker.log_params(active.spec.run_id, active.spec.run_params)
        return active.spec.run_id

    def _next_chunk(self, active: Active) -> None:
        self.in_flight[active.worker.train.remote(self.spec.budget.eval_every)] = active

    def _end(self, active: Active, state: TrialState, value: float | list[float] | None = None,
             reason: str = "", step: int | None = None, reported: float | None = None) -> None:
        """Free the actor first (it closes the run and starts the next trial while the driver
        writes to Optuna), then record the outcome (`reported`: the intermediate value at its
        last `step`)."""
        self.closing[active.worker.finish.remote(state.name, reason)] = active
        self._release(active.worker)
        if step is not None and not self.spec.multi:
            active.trial.report(reported, step)
        self.stats.running -= 1
        self._tell(active, state, value, reason)
        if active.spec.run_id is None:  # its actor could not make the run (MLflow down?)
            try:
                self.tracker.end_trial_run(self._run_of(active), state.name, reason)
            except Exception as exc:
                self.notice(f"trial {active.trial.number}: no MLflow run: {exc}")

    def _tell(self, active: Active, state: TrialState, value: float | list[float] | None = None,
              reason: str = "") -> None:
        if reason:
            active.trial.set_user_attr(USER_ATTR_REASON, reason)
        if state == TrialState.COMPLETE:
            self.study.tell(active.trial, value)
        else:
            self.study.tell(active.trial, state=state)
        stats = self.stats
        if state == TrialState.COMPLETE:
            stats.done += 1
            self._record_best(value, active.trial.number, stats)
        elif state == TrialState.PRUNED:
            stats.pruned += 1
        else:
            stats.failed += 1
        self.on_update(stats)

    def _record_best(self, value, number: int, stats: SweepStats, log: bool = True):
        """Best so far, for a single objective; several objectives have a front, not a best.
        The parent run gets it when it improves, else at most every PROGRESS_EVERY_S seconds
        (and at the end), not one write per trial."""
        minimize = self.spec.objective.direction == "minimize"
        improved = not self.spec.multi and (stats.best is None or (
            value < stats.best if minimize else value > stats.best))
        if improved:
            stats.best, stats.best_trial = value, number
        if log and (improved or time.time() - self.progress_logged_at >= PROGRESS_EVERY_S):
            self._log_progress()

    def _log_progress(self) -> None:
        stats = self.stats
        best = {} if self.spec.multi or stats.best is None else {"sweep/best_value": stats.best}
        self.tracker.log_progress({**best, "sweep/completed": stats.done}, step=stats.done)
        self.progress_logged_at = time.time()

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
