"""The errors bad input raises, and how any error reads in one line, in a module that imports
nothing.

A `FieldError` names a dotted field of a spec (`space.lr_g.low: must be > 0 with log: true`);
orchestrator/spec/sweep.py turns it into a `SpecError` by prefixing the file name. A `SpecError`
is any bad spec or flag: the CLI prints it as one line on stderr and exits 2, never with a
traceback.
"""

from __future__ import annotations


class SpecError(ValueError):
    """A bad spec or flag: one line, naming the file and the field."""


class FieldError(ValueError):
    """A spec problem at a dotted field path; the spec's loader prefixes the file name."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def describe(exc: BaseException) -> str:
    """An exception as one line for an error message: `ValueError: its first line`. (trainers/
    has the same for its own messages; importing it here would import torch with it.)"""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else type(exc).__name__}"
