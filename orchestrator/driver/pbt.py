"""Population-based training's decisions: who copies whom at a round, and what it changes.
Pure (no Ray, no Optuna, no I/O), tested as a table in tests/orchestrator/driver/test_pbt.py;
orchestrator/driver/population.py applies them.

At each round (every `scheduler.interval` steps, once every member reached it) members are
ranked by the objective at that step. As Ray Tune's PopulationBasedTraining: each member of the
bottom `quantile` (ceil(N * quantile), at most N // 2) copies the state of a member drawn from
the top quantile (exploit), then changes its mutable parameters (explore): each is drawn anew
from the space with `resample_probability`, else the donor's value is multiplied by one of the
`perturb` factors (an int rounds, and moves by at least 1; a categorical moves to a neighbouring
choice), clipped to the parameter's range. A member whose score ties the worst of the top
quantile is not worse than its donor would be: it is left alone. A member without a score (it
diverged) always copies, even outside the bottom quantile, so that no member is left dead.

Every draw comes from a generator seeded by the sweep's seed and the round's step, so a driver
that dies mid-round makes the same decisions when it is resumed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from orchestrator.spec.space import Param


@dataclass(frozen=True)
class Member:
    """One member at a round: its trial number, its objective at the round's step (None: it
    diverged, or has no score), and the params it trained with."""

    number: int
    value: float | None
    params: dict[str, Any]


@dataclass(frozen=True)
class Exploit:
    """`recipient` continues from `donor`'s state at the round's step, with `params`; `how`
    says what explore did to each mutable parameter ("x1.2", "resampled", "kept")."""

    recipient: int
    donor: int
    params: dict[str, Any]
    how: dict[str, str] = field(default_factory=dict)


def round_rng(seed: int | None, step: int) -> random.Random:
    """The round's generator: the same seed and step give the same decisions."""
    return random.Random(f"gansweep-pbt:{seed}:{step}")


def quantile_size(n: int, quantile: float) -> int:
    """Members in the bottom (and in the top) quantile: ceil(n * quantile), at most n // 2."""
    return min(n // 2, max(1, math.ceil(n * quantile)))


def ranked(members: list[Member], maximize: bool) -> list[Member]:
    """Best first; members without a score last; ties in trial-number order."""
    def key(m: Member):
        if m.value is None or not math.isfinite(m.value):
            return (1, 0.0, m.number)
        return (0, -m.value if maximize else m.value, m.number)
    return sorted(members, key=key)


def plan_round(members: list[Member], quantile: float, maximize: bool, space: tuple[Param, ...],
               mutable: tuple[str, ...], perturb: tuple[float, ...],
               resample_probability: float, rng: random.Random) -> list[Exploit]:
    """The exploits of one round, in recipient order (see the module docstring)."""
    order = ranked(members, maximize)
    scored = [m for m in order if m.value is not None and math.isfinite(m.value)]
    if not scored:  # nobody to copy from
        return []
    k = quantile_size(len(order), quantile)
    top = scored[:k]
    worst_top = top[-1].value
    chosen = {m.number for m in scored[len(scored) - k:]} | {
        m.number for m in order if m not in scored}
    recipients = []
    for m in order:
        if m.number not in chosen or m in top:
            continue
        if m in scored and m.value == worst_top:  # a tie: not worse than a donor
            continue
        recipients.append(m)
    plans = []
    for m in sorted(recipients, key=lambda r: r.number):
        donor = top[rng.randrange(len(top))]
        params, how = explore(donor.params, space, mutable, perturb, resample_probability, rng)
        plans.append(Exploit(m.number, donor.number, params, how))
    return plans


def explore(params: dict[str, Any], space: tuple[Param, ...], mutable: tuple[str, ...],
            perturb: tuple[float, ...], resample_probability: float,
            rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
    """`params` with each mutable one resampled or perturbed; and what was done to each."""
    by_name = {p.name: p for p in space}
    new, how = dict(params), {}
    for name in mutable:
        param = by_name.get(name)
        if param is None or name not in params or not param.active(params):
            continue
        if rng.random() < resample_probability:
            new[name], how[name] = resample(param, rng), "resampled"
        else:
            factor = perturb[rng.randrange(len(perturb))]
            new[name], how[name] = perturbed(param, params[name], factor, rng), f"x{factor:g}"
    return new, how


def resample(param: Param, rng: random.Random) -> Any:
    """A fresh draw from the parameter's range or choices (log-uniform when log)."""
    if param.kind == "categorical":
        return param.choices[rng.randrange(len(param.choices))]
    low, high = float(param.low), float(param.high)
    value = math.exp(rng.uniform(math.log(low), math.log(high))) if param.log else \
        rng.uniform(low, high)
    return _fit(param, value)


def perturbed(param: Param, value: Any, factor: float, rng: random.Random) -> Any:
    """`value` x `factor`, on the parameter's range and step; an int moves by at least 1 and a
    categorical to a neighbouring choice (up for a factor > 1, down otherwise)."""
    if param.kind == "categorical":
        i = param.choices.index(value) if value in param.choices else 0
        j = i + (1 if factor > 1 else -1 if factor < 1 else 0)
        return param.choices[min(len(param.choices) - 1, max(0, j))]
    moved = float(value) * factor
    if param.kind == "int" and factor != 1 and round(moved) == value:
        moved = value + (1 if factor > 1 else -1)
    return _fit(param, moved)


def _fit(param: Param, value: float) -> Any:
    """Clip to [low, high] and snap to the step (or to an int)."""
    low, high = param.low, param.high
    value = min(max(value, low), high)
    if param.step:
        value = low + round((value - low) / param.step) * param.step
        value = min(max(value, low), high)
    if param.kind == "int":
        return int(round(value))
    return float(value)
