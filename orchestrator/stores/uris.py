"""Where the stores are: the study storage and the tracking URI resolved from flags, environment
and the embedded defaults, local paths made absolute, the local file a store names, and its
scheme. Pure string and path work: no store is opened or created here."""

from __future__ import annotations

import json
import os
from pathlib import Path

from orchestrator.errors import SpecError

SQLITE = "sqlite:///"
DEFAULT_STORAGE = "sqlite:///optuna.db"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def refuse_empty(flag: str, value: str | None, what: str, var: str) -> None:
    """An empty store flag is an unset shell variable (`--storage "$GANSWEEP_STORAGE"` where
    nothing set it): refused, never read as "the local default"."""
    if value is not None and not value.strip():
        raise SpecError(f"{flag}: empty (an unset shell variable?): give {what}, or set {var}")


def resolve_storage(flag: str | None = None) -> str:
    """--storage, else GANSWEEP_STORAGE, else the project's (gansweep.toml above the current
    folder), else the local sqlite file. An empty flag is refused: falling back to a file on
    this machine would put the sweep where nobody looks."""
    refuse_empty("--storage", flag, "the study storage", "GANSWEEP_STORAGE")
    return (flag or os.environ.get("GANSWEEP_STORAGE") or _project("storage")
            or DEFAULT_STORAGE)


def resolve_tracking_uri(flag: str | None = None) -> str:
    refuse_empty("--tracking-uri", flag, "the MLflow tracking URI", "MLFLOW_TRACKING_URI")
    return (flag or os.environ.get("MLFLOW_TRACKING_URI") or _project("tracking_uri")
            or DEFAULT_TRACKING_URI)


def resolve_checkpoint_root(given: str | None, default: str) -> str:
    """--checkpoint-root (or the spec's), else the project's, else `default` (here)."""
    return given or _project("checkpoints") or default


def _project(key: str) -> str | None:
    from orchestrator.stores.project import project_stores

    return project_stores().get(key)


def absolute_storage(storage: str) -> str:
    """A study storage with its file made absolute: `resume` and Ray Jobs run elsewhere."""
    if is_journal(storage):
        return str(Path(storage).expanduser().resolve())
    return absolute_sqlite(storage)


def absolute_sqlite(uri: str) -> str:
    """A relative sqlite URL made absolute; any other URI (a tracking URI may be a bare word such
    as `databricks`) is left as it is."""
    if uri.startswith(SQLITE) and not uri.startswith(SQLITE + "/") and ":memory:" not in uri:
        return SQLITE + str(Path(uri[len(SQLITE):]).resolve())
    return uri


def is_journal(storage: str) -> bool:
    """A storage with no URL scheme is a path to an Optuna journal file."""
    return "://" not in storage


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite URL; None for any other URI or an in-memory database."""
    if uri.startswith(SQLITE) and ":memory:" not in uri:
        return Path(uri[len(SQLITE):])
    return None


def local_file(storage: str) -> Path | None:
    """The file a sqlite URL or a journal names; None for a database server."""
    return Path(storage) if is_journal(storage) else sqlite_file(storage)


SQLITE_MAGIC = b"SQLite format 3\x00"


def file_problem(file: Path, kind: str = "") -> str | None:
    """Why a store cannot open or make `file`, found without creating anything (None: it can).
    `kind`: "sqlite" or "journal", what an existing non-empty file must already be (never
    append a store's records to a user's file that is something else)."""
    file = file.expanduser().resolve()
    if file.is_dir():
        return f"{file} is a folder"
    if not (file.parent.is_dir() and os.access(file.parent, os.W_OK)):
        return f"{file.parent} is not a folder this user can write in"
    if not file.exists():
        return None
    if not file.is_file():
        return f"{file} is not a regular file"
    if not os.access(file, os.R_OK | os.W_OK):
        return f"{file} is not a file this user can read and write"
    try:
        with open(file, "rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        return f"cannot read {file}: {exc.strerror}"
    if head and kind == "sqlite" and not head.startswith(SQLITE_MAGIC):
        return f"{file} exists and is not a SQLite database"
    if head and kind == "journal" and not _journal_head(head):
        return (f"{file} exists and is not an Optuna journal: give a new file or an existing "
                f"journal")
    return None


def _journal_head(head: bytes) -> bool:
    """Whether `head` starts as an Optuna journal does: JSON records of one line with op_code."""
    first = head.split(b"\n", 1)[0]
    try:
        record = json.loads(first)
    except ValueError:  # also a record cut by the 64 KiB read: a journal's first is short
        return False
    return isinstance(record, dict) and "op_code" in record


def uri_scheme(uri: str) -> str:
    """A store URI's scheme without its driver (`postgresql+psycopg2` -> `postgresql`); a path
    with no scheme is a `file` store."""
    return uri.split(":", 1)[0].split("+", 1)[0] if ":" in uri else "file"

