"""Where the stores are: flags, else the environment, else the embedded defaults; local files
made absolute; the file and the scheme a URI names. Nothing is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.stores.uris import (
    absolute_sqlite,
    absolute_storage,
    file_problem,
    local_file,
    resolve_storage,
    resolve_tracking_uri,
    uri_scheme,
)


def test_a_flag_wins_over_the_environment_which_wins_over_the_default(monkeypatch):
    monkeypatch.delenv("GANSWEEP_STORAGE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_storage() == "sqlite:///optuna.db"
    assert resolve_tracking_uri() == "sqlite:///mlflow.db"
    monkeypatch.setenv("GANSWEEP_STORAGE", "postgresql://db/optuna")
    assert resolve_storage() == "postgresql://db/optuna"
    assert resolve_storage("other.journal") == "other.journal"


def test_an_empty_flag_is_an_unset_variable_and_is_refused():
    with pytest.raises(SpecError, match=r'--storage: empty \(an unset shell variable\?\)'):
        resolve_storage("")
    with pytest.raises(SpecError, match="or set MLFLOW_TRACKING_URI"):
        resolve_tracking_uri("  ")


def test_local_files_are_made_absolute_and_other_uris_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite("sqlite:///mlflow.db") == f"sqlite:///{tmp_path}/mlflow.db"
    assert absolute_storage("optuna.journal") == str(tmp_path / "optuna.journal")
    for kept in ("sqlite:////abs/x.db", "sqlite:///:memory:", "http://h:5000", "databricks"):
        assert absolute_sqlite(kept) == kept
    assert local_file("sqlite:////abs/x.db") == Path("/abs/x.db")
    assert local_file("postgresql://db/optuna") is None


def test_a_file_a_store_cannot_make_is_found_without_making_it(tmp_path):
    assert file_problem(tmp_path / "new.db") is None
    assert file_problem(tmp_path) == f"{tmp_path} is a folder"
    assert "is not a folder this user can write in" in file_problem(tmp_path / "no" / "x.db")
    assert not (tmp_path / "new.db").exists()


def test_a_scheme_is_named_without_its_driver():
    assert uri_scheme("postgresql+psycopg2://u@h/db") == "postgresql"
    assert uri_scheme("/a/path") == "file" and uri_scheme("sqlite:///x.db") == "sqlite"
