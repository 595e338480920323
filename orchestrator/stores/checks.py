"""Can each store be used? Asked before anything is created (DESIGN.md, rule 15), and without
importing MLflow for MLflow's own schemes: a launch starts Ray once these checks pass, and
imports MLflow while Ray starts."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from orchestrator.errors import SpecError, describe
from orchestrator.stores.redact import mask_secrets, redact_uri
from orchestrator.stores.uris import (
    file_problem,
    is_journal,
    local_file,
    sqlite_file,
    uri_scheme,
)

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
    problem = file_problem(file, "sqlite") if file is not None else None
    if problem is None and file is not None and file.is_file() and file.stat().st_size:
        problem = moved_store(file)
    return f"{redact_uri(uri)}: {problem}" if problem else check_server(uri)


def deleted_experiment_text(name: str, experiment_id: str) -> str:
    """Why runs cannot be made in MLflow experiment `name`, and what to do."""
    return (f"MLflow experiment {name!r} (id {experiment_id}) is deleted: restore it (mlflow "
            f"experiments restore --experiment-id {experiment_id}), purge it (mlflow gc "
            f"--experiment-ids {experiment_id}), or name another experiment")


def deleted_experiment(uri: str, name: str) -> str | None:
    """Why a local sqlite store cannot take the sweep's runs: its experiment `name` is in the
    deleted state. Read without MLflow and before Ray starts (MLflow's `experiments` table; a
    file MLflow cannot read is left to MLflow to say so); a server's is found once it is
    opened (tracking/tracker.py)."""
    import sqlite3

    file = sqlite_file(uri)
    if file is None or not file.is_file() or not file.stat().st_size:
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro",
                                                uri=True)) as db:
            found = db.execute("SELECT experiment_id FROM experiments WHERE name = ? AND "
                               "lifecycle_stage = 'deleted'", (name,)).fetchone()
    except sqlite3.Error:
        return None
    return None if found is None else deleted_experiment_text(name, str(found[0]))


def moved_store(db: Path) -> str | None:
    """Why a local MLflow store cannot take new runs: its experiments keep their artifacts in
    another folder, whose same files are beside it here (the project was copied or moved).
    New runs would write into the old folder; `gansweep ui --relocate` mends it."""
    from orchestrator.stores.relocate import copied_roots

    try:
        roots = sorted(copied_roots(db))
    except Exception:  # not an MLflow store yet, or locked: MLflow says so when it opens it
        return None
    if not roots:
        return None
    here = db.resolve().parent
    return (f"its artifact locations point into {roots[0]}, not {here} where it is now (the "
            f"project was copied or moved): new runs would write there; run `gansweep ui "
            f"--relocate` to point them here")


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


def in_memory(url: str) -> bool:
    """sqlite:// or sqlite:///:memory:: a database that lives as long as one connection."""
    scheme, _, rest = url.partition("://")
    return scheme.split("+")[0].lower() == "sqlite" and rest.split("?")[0] in ("", "/:memory:")


def check_storage(storage: str) -> None:
    """Refuse a storage that cannot work, creating nothing: a sqlite file's or journal's folder
    must take it, a database server must answer (the study and its tables come later, once
    every other check has passed)."""
    if in_memory(storage):
        raise SpecError(f"--storage: {redact_uri(storage)} is an in-memory database: the study "
                        f"would be gone when the sweep ends; give a file (sqlite:///optuna.db) "
                        f"or a server")
    file = local_file(storage)
    if file is not None:
        problem = file_problem(file, "journal" if is_journal(storage) else "sqlite")
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



def check_checkpoint_root(root: str) -> None:
    """A local checkpoint root must take files: a probe file is made and deleted in the folder
    nearest to it that exists (the root itself is made by the first checkpoint). A remote root
    (s3://, gs://) was opened by `Settings.resolve`; its first write says what else is wrong."""
    if "://" in root:
        return
    existing = Path(root)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SpecError(f"--checkpoint-root: {root}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".gansweep-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SpecError(f"--checkpoint-root: {root}: cannot write in {existing}: "
                        f"{exc.strerror}") from None
