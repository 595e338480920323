"""A fake of the scheduler's actor pool (orchestrator/driver/context.py `Actors`) and of its
tracker, for testing the loop's decisions in milliseconds without Ray or MLflow: pure logic,
as Ray Tune tests its controller with a fake resource manager. The real pool is
orchestrator/cluster/pool.py, tested with a real Ray in the other tests.

Time is virtual: a chunk takes `script.seconds(spec)` on its actor (math.inf: it never comes
back), and `wait` hands back the ref that finishes first (ties: the earlier call), or None once
`timeout` virtual seconds passed without one. What a chunk returns is the script's:
`script.chunk(spec, step)` -> metrics, or DIE (its actor dies), or an error string. A trial's
step survives its actor, as a checkpoint would.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from orchestrator.boundary import DIVERGED, ActorLost, ChunkResult, TrialSpec

DIE = "die"


@dataclass(eq=False)
class FakeActor:
    name: str
    spec: TrialSpec | None = None
    step: int = 0
    free_at: float = 0.0  # when its last call is done
    dead: bool = False


@dataclass(frozen=True)
class Ref:
    n: int


@dataclass
class Script:
    """What trials do: each trial's loss (by number, default 1.0 + number), chunk length in
    virtual seconds, and the chunks at which its actor dies (trial number -> steps); `hangs_at`:
    the step from which a trial's chunks never come back (trial number -> step)."""

    losses: dict[int, float] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)
    dies_at: dict[int, list[int]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    hangs_at: dict[int, int] = field(default_factory=dict)
    diverges_at: dict[int, int] = field(default_factory=dict)  # once, at that step (no checkpoint)
    unplaceable: int = 0  # actors made up front that never start

    def chunk(self, spec: TrialSpec, step: int) -> dict[str, float] | str:
        if step in self.dies_at.get(spec.number, []):
            self.dies_at[spec.number].remove(step)
            return DIE
        if spec.number in self.errors:
            return self.errors[spec.number]
        return {"eval/loss": self.losses.get(spec.number, 1.0 + spec.number)}


class FakePool:
    def __init__(self, size: int, script: Script | None = None):
        self.size, self.script = size, script or Script()
        self.now = 0.0
        self.calls: list[tuple[str, str, Any]] = []  # (call, actor, what), in order
        self.salvaged: list[int] = []
        self.chunks: list[tuple[int, int]] = []  # (trial, the step its chunk trains to), in order
        self.copied: list[tuple[int, int, int]] = []  # PBT exploits: (recipient, donor, step)
        self.checkpoints: dict[int, int] = {}  # trial number -> step of its last chunk
        self._ids = itertools.count()
        self._done: dict[Ref, tuple[float, Any]] = {}  # ref -> (finished at, result or error)
        self._made = [self.new_actor() for _ in range(size)]
        for ref, _ in self._made[size - self.script.unplaceable:]:
            self._done[ref] = (0.0, ActorLost("ActorUnschedulableError", "never placed"))

    def _ref(self, at: float, result: Any) -> Ref:
        ref = Ref(next(self._ids))
        self._done[ref] = (at, result)
        return ref

    # -- Actors ----------------------------------------------------------------------------------
    def new_actor(self) -> tuple[Ref, FakeActor]:
        actor = FakeActor(f"actor-{next(self._ids)}")
        return self._ref(self.now, True), actor

    def take(self, n: int) -> dict[Ref, FakeActor]:
        made, self._made = self._made, []
        for _, actor in made[n:]:
            self.kill(actor)
        return dict(made[:n])

    def start(self, actor: FakeActor, spec: TrialSpec) -> None:
        self.calls.append(("start", actor.name, spec.number))
        actor.spec = spec
        resumes = spec.attempt > 1 or spec.resume
        actor.step = self.checkpoints.get(spec.number, 0) if resumes else 0

    def train(self, actor: FakeActor, steps: int) -> Ref:
        spec = actor.spec
        self.calls.append(("train", actor.name, spec.number))
        begin = max(self.now, actor.free_at)
        hangs = actor.step >= self.script.hangs_at.get(spec.number, math.inf)
        if hangs:  # never back: no step, no checkpoint
            actor.free_at = math.inf
            return self._ref(math.inf, None)
        actor.free_at = begin + self.script.seconds.get(spec.number, 1.0)
        step = min(actor.step + steps, spec.total_steps)
        self.chunks.append((spec.number, step))
        if self.script.diverges_at.get(spec.number) == step:
            del self.script.diverges_at[spec.number]
            return self._ref(actor.free_at, ChunkResult(spec.number, step, {}, error=DIVERGED))
        found = self.script.chunk(spec, step)
        if found == DIE:
            actor.dead = True
            return self._ref(actor.free_at, ActorLost("ActorDiedError", "the actor died"))
        actor.step = step
        self.checkpoints[spec.number] = step
        if isinstance(found, str):
            return self._ref(actor.free_at, ChunkResult(spec.number, step, {}, error=found))
        return self._ref(actor.free_at, ChunkResult(spec.number, step, found))

    def finish(self, actor: FakeActor, state: str, reason: str) -> Ref:
        self.calls.append(("finish", actor.name, (actor.spec.number, state)))
        return self._ref(actor.free_at, None)

    def flush(self, actor: FakeActor) -> Ref:
        return self._ref(actor.free_at, None)

    def salvage(self, spec: TrialSpec) -> Ref:
        self.salvaged.append(spec.number)
        return self._ref(self.now, None)

    def copy_state(self, recipient: TrialSpec, donor: int, step: int) -> Ref:
        self.copied.append((recipient.number, donor, step))
        self.checkpoints[recipient.number] = step
        return self._ref(self.now, None)

    def retire(self, actor: FakeActor) -> None:
        self.calls.append(("retire", actor.name, None))

    def kill(self, actor: FakeActor) -> None:
        self.calls.append(("kill", actor.name, None))

    def wait(self, refs: list[Ref], timeout: float) -> Ref | None:
        if not refs:
            return None
        ref = min(refs, key=lambda r: (self._done[r][0], r.n))
        if self._done[ref][0] > self.now + timeout:  # nothing back in time (a hung chunk)
            self.now += timeout
            return None
        self.now = max(self.now, self._done[ref][0])
        return ref

    def get(self, ref: Ref) -> Any:
        result = self._done.pop(ref)[1]
        if isinstance(result, ActorLost):
            raise result
        return result

    # -- what happened ---------------------------------------------------------------------------
    def trained(self) -> list[tuple[str, int]]:
        """(actor, trial) of every chunk, in the order they were asked."""
        return [(actor, n) for call, actor, n in self.calls if call == "train"]

    def finished(self) -> dict[int, str]:
        """Trial number -> the state its actor closed its run with (the last one)."""
        return {what[0]: what[1] for call, _, what in self.calls if call == "finish"}


class FakeTracker:
    """The driver's MLflow writes, recorded: runs made, reopened and closed from the driver."""

    role = "trial"

    def __init__(self):
        self.trial_tags: dict[str, str] = {}
        self.made: list[int] = []
        self.closed: dict[str, tuple[str, str]] = {}  # run id -> (state, reason)
        self.progress: list[dict[str, float]] = []
        self.left_open: set[str] = set()  # runs still RUNNING in MLflow
        self.trial_metrics: list[tuple[str, dict[str, float], int]] = []  # the driver's writes

    def open_trial_runs(self) -> set[str]:
        return self.left_open - set(self.closed)

    def create_trial_run(self, number: int, tags: dict[str, str] | None = None) -> str:
        self.made.append(number)
        return f"run-{number}"

    def resume_trial_run(self, number: int, run_id: str | None,
                         tags: dict[str, str] | None = None) -> str:
        return run_id or self.create_trial_run(number, tags)

    def end_trial_run(self, run_id: str, state: str, reason: str = "",
                      params: dict | None = None) -> None:
        self.closed[run_id] = (state, reason)

    def log_progress(self, metrics: dict[str, float], step: int) -> None:
        self.progress.append(dict(metrics))

    def log_trial_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        self.trial_metrics.append((run_id, dict(metrics), step))
