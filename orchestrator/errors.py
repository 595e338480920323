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


NO_SPACE_SIGNS = ("no space left on device", "errno 28", "database or disk is full",
                  "disk quota exceeded", "errno 122")
"""How a write that failed for space reads, whatever wrapped it: OSError's ENOSPC and EDQUOT,
SQLite's SQLITE_FULL, pyarrow's and Ray's copies of them (an actor's exception reaches the
driver as text)."""


def out_of_space(error: BaseException | str | None) -> bool:
    """Whether `error` (an exception, with its causes, or an error's text) is a disk that is
    full."""
    seen: set[int] = set()
    while isinstance(error, BaseException) and id(error) not in seen:
        seen.add(id(error))
        if _no_space_text(str(error)) or getattr(error, "errno", None) in (28, 122):
            return True
        error = error.__cause__ or error.__context__
    return isinstance(error, str) and _no_space_text(error)


def _no_space_text(text: str) -> bool:
    low = text.lower()
    return any(sign in low for sign in NO_SPACE_SIGNS)


class OutOfSpace(Exception):  # noqa: N818 - what happened to the sweep, as KeyboardInterrupt
    """The sweep stopped because a disk it writes to is full; its trials in flight were left at
    their last complete checkpoint, to be resumed once there is space."""

    def __init__(self, sweep: str, what: str, suspended: list[int]):
        super().__init__(f"{sweep}: {what}")
        self.sweep, self.what, self.suspended = sweep, what, suspended
