"""Where the stores are: the study storage and the tracking URI resolved from flags, environment
and the embedded defaults, local paths made absolute, the local file a store names, and its
scheme. Pure string and path work: no store is opened or created here."""

from __future__ import annotations

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
    """--storage, else GANSWEEP_STORAGE, else the local sqlite file. An empty flag is refused:
    falling back to a file on this machine would put the sweep where nobody looks."""
    refuse_empty("--storage", flag, "the study storage", "GANSWEEP_STORAGE")
    return flag or os.environ.get("GANSWEEP_STORAGE") or DEFAULT_STORAGE


def resolve_tracking_uri(flag: str | None = None) -> str:
    refuse_empty("--tracking-uri", flag, "the MLflow tracking URI", "MLFLOW_TRACKING_URI")
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


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


def file_problem(file: Path) -> str | None:
    """Why a store cannot open or make `file`, found without creating anything (None: it can)."""
    file = file.expanduser().resolve()
    if file.is_dir():
        return f"{file} is a folder"
    if not (file.parent.is_dir() and os.access(file.parent, os.W_OK)):
        return f"{file.parent} is not a folder this user can write in"
    return None


def uri_scheme(uri: str) -> str:
    """A store URI's scheme without its driver (`postgresql+psycopg2` -> `postgresql`); a path
    with no scheme is a `file` store."""
    return uri.split(":", 1)[0].split("+", 1)[0] if ":" in uri else "file"

