"""Plug-ins ship with the sweep: a user's trainer or dataset module reaches every actor.

A plug-in whose code lies outside this interpreter's library folders (the user's project
folder, an editable install) is uploaded once to the Ray cluster and named in the actors'
`runtime_env` `py_modules`: the top-level package of its import path (a folder), or its single
.py file, reaches every node that starts an actor, locally and on a cluster alike. Code that
plug-in imports from elsewhere goes only if it is in the same package: a plug-in of several
files is a package. A package installed into site-packages is not shipped: install it on the
cluster as gansweep itself is. Under `gansweep submit` the job's own `py_modules`
(`--py-module`) are kept, since an actor's runtime_env field replaces the job's.
"""

from __future__ import annotations

import importlib.util
import site
import sysconfig
import tempfile
from pathlib import Path

from orchestrator.errors import SpecError
from orchestrator.spec.sweep import SweepSpec

EXCLUDES = ["__pycache__", "*.pyc", ".git"]  # never uploaded with a plug-in


def ship_paths(targets: list[str]) -> list[str]:
    """Local folders or .py files to upload for these trainer / dataset targets."""
    from trainers.registry import is_plugin

    paths = []
    for target in targets:
        if not is_plugin(target):
            continue
        found = _top_level_source(target.partition(":")[0].split(".")[0])
        if found is not None and not _installed(found) and str(found) not in paths:
            paths.append(str(found))
    return paths


def actor_runtime_env(spec: SweepSpec) -> dict | None:
    """The runtime_env that makes the spec's plug-ins importable on every actor (None: none
    to ship)."""
    paths = ship_paths([spec.trainer_target, spec.dataset_target])
    if not paths:
        return None
    return {"py_modules": _job_py_modules() + upload(paths)}


def upload(paths: list[str]) -> list[str]:
    """The gcs:// URIs of local folders or .py files, uploaded to the connected Ray cluster.

    An actor's runtime_env takes URIs only (Ray uploads local paths itself only for a whole job,
    at ray.init, and the driver may be a job that started long before), so this uses Ray's own
    uploader, the one ray.init calls: a private API, checked against ray 2.60.0 (constraints.txt
    pins it; tests/orchestrator/test_private_apis.py fails if it moves)."""
    import ray
    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
    from ray.experimental import internal_kv

    from orchestrator.errors import describe

    if not internal_kv._internal_kv_initialized():  # another cluster's shutdown in this process
        internal_kv._initialize_internal_kv(ray._private.worker.global_worker.gcs_client)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            env = upload_py_modules_if_needed({"py_modules": list(paths), "excludes": EXCLUDES},
                                              include_gitignore=True, scratch_dir=scratch)
    except Exception as exc:  # e.g. a folder past Ray's package size limit
        raise SpecError(f"cannot ship the plug-in code {', '.join(paths)} to the Ray cluster: "
                        f"{describe(exc)}") from None
    return list(env["py_modules"])


def _top_level_source(name: str) -> Path | None:
    """The folder of package `name`, or the file of module `name`, as imported here."""
    found = importlib.util.find_spec(name)
    if found is None:
        return None
    if found.submodule_search_locations:  # a package (namespace packages included)
        return Path(next(iter(found.submodule_search_locations))).resolve()
    if found.origin and found.origin.endswith(".py"):
        return Path(found.origin).resolve()
    return None  # built in, or a compiled extension: installed, not ours to ship


def _installed(path: Path) -> bool:
    """Whether `path` lies in this interpreter's library folders (site-packages, the user's
    site-packages, the standard library)."""
    roots = {sysconfig.get_path(key) for key in ("purelib", "platlib", "stdlib", "platstdlib")}
    roots |= set(site.getsitepackages()) | {site.getusersitepackages()}
    return any(root and path.is_relative_to(Path(root).resolve()) for root in roots)


def _job_py_modules() -> list[str]:
    """The py_modules of the Ray job this driver runs in (`gansweep submit --py-module`)."""
    import ray

    if not ray.is_initialized():
        return []
    env = ray.get_runtime_context().runtime_env or {}
    return list(env.get("py_modules") or [])
