"""The errors bad input raises, in one module that imports nothing.

A `FieldError` names a dotted field of a spec (`space.lr_g.low: must be > 0 with log: true`);
spec.py turns it into a `SpecError` by prefixing the file name. A `SpecError` is any bad spec or
flag: the CLI prints it as one line on stderr and exits 2, never with a traceback.
"""

from __future__ import annotations


class SpecError(ValueError):
    """A bad spec or flag: one line, naming the file and the field."""


class FieldError(ValueError):
    """A spec problem at a dotted field path; spec.py prefixes the file name."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
