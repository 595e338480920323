"""Can each store be used? Asked before anything is created (DESIGN.md, rule 15), and without
importing MLflow for MLflow's own schemes: a launch starts Ray once these checks pass, and
imports MLflow while Ray starts."""

from __future__ import annotations

from orchestrator.errors import SpecError, describe
from orchestrator.stores.redact import mask_secrets, redact_uri
from orchestrator.stores.uris import file_problem, local_file, sqlite_file, uri_scheme

# MLflow's own tracking stores (mlflow.tracking._tracking_service.utils); a scheme not here is
# looked up in MLflow's registry, which plug-ins add to
MLFLOW_SCHEMES = frozenset({"", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https",
                            "databricks", "databricks-uc", "uc"})


def check_tracking_uri(uri: str) -> str | None:
    """Why MLflow cannot use `uri`, found without creating anything (None when it can): an
    unknown scheme, a sqlite file whose folder cannot take it, or a server that does not answer.
    """
    scheme = uri_scheme(uri)
    if scheme not in MLFLOW_SCHEMES:
        try:  # MLflow's registry of stores (private: checked against mlflow 3.17.2;
            # tests/orchestrator/test_private_apis.py fails if it moves)
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


def check_storage(storage: str) -> None:
    """Refuse a storage that cannot work, creating nothing: a sqlite file's or journal's folder
    must take it, a database server must answer (the study and its tables come later, once
    every other check has passed)."""
    file = local_file(storage)
    if file is not None:
        problem = file_problem(file)
        if problem:
            raise SpecError(f"--storage: cannot use {redact_uri(storage)}: {problem}")
        return
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(storage, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # bad URL, missing driver, unreachable database, refused login
        raise cannot_open(storage, exc) from None


def cannot_open(storage: str, exc: BaseException) -> SpecError:
    """The one line for a study storage that would not open: the library's first line, no
    secret in either."""
    return SpecError(f"--storage: cannot open {redact_uri(storage)}: "
                     f"{mask_secrets(describe(exc), storage)}")

