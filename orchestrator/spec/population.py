"""The spec's `scheduler` section: population-based training (PBT), where the sweep's trials are
members of one population that train side by side and copy each other's progress.

    scheduler: {name: pbt, population: 8, interval: 500, quantile: 0.25, perturb: [0.8, 1.2],
                resample_probability: 0.25, mutable: [lr_g, lr_d]}

Absent or null: no scheduler, every trial trains on its own. `name`, `population` and `interval`
are required; the rest takes the defaults above, and `mutable` defaults to every `space` parameter
the trainer can change mid-run (its MUTABLE, trainers/base.py). In a pbt sweep budget.trials is
the population (it may be left out), no pruner runs (exploit replaces the worst members) and there
is one objective to rank members by.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import FieldError
from orchestrator.spec.fields import int_field
from orchestrator.spec.search import PrunerSpec
from orchestrator.spec.space import Param

SCHEDULERS = ("pbt",)
FIELDS = ("name", "population", "interval", "quantile", "perturb", "resample_probability",
          "mutable")
SHOWN_NAMES = 10  # parameter names an error lists before "..."


@dataclass(frozen=True)
class PopulationSpec:
    """`scheduler: {name: pbt, ...}`: `population` members train side by side, each from a config
    the sampler draws. Every `interval` steps they are ranked by the objective at their latest
    evaluation; each of the bottom `quantile` takes the weights and config of one of the top
    `quantile` (exploit), then changes each `mutable` parameter: multiplied by one of `perturb`,
    or with `resample_probability` drawn anew from the space (explore)."""

    population: int  # members trained side by side (>= 2); the sweep's trials
    interval: int  # steps between exploit rounds: a multiple of budget.eval_every, < budget.steps
    quantile: float = 0.25  # the bottom (top) share of members: in (0, 0.5]
    perturb: tuple[float, ...] = (0.8, 1.2)  # explore: multiply by one of these (finite, > 0)
    resample_probability: float = 0.25  # explore: or draw anew from the space ([0, 1])
    mutable: tuple[str, ...] = ()  # the space params explore may change


def parse_scheduler(raw: Any, space: tuple[Param, ...], fixed: Mapping[str, Any],
                    trainer_name: str, trainer_cls: type,
                    n_objectives: int) -> PopulationSpec | None:
    """`scheduler` as the spec gives it; None when absent or null. What depends on the budget
    and the pruner is checked by `check_sweep` once those are parsed."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise FieldError("scheduler", f"must be a mapping like {{name: pbt, population: 8, "
                                      f"interval: 500}}, got {reprlib.repr(raw)}")
    if raw.get("name") is None:
        raise FieldError("scheduler.name", f"required (known: {', '.join(SCHEDULERS)})")
    if str(raw["name"]).lower() not in SCHEDULERS:
        raise FieldError("scheduler.name", f"must be one of {', '.join(SCHEDULERS)}, got "
                                           f"{reprlib.repr(raw['name'])}")
    unknown = sorted(set(map(str, raw)) - set(FIELDS))
    if unknown:
        raise FieldError(f"scheduler.{unknown[0]}", f"unknown field (known: {', '.join(FIELDS)})")
    population = int_field("scheduler", raw, "population", None, 2)
    interval = int_field("scheduler", raw, "interval", None, 1)
    quantile = _number(raw, "quantile", PopulationSpec.quantile)
    if not 0 < quantile <= 0.5:
        raise FieldError("scheduler.quantile", f"must be in (0, 0.5], got {quantile}")
    perturb = _perturb(raw.get("perturb", list(PopulationSpec.perturb)))
    resample = _number(raw, "resample_probability", PopulationSpec.resample_probability)
    if not 0 <= resample <= 1:
        raise FieldError("scheduler.resample_probability", f"must be in [0, 1], got {resample}")
    if n_objectives > 1:
        raise FieldError("scheduler", f"pbt ranks members by one objective, and this sweep has "
                                      f"{n_objectives}")
    from trainers.base import mutable_params  # torch import: only once a spec is read

    can_change = mutable_params(trainer_cls)
    if can_change is None:
        raise FieldError("scheduler", f"trainer {trainer_name} does not support pbt: it declares "
                                      f"no MUTABLE parameters with a reconfigure(config) method "
                                      f"(see trainers/base.py)")
    return PopulationSpec(population, interval, float(quantile), perturb, float(resample),
                          _mutable(raw.get("mutable"), space, fixed, trainer_name, can_change))


def check_sweep(spec: PopulationSpec, budget: Any, pruner: PrunerSpec) -> None:
    """What a pbt sweep asks of the rest of its spec (`budget`: sweep.py's Budget; sweep.py
    imports this module): the population is its trials, members are compared on fresh
    evaluations at least once before the end, and no pruner stops them."""
    if budget.trials != spec.population:
        raise FieldError("budget.trials", f"a pbt sweep trains scheduler.population "
                                          f"({spec.population}) members, got {budget.trials}")
    if spec.interval % budget.eval_every:
        raise FieldError("scheduler.interval", f"must be a multiple of budget.eval_every "
                                               f"({budget.eval_every}), got {spec.interval}")
    if spec.interval >= budget.steps:
        raise FieldError("scheduler.interval", f"must be < budget.steps ({budget.steps}): no "
                                               f"exploit round would happen")
    if pruner.name != "none":
        raise FieldError("pruner", "a pbt sweep replaces its worst members by exploit; leave out "
                                   "the pruner")


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and \
        math.isfinite(value)


def _number(raw: dict, key: str, default: float) -> int | float:
    value = raw.get(key, default)
    if not _finite(value):
        raise FieldError(f"scheduler.{key}", f"must be a finite number, got "
                                             f"{reprlib.repr(value)}")
    return value


def _perturb(value: Any) -> tuple[float, ...]:
    """The explore factors: a non-empty list of finite numbers > 0, not all 1."""
    if not isinstance(value, list) or not value:
        raise FieldError("scheduler.perturb", f"must be a non-empty list of factors like "
                                              f"[0.8, 1.2], got {reprlib.repr(value)}")
    for factor in value:
        if not _finite(factor):
            raise FieldError("scheduler.perturb", f"factors must be finite numbers, got "
                                                  f"{reprlib.repr(factor)}")
        if factor <= 0:
            raise FieldError("scheduler.perturb", f"factors must be > 0, got {factor}")
    if all(factor == 1 for factor in value):
        raise FieldError("scheduler.perturb", "every factor is 1: explore would change nothing")
    return tuple(float(factor) for factor in value)


def _mutable(raw: Any, space: tuple[Param, ...], fixed: Mapping[str, Any], trainer_name: str,
             can_change: tuple[str, ...]) -> tuple[str, ...]:
    """The space parameters explore may change: those named (each searched, and one the trainer
    can change mid-run), or by default every searched one the trainer can change."""
    searched = [param.name for param in space]
    if raw is None:
        found = tuple(name for name in searched if name in can_change)
        if not found:
            raise FieldError("scheduler.mutable", f"no searched parameter can change mid-run in "
                                                  f"trainer {trainer_name} (it can change: "
                                                  f"{_names(can_change)})")
        return found
    if not isinstance(raw, list) or not raw or not all(isinstance(n, str) for n in raw):
        raise FieldError("scheduler.mutable", f"must be a non-empty list of space parameter "
                                              f"names, got {reprlib.repr(raw)}")
    for i, name in enumerate(raw):
        if name in fixed:
            raise FieldError("scheduler.mutable", f"{name} is fixed (fixed.{name}): explore "
                                                  f"changes only parameters searched in space")
        if name not in searched:
            raise FieldError("scheduler.mutable", f"{name} is not a searched parameter (space: "
                                                  f"{_names(searched)})")
        if name not in can_change:
            raise FieldError("scheduler.mutable", f"{name} cannot change mid-run in trainer "
                                                  f"{trainer_name} (it can change: "
                                                  f"{_names(can_change)})")
        if name in raw[:i]:
            raise FieldError("scheduler.mutable", f"names {name} twice")
    return tuple(raw)


def _names(names: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (", ..." if len(names) > SHOWN_NAMES else "")
