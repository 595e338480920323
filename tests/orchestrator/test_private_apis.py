"""Every private API gansweep calls, where it calls it: each is checked against the version the
comment at its call site names (constraints.txt pins the libraries), so that an upgrade that
moves one fails here, in one line, rather than in a user's sweep."""

from __future__ import annotations

import atexit
import importlib
import threading

import pytest


def test_the_interpreters_exit_steps_gansweep_runs_are_there():
    # orchestrator/cli/app.py `exit_steps`: checked on CPython 3.11 to 3.13
    assert callable(getattr(threading, "_shutdown", None))
    assert callable(getattr(atexit, "_run_exitfuncs", None))


@pytest.mark.parametrize("module, names", [
    # orchestrator/cluster/plugins.py `upload`: Ray's own uploader of py_modules (ray 2.60.0)
    ("ray._private.runtime_env.py_modules", ["upload_py_modules_if_needed"]),
    ("ray.experimental.internal_kv", ["_internal_kv_initialized", "_initialize_internal_kv"]),
    ("ray._private.worker", ["global_worker"]),
    # orchestrator/cluster/raytoken.py `use_token_auth`: Ray's cached config (ray 2.60.0)
    ("ray._raylet", ["Config"]),
    # orchestrator/stores/checks.py `check_tracking_uri`: MLflow's stores (mlflow 3.17.2)
    ("mlflow.tracking._tracking_service.utils", ["_tracking_store_registry"]),
])
def test_the_libraries_private_apis_gansweep_calls_are_there(module, names):
    found = importlib.import_module(module)
    assert [n for n in names if not hasattr(found, n)] == []


def test_mlflows_store_registry_still_answers_as_gansweep_reads_it():
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry as stores

    assert "sqlite" in stores._registry and callable(stores.get_store_builder)
