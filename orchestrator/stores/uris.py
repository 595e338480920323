"""Where the stores are: the tracking URI resolved, the local file a store names (a sqlite URL's
database), and whether they can be used, found before anything is created and without importing
MLflow (a launch starts Ray once these checks pass, and imports MLflow while Ray starts)."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.stores.redact import redact_uri

SQLITE = "sqlite:///"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# MLflow's own tracking stores (mlflow.tracking._tracking_service.utils); a scheme not here is
# looked up in MLflow's registry, which plug-ins add to
MLFLOW_SCHEMES = frozenset({"", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https",
                            "databricks", "databricks-uc", "uc"})


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


def uri_scheme(uri: str) -> str:
    """A store URI's scheme without its driver (`postgresql+psycopg2` -> `postgresql`); a path
    with no scheme is a `file` store."""
    return uri.split(":", 1)[0].split("+", 1)[0] if ":" in uri else "file"


def resolve_tracking_uri(flag: str | None = None) -> str:
    from orchestrator.spec.sweep import refuse_empty

    refuse_empty("--tracking-uri", flag, "the MLflow tracking URI", "MLFLOW_TRACKING_URI")
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def store_client_modules(uri: str) -> list[str]:
    """MLflow's client code for the tracking store at `uri` (SQLAlchemy and alembic for a
    database), which an actor imports before its first trial."""
    scheme = uri_scheme(uri)
    if scheme in ("sqlite", "postgresql", "mysql", "mssql"):
        return ["mlflow.store.tracking.sqlalchemy_store"]
    if scheme in ("http", "https"):
        return ["mlflow.store.tracking.rest_store"]
    return ["mlflow"]


def check_tracking_uri(uri: str) -> str | None:
    """Why MLflow cannot use `uri`, found without creating anything (None when it can): an
    unknown scheme, a sqlite file whose folder cannot take it, or a server that does not answer.
    """
    scheme = uri_scheme(uri)
    if scheme not in MLFLOW_SCHEMES:
        try:
            from mlflow.tracking._tracking_service.utils import _tracking_store_registry as stores

            known = sorted(s for s in stores._registry if s)
            stores.get_store_builder(uri)
        except ImportError:  # MLflow moved its registry: MLflow itself says so later
            known = []
        except Exception:
            return (f"{redact_uri(uri)}: MLflow has no tracking store for {scheme!r} "
                    f"(it takes {', '.join(known)}; e.g. http://HOST:5000 or "
                    f"sqlite:///mlflow.db)")
    file = sqlite_file(uri)
    problem = file_problem(file) if file is not None else None
    return f"{redact_uri(uri)}: {problem}" if problem else check_server(uri)


def check_server(uri: str, timeout_s: float = 5.0) -> str | None:
    """For an HTTP tracking URI, why the server cannot be used (None when it answers).

    MLflow's own client retries for minutes before giving up; this asks `/health` once.
    """
    if not uri.startswith(("http://", "https://")):
        return None
    import requests

    try:
        reply = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s)
    except requests.RequestException as exc:
        return (f"cannot reach the MLflow tracking server at {redact_uri(uri)} "
                f"({type(exc).__name__})")
    if reply.status_code != 200:
        return (f"the MLflow tracking server at {redact_uri(uri)} answered /health with "
                f"{reply.status_code}")
    return None
