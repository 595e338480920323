"""A sweep's running totals: what the scheduler counts and the progress display shows.

A plain dataclass in a module of its own, so that the display (and anything else that reads the
totals) needs neither Ray nor the scheduler.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SweepStats:
    """What the progress display shows; updated after every event."""

    budget: int
    done: int = 0
    pruned: int = 0
    pruned_why: Counter = field(default_factory=Counter)  # rule (or "pruner") -> trials
    failed: int = 0
    running: int = 0
    best: float | None = None
    best_trial: int | None = None
    steps_trained: int = 0
    resumed: int = 0  # trials continued from a checkpoint after a lost actor or driver
    started_at: float = field(default_factory=time.time)
    exploits: int = 0  # PBT: members that copied a better member's state
    phase: str = "search"  # or "confirm": the sweep's confirm phase (driver/confirm.py)
