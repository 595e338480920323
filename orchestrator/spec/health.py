"""The spec's `health` section: the GAN-health rules that end a failing trial early, with a named
reason, whether or not the sweep has an Optuna pruner (orchestrator/driver/health.py decides).

    health:                      # on by default, with these values; `health: false` turns all off
      collapse: {below: 0.25, evals: 3, warmup: 0.25}
      d_wins: {accuracy: 0.98, evals: 3, warmup: 0.25}
      stagnation: {patience: 4, warmup: 0.5, min_delta: 0.0, pace: 2.0}

Each rule can be tuned field by field or turned off (`stagnation: false`). `warmup` is a fraction
of budget.steps before which the rule never prunes; `evals` and `patience` count evaluations
(one every budget.eval_every steps). The defaults prune only clear failures: a generator whose
samples reach under a quarter of the data's diversity three times in a row without spreading
out, a discriminator that tells real from fake almost perfectly for three evaluations while the
generator's loss climbs, a trial below the sweep's best whose objective has not beaten its own
best for four evaluations, or that would not reach the sweep's best even gaining twice as fast
as it ever has (measured on untuned spaces: benchmarks/README.md, "--space wide").
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass, fields
from typing import Any

from orchestrator.errors import FieldError


@dataclass(frozen=True)
class Collapse:
    """Mode collapse: the samples' diversity (eval/coverage, eval/recall: every one the trial
    reports) under `below` x the data's own value (its floor, 1.0 on mixtures) for `evals`
    evaluations in a row, and not spreading out (no higher at the last than at the first: a
    slow starter that is still gaining diversity is left to train)."""

    below: float = 0.25
    evals: int = 3
    warmup: float = 0.25


@dataclass(frozen=True)
class DWins:
    """The discriminator wins: train/d_real_acc and train/d_fake_acc both >= `accuracy` for
    `evals` evaluations in a row while train/g_loss climbs over them."""

    accuracy: float = 0.98
    evals: int = 3
    warmup: float = 0.25


@dataclass(frozen=True)
class Stagnation:
    """No gain, or too little to matter: the trial's best is worse than the sweep's best
    completed trial (a plateau at the top is never pruned), and either it has not beaten that
    best by more than `min_delta` for `patience` evaluations, or it gains so slowly that even
    at `pace` times the fastest rate its best has ever risen between two evaluations it would
    end its budget short of the sweep's best, and its samples' diversity is not at a new high
    (a slow starter still spreading out is left to train). `pace: 0` turns that test off."""

    patience: int = 4
    warmup: float = 0.5
    min_delta: float = 0.0
    pace: float = 2.0


@dataclass(frozen=True)
class HealthSpec:
    collapse: Collapse | None = Collapse()
    d_wins: DWins | None = DWins()
    stagnation: Stagnation | None = Stagnation()

    @classmethod
    def off(cls) -> HealthSpec:
        return cls(None, None, None)

    @property
    def on(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


RULES = {"collapse": Collapse, "d_wins": DWins, "stagnation": Stagnation}


def parse_health(raw: Any) -> HealthSpec:
    """`health` as the spec gives it: absent or true (the defaults), false (off), or a mapping
    of rule -> false / true / {field: value}."""
    if raw is None or raw is True:
        return HealthSpec()
    if raw is False:
        return HealthSpec.off()
    if not isinstance(raw, dict):
        raise FieldError("health", f"must be true, false or a mapping of rules "
                                   f"({', '.join(RULES)}), got {reprlib.repr(raw)}")
    unknown = sorted(set(map(str, raw)) - set(RULES))
    if unknown:
        raise FieldError(f"health.{unknown[0]}", f"unknown health rule (known: "
                                                 f"{', '.join(RULES)})")
    return HealthSpec(**{name: _rule(name, cls, raw.get(name, True))
                         for name, cls in RULES.items()})


def _rule(name: str, cls: type, raw: Any):
    if raw is False:
        return None
    if raw is True or raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise FieldError(f"health.{name}", f"must be true, false or a mapping, got "
                                           f"{reprlib.repr(raw)}")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(map(str, raw)) - set(known))
    if unknown:
        raise FieldError(f"health.{name}.{unknown[0]}", f"unknown field (known: "
                                                        f"{', '.join(known)})")
    values = {}
    for f in fields(cls):
        label, value = f"health.{name}.{f.name}", raw.get(f.name, f.default)
        if f.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise FieldError(label, f"must be an integer, got {reprlib.repr(value)}")
            if value < 1:
                raise FieldError(label, f"must be >= 1 (evaluations), got {value}")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise FieldError(label, f"must be a finite number, got {reprlib.repr(value)}")
            low, high = _RANGES[f.name]
            if not low <= value <= high:
                raise FieldError(label, f"must be in [{low}, {high}], got {value}")
            value = float(value)
        values[f.name] = value
    return cls(**values)


# the number fields' ranges: fractions of the data's value, of accuracy, of budget.steps
_RANGES = {"below": (0.0, 1.0), "accuracy": (0.5, 1.0), "warmup": (0.0, 1.0),
           "min_delta": (0.0, math.inf), "pace": (0.0, math.inf)}
