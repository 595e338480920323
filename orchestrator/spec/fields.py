"""Field checks shared by the spec's sections (sweep.py and the sections it imports, which
cannot import it back): each refusal one line naming `section.key`."""

from __future__ import annotations

import reprlib

from orchestrator.errors import FieldError


def int_field(section: str, raw: dict, key: str, default: int | None, minimum: int) -> int:
    value, label = raw.get(key, default), f"{section}.{key}" if section else key
    if value is None:
        raise FieldError(label, "required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(label, f"must be an integer, got {reprlib.repr(value)}")
    if value < minimum:
        raise FieldError(label, f"must be >= {minimum}, got {value}")
    return value
