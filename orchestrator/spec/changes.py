"""What changed between two specs of one sweep, in the fields that decide what its trials mean:
the trainer, the dataset, the objectives, the fixed parameters, the search space and the pbt
scheduler (its members are the trials, and their results depend on its rules).

A relaunch with a changed space would feed Optuna's sampler trials drawn from another space as
if they were this one's (and mix two spaces in one study): `gansweep launch` refuses it, naming
the first field that differs, unless the user says `--allow-changed-spec`. Budget, sampler,
pruner, resources and storage may change between launches (e.g. --trials).
"""

from __future__ import annotations

import dataclasses
import reprlib
from typing import Any

from orchestrator.spec.population import PopulationSpec
from orchestrator.spec.sweep import SweepSpec

PARAM_KEYS = {"kind": "type"}  # a Param field as the spec spells it


def first_change(old: SweepSpec, new: SweepSpec) -> tuple[str, str] | None:
    """(field, "was X, now Y") for the first field the two specs differ in, None when none:
    trainer, dataset, objective(s), fixed.KEY, space.PARAM[.FIELD] in the old order, then
    scheduler[.FIELD]."""
    for field, was, now in (("trainer", old.trainer_target, new.trainer_target),
                            ("dataset", old.dataset_target, new.dataset_target)):
        if was != now:
            return field, _was_now(was, now)
    if old.objectives != new.objectives:
        was = [(o.metric, o.direction) for o in old.objectives]
        now = [(o.metric, o.direction) for o in new.objectives]
        field = "objective" if len(was) == len(now) == 1 else "objectives"
        return field, _was_now(_objectives(was), _objectives(now))
    for key in list(old.fixed) + [k for k in new.fixed if k not in old.fixed]:
        was, now = old.fixed.get(key, _UNSET), new.fixed.get(key, _UNSET)
        if not _same(was, now):
            return f"fixed.{key}", _was_now(was, now)
    return _space_change(old.space, new.space) or _scheduler_change(old.scheduler, new.scheduler)


def _space_change(old: tuple, new: tuple) -> tuple[str, str] | None:
    before, after = {p.name: p for p in old}, {p.name: p for p in new}
    for name in list(before) + [n for n in after if n not in before]:
        was, now = before.get(name), after.get(name)
        if was is None or now is None:
            return f"space.{name}", ("added" if was is None else "removed")
        for f in dataclasses.fields(was):
            a, b = getattr(was, f.name), getattr(now, f.name)
            if not _same(a, b):
                return f"space.{name}.{PARAM_KEYS.get(f.name, f.name)}", _was_now(a, b)
    return None


def _scheduler_change(old: PopulationSpec | None, new: PopulationSpec | None
                      ) -> tuple[str, str] | None:
    """A pbt sweep's members are its trials, and what each reached depends on the exploit and
    explore rules it trained under: turning pbt on or off, or changing a rule, is a change."""
    if old is None or new is None:
        if old is new:
            return None
        return "scheduler", _was_now(_UNSET if old is None else "pbt",
                                     _UNSET if new is None else "pbt")
    for f in dataclasses.fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if not _same(a, b):
            return f"scheduler.{f.name}", _was_now(a, b)
    return None


class _Unset:
    def __repr__(self) -> str:
        return "not set"


_UNSET = _Unset()


def _same(a: Any, b: Any) -> bool:
    """Equal as the spec means it: 1 and 1.0 are one value, True and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _was_now(was: Any, now: Any) -> str:
    return f"was {_show(was)}, now {_show(now)}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return reprlib.repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_show(v) for v in value[:8]) + (", ...]" if len(value) > 8 else "]")
    return repr(value)


def _objectives(found: list[tuple[str, str]]) -> str:
    return ", ".join(f"{metric} ({direction})" for metric, direction in found)
