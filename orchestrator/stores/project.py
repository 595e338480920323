"""The project file: `gansweep.toml` marks a project's root and says where its stores are, so
that every command run anywhere inside the project sees the same sweeps.

    [stores]
    storage = "sqlite:///optuna.db"       # the study storage (an RDB URL or a journal file)
    tracking_uri = "sqlite:///mlflow.db"  # MLflow's
    checkpoints = "checkpoints"           # the default checkpoint root

Relative paths are the project root's. The first `gansweep launch` in a folder outside any
project, on the default stores, writes it there. Flags and environment variables still win over
it; without a project file the stores are the current folder's, as before.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from orchestrator.errors import SpecError
from orchestrator.layout import PROJECT_FILE

KEYS = ("storage", "tracking_uri", "checkpoints")
DEFAULTS = {"storage": "sqlite:///optuna.db", "tracking_uri": "sqlite:///mlflow.db",
            "checkpoints": "checkpoints"}
SQLITE = "sqlite:///"


def find_project(start: Path | None = None) -> Path | None:
    """The project file of the nearest folder at or above `start` (the current folder) that
    holds one; None outside any project."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        found = candidate / PROJECT_FILE
        if found.is_file():
            return found
    return None


def project_stores(start: Path | None = None) -> dict[str, str]:
    """The stores the project around `start` names, made absolute ({} outside a project); a
    project file that cannot be read, or names an unknown key, is one line naming it."""
    path = find_project(start)
    if path is None:
        return {}
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot read it: {exc}") from None
    unknown = sorted(set(raw) - {"stores"})
    if unknown:
        raise SpecError(f"{path}: {unknown[0]}: unknown table (known: stores)")
    stores = raw.get("stores", {})
    if not isinstance(stores, dict):
        raise SpecError(f"{path}: stores: must be a table of {', '.join(KEYS)}")
    found = {}
    for key, value in stores.items():
        if key not in KEYS:
            raise SpecError(f"{path}: stores.{key}: unknown key (known: {', '.join(KEYS)})")
        if not isinstance(value, str) or not value.strip():
            raise SpecError(f"{path}: stores.{key}: must be a non-empty string")
        found[key] = _anchored(value, path.parent)
    return found


def _anchored(value: str, root: Path) -> str:
    """A store made absolute against the project root: a relative sqlite file, a journal path,
    a local checkpoint folder; any other URI as it is."""
    if value.startswith(SQLITE) and not value.startswith(SQLITE + "/") and ":memory:" not in value:
        return SQLITE + str(root / value[len(SQLITE):])
    if "://" not in value and not Path(value).expanduser().is_absolute():
        return str(root / value)
    return value


def write_project(folder: Path) -> Path:
    """A project file in `folder` naming the default stores (those the launch just made)."""
    path = folder / PROJECT_FILE
    lines = ["# gansweep's project: commands run anywhere below this folder use these stores",
             "# (relative paths are this folder's; flags and environment variables win).",
             "[stores]", *(f'{key} = "{DEFAULTS[key]}"' for key in KEYS)]
    path.write_text("\n".join(lines) + "\n")
    return path
