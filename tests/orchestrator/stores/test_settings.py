"""A sweep's Settings: resolved once, local paths absolute; a driver running as a Ray Job is
given its stores or refused."""

from __future__ import annotations

import pytest

from orchestrator.errors import SpecError
from orchestrator.stores.settings import JOB_ENV_VAR, Settings, check_job_store


def test_settings_resolve_local_paths_to_absolute_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    settings = Settings.resolve("optuna.journal", "sqlite:///mlflow.db", checkpoint_root="ck",
                                cache_dir="cache", feature_extractor="fx.pt")
    assert settings.storage == str(tmp_path / "optuna.journal")
    assert settings.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert settings.checkpoint_root == str(tmp_path / "ck")
    assert (settings.cache_dir, settings.feature_extractor) == (
        str(tmp_path / "cache"), str(tmp_path / "fx.pt"))
    assert settings.address is None


def test_a_checkpoint_root_holding_a_credential_is_refused_and_not_shown():
    with pytest.raises(SpecError, match=r"--checkpoint-root: s3://b/x\?secret_key=\*\*\*"):
        Settings.resolve("sqlite:///o.db", "sqlite:///m.db",
                         checkpoint_root="s3://b/x?secret_key=hunter2")


def test_a_job_driver_needs_its_stores_given_and_takes_a_recorded_one(monkeypatch):
    monkeypatch.delenv("GANSWEEP_STORAGE", raising=False)
    check_job_store("--storage", None)  # not a job: the local default is fine
    monkeypatch.setenv(JOB_ENV_VAR, "{}")
    with pytest.raises(SpecError, match="--storage: this sweep runs as a Ray Job"):
        check_job_store("--storage", None)
    check_job_store("--tracking-uri", "http://mlflow:5000")  # e.g. from the launch record
    monkeypatch.setenv("GANSWEEP_STORAGE", "postgresql://db/optuna")
    check_job_store("--storage", None)
