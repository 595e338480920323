"""Turn a flat params dict (from a search space or a spec file) into a frozen config dataclass.

Used by `trainers.base.build_config` for every trainer's Config, built-in or a plug-in's, so all
trainers cast and complain the same way.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import typing
from typing import Any

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def config_from_params(cls: type, params: dict, trainer: str) -> Any:
    """Build `cls` from `params`: unknown keys and uncastable values raise ValueError."""
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in params.items():
        if key not in known:
            raise ValueError(f"unknown parameter {reprlib.repr(key)} for {trainer}; "
                             f"known: {', '.join(known)}")
        kwargs[key] = _cast(value, hints[key], key, trainer)
    return cls(**kwargs)


def _cast(value: Any, kind: type, field: str, trainer: str) -> Any:
    try:
        if kind is bool:
            return _to_bool(value)
        if kind is int:
            return _to_int(value)
        if kind is float:
            if isinstance(value, bool):
                raise TypeError("bool is not a number")
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                raise TypeError("not a string")
            return value
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"invalid value for {trainer} parameter {field!r}: expected {kind.__name__}, "
            f"got {reprlib.repr(value)} ({err})"
        ) from None
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("not a boolean")


def _to_int(value: Any) -> int:
    # Optuna and YAML may hand over 128.0 or "128"; 128.5 is a mistake, not a rounding request.
    if isinstance(value, bool):
        raise TypeError("bool is not an int")
    if isinstance(value, int):
        return value
    as_float = float(value)
    if not math.isfinite(as_float) or not as_float.is_integer():
        raise ValueError("not an integer")
    return int(as_float)


def check(ok: bool, trainer: str, field: str, rule: str, value: Any) -> None:
    """Raise a ValueError naming the field when a validation rule fails."""
    if not ok:
        raise ValueError(f"invalid value for {trainer} parameter {field!r}: {rule}, "
                         f"got {reprlib.repr(value)}")


def state_header(trainer: str, config: Any, seed: int, step: int) -> dict:
    """The part of every trainer's state_dict that says what it is a checkpoint of."""
    return {"trainer": trainer, "config": dataclasses.asdict(config), "seed": seed, "step": step}


def check_same_config(state: dict, config: Any) -> None:
    """A checkpoint resumes only the trainer it was taken from."""
    if state["config"] != dataclasses.asdict(config):
        raise ValueError(f"checkpoint config {state['config']} differs from this trainer's "
                         f"{dataclasses.asdict(config)}")


def check_mutable_change(old: Any, new: Any, mutable: tuple[str, ...], trainer: str) -> None:
    """A trainer's `reconfigure` changes only its MUTABLE fields: raise a ValueError naming the
    first other field that differs (the architecture, the data's shape, ... stay as built)."""
    for field in dataclasses.fields(old):
        if field.name not in mutable and getattr(old, field.name) != getattr(new, field.name):
            raise ValueError(f"{trainer}.{field.name}: cannot change mid-run (mutable: "
                             f"{', '.join(mutable)})")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def describe(exc: BaseException) -> str:
    """An exception as one line for an error message: `ValueError: what it says`."""
    return f"{type(exc).__name__}: {first_line(exc)}"
