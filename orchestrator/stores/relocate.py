"""Pointing a local MLflow store at its artifacts again after its folder moved.

MLflow keeps every artifact location as an absolute path: a relative `artifact_location` is made
absolute against the working directory when the experiment is created, and each run, logged model
and model version copies its experiment's location, absolute, when it is made. So a moved project
folder (`mv proj proj2`) keeps a `mlflow.db` that points into `proj/`: images, checkpoints and
models no longer load, and new runs of an old experiment would write into the old place. With a
plain sqlite store nothing portable is possible (an `mlflow-artifacts:` location needs a tracking
server for every write, actors included), so `gansweep ui --relocate` rewrites the locations here.

A location is moved from an old folder A to the database's folder D when the part of it below A
exists below D: `/old/proj/mlartifacts` -> `D/mlartifacts` when `D/mlartifacts` exists. The
Optuna storage that `gansweep promote` wrote into a registered version (its `gansweep.storage`
tag and its description) is moved with it when it was below A.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from orchestrator.layout import VERSION_STORAGE

# every column of MLflow 3's schema that holds a run's, model's or experiment's artifact location
LOCATION_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("logged_models", "artifact_location"), ("model_versions", "source"),
                    ("model_versions", "storage_location"))


@dataclass(frozen=True)
class Relocation:
    old: Path  # the folder the store was in
    new: Path  # the folder it is in now
    rewritten: int  # locations changed
    storage_rewritten: int = 0  # registered versions' storage tags and descriptions changed


def local_path(location: str | None) -> Path | None:
    """The absolute local path of an artifact location (`file:///x` or `/x`); None otherwise."""
    if not location:
        return None
    if location.startswith("file:"):
        return Path(unquote(urlsplit(location).path))
    return Path(location) if location.startswith("/") else None


def moved_root(location: Path, new: Path) -> Path | None:
    """The folder A that `location` is below, such that the same part below `new` exists: the
    closest such A, so that `/old/proj/mlartifacts` maps `/old/proj` onto `new`."""
    if location.is_relative_to(new):
        return None
    for folder in location.parents:
        if folder == Path(folder.anchor):
            return None
        if (new / location.relative_to(folder)).exists():
            return folder
    return None


def experiment_roots(db: sqlite3.Connection, new: Path, missing_only: bool) -> set[Path]:
    """The old folders that the experiments' artifact locations point into (when `missing_only`,
    only those whose location is gone: a moved folder rather than a copied one)."""
    roots = set()
    for (location,) in db.execute("SELECT artifact_location FROM experiments"):
        path = local_path(location)
        if path is None or (missing_only and path.exists()):
            continue
        root = moved_root(path, new)
        if root is not None:
            roots.add(root)
    return roots


def stale_roots(db_file: Path) -> set[Path]:
    """Folders a local store's experiments point into that are gone, while what they held is
    beside the database now: the store's folder moved, and `relocate` would mend it."""
    with _connect(db_file) as db:
        return experiment_roots(db, db_file.resolve().parent, missing_only=True)


def copied_roots(db_file: Path) -> set[Path]:
    """Folders a local store's experiments point into, other than its own, whose files are
    beside the database too: the store was copied (or moved) there."""
    with _connect(db_file) as db:
        return experiment_roots(db, db_file.resolve().parent, missing_only=False)


def relocate(db_file: Path) -> list[Relocation]:
    """Point every artifact location below an old folder of the store at the folder the
    database is in now, in one transaction. Returns what was moved (empty: nothing to do)."""
    new = db_file.resolve().parent
    done = []
    with _connect(db_file) as db:
        for old in sorted(experiment_roots(db, new, missing_only=False)):
            done.append(Relocation(old, new, _rewrite(db, old, new),
                                   _rewrite_storage(db, old, new)))
    return done


def _rewrite(db: sqlite3.Connection, old: Path, new: Path) -> int:
    """Replace the prefix `old/` by `new/` in every location column, as a file URI and as a
    plain path (MLflow writes both: `file:///x/mlartifacts`, `/x/mlruns/0`)."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    count = 0
    for was, now in ((old.as_uri() + "/", new.as_uri() + "/"), (f"{old}/", f"{new}/")):
        for table, column in LOCATION_COLUMNS:
            if table not in tables:
                continue  # an older MLflow schema
            count += db.execute(
                f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                f"WHERE substr({column}, 1, ?) = ?", (now, len(was) + 1, len(was), was)).rowcount
    return count


def _rewrite_storage(db: sqlite3.Connection, old: Path, new: Path) -> int:
    """Move a study storage below `old/` to `new/` where promote named it: the versions'
    `gansweep.storage` tags (the storage itself: `sqlite:////old/x.db`, or a journal file's
    path) and their descriptions (`Optuna storage: <it>.`)."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"model_versions", "model_version_tags"} <= tables:
        return 0
    count = 0
    for was, now in ((f"sqlite:///{old}/", f"sqlite:///{new}/"), (f"{old}/", f"{new}/")):
        count += db.execute(
            "UPDATE model_version_tags SET value = ? || substr(value, ?) "
            "WHERE key = ? AND substr(value, 1, ?) = ?",
            (now, len(was) + 1, VERSION_STORAGE, len(was), was)).rowcount
        said, says = f"Optuna storage: {was}", f"Optuna storage: {now}"
        count += db.execute(
            "UPDATE model_versions SET description = replace(description, ?, ?) "
            "WHERE instr(description, ?) > 0", (said, says, said)).rowcount
    return count


@contextlib.contextmanager
def _connect(db_file: Path) -> Iterator[sqlite3.Connection]:
    """The store's database (never created here), in one transaction: committed on success,
    rolled back on an error, closed either way."""
    db = sqlite3.connect(db_file.resolve().as_uri() + "?mode=rw", uri=True, timeout=30)
    try:
        with db:
            yield db
    finally:
        db.close()
