"""The driver's hard stop for chunks that do not come back: pure bookkeeping, no Ray (the
scheduler kills the actors it names).

A trainer's `train_for` may never return (a deadlocked collective, a stuck data loader, an
`eval_every` far too large): its actor would hold a GPU forever. Every chunk sent gets a limit:

  - `budget.chunk_timeout` when the spec sets one;
  - else CHUNK_MULTIPLE x the trial's slowest seconds per step so far x the chunk's steps, at
    least CHUNK_FLOOR_S. A trial with no chunk back yet borrows the sweep's slowest seconds per
    step (x NEW_TRIAL_FACTOR: another configuration may be slower); before any chunk of the sweep
    came back, FIRST_CHUNK_S (imports, data, CUDA start-up and compilation all land there).

Whatever the limit, a chunk still out BUDGET_GRACE_S after `budget.time` ends, and one still out
STOP_GRACE_S after a stop was asked (SIGINT / SIGTERM once), is stopped too: the sweep ends on
time. What the scheduler does with each (`Overdue.kind`):

  kind       the trial                                         reason
  HUNG       FAIL, its last checkpoint's metrics salvaged      "no progress for 612 s at step 1200"
  TIMEOUT    FAIL (as a chunk back after budget.time)          "timeout"
  STOPPING   left RUNNING: `gansweep resume` continues it from its last checkpoint
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

CHUNK_FLOOR_S = 300.0  # no chunk is stopped sooner by the automatic limit
CHUNK_MULTIPLE = 10.0  # x the trial's slowest observed seconds per step
NEW_TRIAL_FACTOR = 2.0  # a trial's first chunk: the sweep's slowest pace, this much slower
FIRST_CHUNK_S = 1800.0  # no chunk of the sweep back yet: nothing to measure against
BUDGET_GRACE_S = 5.0  # past budget.time, chunks in flight are stopped this much later
STOP_GRACE_S = 20.0  # after a stop was asked, chunks in flight get this long to checkpoint

HUNG, TIMEOUT, STOPPING = "hung", "timeout", "stopping"


@dataclass(frozen=True)
class Sent:
    trial: int
    step: int  # the trial's step when the chunk was sent
    steps: int  # steps asked
    at: float


@dataclass(frozen=True)
class Overdue:
    ref: Hashable
    kind: str  # HUNG, TIMEOUT or STOPPING
    reason: str


class Watchdog:
    def __init__(self, chunk_timeout_s: float | None = None):
        self.chunk_timeout_s = chunk_timeout_s
        self.sent: dict[Hashable, Sent] = {}
        self.pace: dict[int, float] = {}  # trial number -> its slowest seconds per step
        self.sweep_pace: float | None = None  # the slowest of any trial

    def start(self, ref: Hashable, trial: int, step: int, steps: int, now: float) -> None:
        self.sent[ref] = Sent(trial, step, steps, now)

    def back(self, ref: Hashable, step: int | None, now: float) -> None:
        """The chunk came back at `step` (None: it failed or its actor died: no pace learnt)."""
        sent = self.sent.pop(ref, None)
        if sent is None or step is None or step <= sent.step:
            return
        pace = (now - sent.at) / (step - sent.step)
        self.pace[sent.trial] = max(pace, self.pace.get(sent.trial, 0.0))
        self.sweep_pace = max(pace, self.sweep_pace or 0.0)

    def limit(self, sent: Sent) -> float:
        """Seconds the chunk may take before its actor is stopped as hung."""
        if self.chunk_timeout_s is not None:
            return self.chunk_timeout_s
        pace = self.pace.get(sent.trial)
        if pace is None and self.sweep_pace is not None:
            pace = self.sweep_pace * NEW_TRIAL_FACTOR
        if pace is None:
            return FIRST_CHUNK_S
        return max(CHUNK_FLOOR_S, CHUNK_MULTIPLE * pace * sent.steps)

    def overdue(self, now: float, deadline: float | None = None,
                stop_since: float | None = None) -> list[Overdue]:
        """The chunks to stop now, each forgotten here; the oldest first."""
        found = []
        for ref, sent in sorted(self.sent.items(), key=lambda item: item[1].at):
            limit = self.limit(sent)
            if stop_since is not None and now >= stop_since + STOP_GRACE_S:
                found.append(Overdue(ref, STOPPING, f"no checkpoint {STOP_GRACE_S:.0f}s after "
                                                    f"the stop: resumes from step {sent.step}"))
            elif deadline is not None and now >= deadline + BUDGET_GRACE_S:
                found.append(Overdue(ref, TIMEOUT, "timeout"))
            elif now - sent.at >= limit:
                found.append(Overdue(ref, HUNG, f"no progress for {limit:.0f} s at step "
                                                f"{sent.step}"))
        for item in found:
            del self.sent[item.ref]
        return found
