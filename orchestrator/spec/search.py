"""How a sweep searches: objectives, sampler, pruner, enqueued starting points, time budget.

Parsed from the spec here into plain frozen dataclasses (errors are `FieldError`s naming the
field), without importing Optuna: orchestrator/study/samplers.py turns them into Optuna objects
on the driver. A named pruner's options are checked by building it (orchestrator/spec/pruners.py,
the one place parsing imports Optuna), so an option Optuna would refuse is refused at spec load,
not in the middle of a sweep.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import FieldError
from orchestrator.spec.space import Param

DIRECTIONS = {"minimize": "minimize", "min": "minimize", "maximize": "maximize", "max": "maximize"}
SAMPLERS = ("tpe", "random", "grid", "cmaes", "qmc", "gp", "nsga2", "nsga3")
PRUNER_OPTIONS = {
    "none": (),
    "median": ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "percentile": ("percentile", "n_startup_trials", "n_warmup_steps", "interval_steps",
                   "n_min_trials"),
    "successive_halving": ("min_resource", "reduction_factor", "min_early_stopping_rate",
                           "bootstrap_count", "n_startup_trials"),
    "hyperband": ("min_resource", "reduction_factor", "bootstrap_count", "n_startup_trials"),
    "wilcoxon": ("p_threshold", "n_startup_steps"),
}
DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*"
                         r"(?:(\d+(?:\.\d+)?)s)?\s*$")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str = "minimize"


@dataclass(frozen=True)
class SamplerSpec:
    name: str = "tpe"
    seed: int = 0


@dataclass(frozen=True)
class PrunerSpec:
    name: str = "none"
    options: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None  # what trials are reported and pruned on; None: the objective


# -- parsing ----------------------------------------------------------------------------------
def parse_objectives(raw: dict) -> tuple[Objective, ...]:
    """`objective: {metric, direction}` or `objectives: [{metric, direction}, ...]`."""
    if ("objective" in raw) == ("objectives" in raw):
        raise FieldError("objective", "give exactly one of objective (one metric) or objectives "
                                      "(a list)")
    if "objective" in raw:
        return (_objective("objective", raw["objective"]),)
    items = raw["objectives"]
    if not isinstance(items, list) or not items:
        raise FieldError("objectives", "must be a non-empty list of {metric, direction}")
    found = tuple(_objective(f"objectives[{i}]", item) for i, item in enumerate(items))
    if len({o.metric for o in found}) != len(found):
        raise FieldError("objectives", "lists the same metric twice")
    return found


def _objective(where: str, raw: Any) -> Objective:
    if not isinstance(raw, dict):
        raise FieldError(where, "must be a mapping {metric, direction}")
    unknown = sorted(set(raw) - {"metric", "direction"})
    if unknown:
        raise FieldError(f"{where}.{unknown[0]}", "unknown field (known: metric, direction)")
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric:
        raise FieldError(f"{where}.metric", "required, e.g. eval/reverse_kl")
    direction = DIRECTIONS.get(str(raw.get("direction", "minimize")).lower())
    if direction is None:
        raise FieldError(f"{where}.direction", "must be minimize or maximize")
    return Objective(metric, direction)


def parse_sampler(raw: dict, space: tuple[Param, ...], n_objectives: int) -> SamplerSpec:
    unknown = sorted(set(raw) - {"name", "seed"})
    if unknown:
        raise FieldError(f"sampler.{unknown[0]}", "unknown field (known: name, seed)")
    name = str(raw.get("name", "tpe")).lower()
    if name not in SAMPLERS:
        raise FieldError("sampler.name",
                         f"must be one of {', '.join(SAMPLERS)}, got {reprlib.repr(name)}")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
        raise FieldError("sampler.seed", f"must be an integer in [0, 2**32 - 1], got "
                                         f"{reprlib.repr(seed)}")
    if name == "grid":
        for param in space:
            if param.kind == "float" and param.step is None:
                raise FieldError(f"space.{param.name}", "the grid sampler needs a finite space: "
                                 "give this float a step, or make it categorical")
    if name in ("cmaes", "gp", "qmc") and n_objectives > 1:
        raise FieldError("sampler.name", f"{name} is single-objective; use tpe, random, nsga2 "
                                         "or nsga3 with several objectives")
    return SamplerSpec(name, seed)


def parse_pruner(raw: Any, n_objectives: int) -> PrunerSpec:
    """`pruner:` as a name or {name, metric, options...}; orchestrator/spec/pruners.py checks the
    options by building the pruner."""
    if raw is None:
        return PrunerSpec()
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise FieldError("pruner", "must be a name or a mapping {name, options...}")
    name = str(raw.get("name", "none")).lower()
    if name not in PRUNER_OPTIONS:
        raise FieldError("pruner.name", f"must be one of {', '.join(PRUNER_OPTIONS)}, "
                                        f"got {reprlib.repr(name)}")
    options = {k: v for k, v in raw.items() if k not in ("name", "metric")}
    metric = raw.get("metric")
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise FieldError("pruner.metric", f"must be a metric name, e.g. eval/coverage, got "
                                          f"{reprlib.repr(metric)}")
    if metric is not None and name == "none":
        raise FieldError("pruner.metric", "the none pruner prunes nothing: give a pruner name, "
                                          "or drop metric")
    for key in options:
        if key not in PRUNER_OPTIONS[name]:
            known = ", ".join(PRUNER_OPTIONS[name] + ("metric",)) if name != "none" else "none"
            raise FieldError(f"pruner.{key}", f"not an option of the {name} pruner "
                                              f"(known: {known})")
    if name != "none" and n_objectives > 1:
        raise FieldError("pruner", "pruning needs a single objective: Optuna's pruners are "
                                   "single-objective (use pruner: none)")
    return PrunerSpec(name, options, metric)


MAX_ENQUEUE = 1000  # starting points (each is a trial of the budget)


def parse_enqueue(raw: Any, space: tuple[Param, ...]) -> tuple[dict[str, Any], ...]:
    """Known-good starting points: each a dict of space params, checked against the space."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FieldError("enqueue", "must be a list of {param: value} mappings")
    if len(raw) > MAX_ENQUEUE:
        raise FieldError("enqueue", f"at most {MAX_ENQUEUE} points, got {len(raw)}")
    params = {p.name: p for p in space}
    for i, point in enumerate(raw):
        if not isinstance(point, dict) or not point:
            raise FieldError(f"enqueue[{i}]", "must be a non-empty {param: value} mapping")
        for name, value in point.items():
            if name not in params:
                raise FieldError(f"enqueue[{i}].{name}", "not a parameter of space")
            if not fits(params[name], value):
                raise FieldError(f"enqueue[{i}].{name}",
                                 f"{reprlib.repr(value)} is outside space.{name}")
    return tuple(dict(point) for point in raw)


def fits(param: Param, value: Any) -> bool:
    if param.kind == "categorical":
        return value in param.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return param.low <= value <= param.high and (param.kind == "float" or value == int(value))


def parse_duration(where: str, raw: Any) -> float | None:
    """`30m`, `2h`, `1h30m`, `90s` or a number of seconds."""
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0 and \
            math.isfinite(raw):
        return float(raw)
    match = DURATION_RE.match(str(raw)) if isinstance(raw, str) else None
    if not match or not any(match.groups()):
        raise FieldError(where, f"must be a duration like 30m, 2h, 1h30m or 90s, got "
                                f"{reprlib.repr(raw)}")
    hours, minutes, seconds = (float(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:  # 0s would read as "no limit"
        raise FieldError(where, f"must be longer than 0, got {reprlib.repr(raw)} (leave it out "
                                f"for no time limit)")
    return total


# -- the grid sampler's points ------------------------------------------------------------
def grid_space(space: tuple[Param, ...]) -> dict[str, list]:
    """Every value of every parameter, for the grid sampler (floats need a step)."""
    grid = {}
    for p in space:
        if p.kind == "categorical":
            grid[p.name] = list(p.choices)
        else:
            step = p.step or 1
            n = int(math.floor((p.high - p.low) / step + 1e-9)) + 1
            values = [p.low + i * step for i in range(n)]
            grid[p.name] = [int(v) for v in values] if p.kind == "int" else [
                round(v, 12) for v in values]
    return grid


def grid_size(space: tuple[Param, ...]) -> int:
    return math.prod(len(v) for v in grid_space(space).values())
