"""The local file a store names (a sqlite URL's database), and whether it can be made here."""

from __future__ import annotations

import os
from pathlib import Path

SQLITE = "sqlite:///"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite URL; None for any other URI or an in-memory database."""
    if uri.startswith(SQLITE) and ":memory:" not in uri:
        return Path(uri[len(SQLITE):])
    return None


def file_problem(file: Path) -> str | None:
    """Why a store cannot open or make `file`, found without creating anything (None: it can)."""
    file = file.expanduser().resolve()
    if file.is_dir():
        return f"{file} is a folder"
    if not (file.parent.is_dir() and os.access(file.parent, os.W_OK)):
        return f"{file.parent} is not a folder this user can write in"
    return None
