"""Can each store be used? Answered before anything exists, in one line, without a secret."""

from __future__ import annotations

import pytest

from orchestrator.errors import SpecError
from orchestrator.stores.checks import check_server, check_storage, check_tracking_uri
from tests.conftest import free_port


def test_a_local_store_in_a_folder_that_cannot_take_it_is_refused_and_nothing_made(tmp_path):
    assert check_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db") is None
    found = check_tracking_uri(f"sqlite:///{tmp_path}/none/mlflow.db")
    assert found.endswith("is not a folder this user can write in")
    with pytest.raises(SpecError, match="--storage: cannot use"):
        check_storage(str(tmp_path))  # a journal path that is a folder
    check_storage(f"sqlite:///{tmp_path}/optuna.db")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_scheme_and_a_silent_server_are_refused_without_their_secret():
    found = check_tracking_uri("nosuch://me:pw@h/x")
    assert "MLflow has no tracking store for 'nosuch'" in found and "pw" not in found
    server = check_server(f"http://me:pw@127.0.0.1:{free_port()}", timeout_s=2)
    assert server.startswith("cannot reach the MLflow tracking server at http://me:***@")


def test_a_database_that_does_not_answer_is_refused_in_one_line_without_its_password():
    with pytest.raises(SpecError) as err:
        check_storage(f"postgresql://u:secret@127.0.0.1:{free_port()}/optuna")
    assert str(err.value).startswith("--storage: cannot open postgresql://u:***@127.0.0.1:")
    assert "secret" not in str(err.value) and "\n" not in str(err.value)
