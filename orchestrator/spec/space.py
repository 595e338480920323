"""Search-space parameters, parsed from the spec (orchestrator/study/samplers.py turns them
into Optuna suggestions on the driver).

A parameter is float, int or categorical; float/int may be log-scaled or stepped; any parameter
may carry `when: {other: value}` so that it exists only when `other` took that value (e.g. a
gradient-penalty weight that only means something for `loss: wgan_gp`).
"""

from __future__ import annotations

import contextlib
import math
import reprlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from orchestrator.errors import FieldError

KINDS = ("float", "int", "categorical")
PARAM_FIELDS = {"type", "low", "high", "log", "step", "choices", "when"}
MAX_CHOICES = 1000  # a categorical's values (TPE and the sweep page handle a few dozen well)
MAX_PARAMS = 200  # parameters in a space
MAX_INT = 2**53  # an int parameter is sampled as a float: beyond this it is not exact


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    when: dict[str, Any] = field(default_factory=dict)

    def active(self, chosen: dict[str, Any]) -> bool:
        """True when every `when` condition holds for the values chosen so far."""
        return all(name in chosen and chosen[name] == value for name, value in self.when.items())


def parse_space(raw: Any) -> tuple[Param, ...]:
    if not isinstance(raw, dict) or not raw:
        raise FieldError("space", "must be a non-empty mapping of parameter name to definition")
    if len(raw) > MAX_PARAMS:
        raise FieldError("space", f"at most {MAX_PARAMS} parameters, got {len(raw)}")
    params: list[Param] = []
    for name, body in raw.items():
        params.append(_parse_param(str(name), body, {p.name: p for p in params}))
    return tuple(params)


def _parse_param(name: str, body: Any, earlier: dict[str, Param]) -> Param:
    where = f"space.{name}"
    if not isinstance(body, dict):
        raise FieldError(where, "must be a mapping with at least `type`")
    unknown = sorted(set(body) - PARAM_FIELDS)
    if unknown:
        raise FieldError(f"{where}.{unknown[0]}",
                         f"unknown field (known: {', '.join(sorted(PARAM_FIELDS))})")
    kind = body.get("type")
    if kind not in KINDS:
        raise FieldError(f"{where}.type",
                         f"must be one of {', '.join(KINDS)}, got {reprlib.repr(kind)}")
    when = _parse_when(where, body.get("when"), earlier)
    if kind == "categorical":
        for key in ("low", "high", "log", "step"):
            if key in body:
                raise FieldError(f"{where}.{key}", "not allowed for a categorical parameter")
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise FieldError(f"{where}.choices", "must be a non-empty list")
        if len(choices) > MAX_CHOICES:
            raise FieldError(f"{where}.choices", f"at most {MAX_CHOICES} values, got "
                                                 f"{len(choices)}")
        if not all(c is None or isinstance(c, (str, int, float, bool)) for c in choices):
            raise FieldError(f"{where}.choices", "values must be strings, numbers or booleans")
        if any(isinstance(c, float) and not math.isfinite(c) for c in choices):
            raise FieldError(f"{where}.choices", "numbers must be finite (no .nan or .inf)")
        seen: set = set()  # 1, 1.0 and true are one value to Optuna and YAML (equal hashes)
        for c in choices:
            if (c is None, c) in seen:
                raise FieldError(f"{where}.choices", f"must not repeat a value: "
                                 f"{reprlib.repr(c)} twice")
            seen.add((c is None, c))
        return Param(name, kind, choices=tuple(choices), when=when)
    if "choices" in body:
        raise FieldError(f"{where}.choices", f"not allowed for a {kind} parameter")
    low, high = _number(where, "low", body, kind), _number(where, "high", body, kind)
    log = body.get("log", False)
    if not isinstance(log, bool):
        raise FieldError(f"{where}.log", "must be true or false")
    if high < low:
        raise FieldError(f"{where}.high", f"must be >= low ({low})")
    if kind == "int" and max(abs(low), abs(high)) > MAX_INT:
        raise FieldError(f"{where}.{'low' if abs(low) > MAX_INT else 'high'}",
                         "must be within +-2**53 for an int parameter")
    if not math.isfinite(high - low):  # the samplers draw in [low, high]: inf width overflows
        raise FieldError(f"{where}.high", f"high - low overflows a float ({low:g} to {high:g}): "
                         f"narrow the range, or use log: true")
    if log and low <= 0:
        raise FieldError(f"{where}.low", "must be > 0 with log: true")
    step = body.get("step")
    if step is not None:
        step = _number(where, "step", body, kind)
        if step <= 0:
            raise FieldError(f"{where}.step", "must be > 0")
        if log and (kind == "float" or step != 1):
            raise FieldError(f"{where}.step", "cannot be combined with log: true")
        _check_step(where, low, high, step)
    return Param(name, kind, low=low, high=high, log=log, step=step, when=when)


def _number(where: str, key: str, body: dict, kind: str) -> float | int:
    if key not in body:
        raise FieldError(f"{where}.{key}", f"required for a {kind} parameter")
    value = body[key]
    if isinstance(value, str):  # YAML 1.1 reads `1e-4` as a string; accept it as a number
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldError(f"{where}.{key}", f"must be a finite number, got "
                         f"{reprlib.repr(body[key])}")
    if kind == "int":
        if float(value) != int(value):
            raise FieldError(f"{where}.{key}", f"must be an integer, got {reprlib.repr(value)}")
        return int(value)
    return float(value)


def _parse_when(where: str, raw: Any, earlier: dict[str, Param]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise FieldError(f"{where}.when", "must be a mapping {parameter: value}")
    for name, value in raw.items():
        parent = earlier.get(name)
        if parent is None:
            raise FieldError(f"{where}.when.{name}",
                             "must name a categorical parameter defined above this one")
        if parent.kind != "categorical":
            raise FieldError(f"{where}.when.{name}", "must name a categorical parameter")
        if value not in parent.choices:
            raise FieldError(f"{where}.when.{name}",
                             f"{reprlib.repr(value)} is not one of space.{name}.choices")
    return dict(raw)


def _check_step(where: str, low: float, high: float, step: float) -> None:
    """A step must fit its range a whole number of times: Optuna otherwise moves `high` down to
    the last step that fits, with a warning per trial (a step wider than the range makes the
    parameter the constant `low`). Exact decimal arithmetic, as Optuna's own check."""
    span = Decimal(str(high)) - Decimal(str(low))
    if Decimal(str(step)) > span and span > 0:
        raise FieldError(f"{where}.step", f"{step} is wider than the range {low} to {high}: "
                         f"the parameter would only ever be {low}")
    if span % Decimal(str(step)) != 0:
        last = Decimal(str(low)) + (span // Decimal(str(step))) * Decimal(str(step))
        raise FieldError(f"{where}.step", f"high - low ({span}) is not a multiple of {step}: "
                         f"Optuna would never reach {high}; make high {last:f} or change step")
