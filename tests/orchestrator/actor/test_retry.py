"""An actor's MLflow writes, retried with backoff when MLflow or the OS refuses them."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

from orchestrator.actor import retry


def test_a_refused_write_is_tried_again_and_the_last_failure_raised(monkeypatch):
    slept = []
    monkeypatch.setattr(retry.time, "sleep", slept.append)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("connection reset")
        return "written"
    assert retry.with_retries(flaky) == "written" and slept == [0.2, 0.4]

    def down():
        raise MlflowException("503")
    with pytest.raises(MlflowException):
        retry.with_retries(down, retries=2)
    assert slept[2:] == [0.2, 0.4]


def test_a_bug_is_not_retried():
    calls = []

    def bug():
        calls.append(1)
        raise KeyError("x")
    with pytest.raises(KeyError):
        retry.with_retries(bug)
    assert calls == [1]
