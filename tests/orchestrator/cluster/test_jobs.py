"""What a submitted job carries, and the refusals that keep a job's sweep from going astray."""

from __future__ import annotations

import os

import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from orchestrator.cli import main
from orchestrator.cluster.jobs import (
    job_entrypoint,
    job_runtime_env,
    pinned_requirements,
    submit_sweep,
)
from orchestrator.cluster.raytoken import auth_headers, find_token, use_token_auth
from orchestrator.driver.launch import launch
from orchestrator.spec.sweep import SpecError, SweepSpec
from orchestrator.stores.redact import redact_uri
from orchestrator.stores.settings import JOB_ENV_VAR, Settings, check_job_stores
from tests.conftest import SYNTHETIC

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize("uri, shown", [
    (f"postgresql://u:pa/ss@{SECRET}@db/x", "postgresql://u:***@db/x"),  # runs to the last @
    (f"postgresql://gansweep:{SECRET}@db:5432/optuna", "postgresql://gansweep:***@db:5432/optuna"),
    (f"http://user:{SECRET}@mlflow:5000", "http://user:***@mlflow:5000"),
    (f"s3://b/ck?endpoint_override=m:9000&secret_key={SECRET}",
     "s3://b/ck?endpoint_override=m%3A9000&secret_key=***"),
    ("sqlite:////abs/optuna.db", "sqlite:////abs/optuna.db"),
    ("optuna.journal", "optuna.journal"),
])
def test_uris_are_shown_with_their_secrets_masked(uri, shown):
    assert redact_uri(uri) == shown


def test_a_job_carries_its_stores_in_env_vars_not_in_its_command_line(write_spec, tmp_path):
    spec = SweepSpec.load(write_spec(SYNTHETIC))
    storage = f"postgresql://gansweep:{SECRET}@db:5432/optuna"
    tracking = f"http://user:{SECRET}@mlflow:5000"
    entry = job_entrypoint(spec, str(tmp_path), "s3://b/ck", 3, True)
    assert entry == ("python -m orchestrator.cli launch spec.yaml --checkpoint-root s3://b/ck "
                     "--trials 3 --require-gpu")
    env = job_runtime_env(str(tmp_path), storage, tracking)
    assert env["env_vars"] == {"GANSWEEP_STORAGE": storage, "MLFLOW_TRACKING_URI": tracking}
    # a stock Ray image: gansweep's packages ride along, its dependencies pinned
    assert [p.rsplit("/", 1)[-1] for p in env["py_modules"]] == ["orchestrator", "trainers"]
    pins = dict(p.split("==") for p in env["pip"]["packages"])
    assert pins["torch"] == "2.13.0" and pins["optuna"] == "5.0.0" and pins["mlflow"] == "3.17.2"
    assert "psycopg" in pins and "ray" not in pins  # the storage's driver; Ray is the cluster's
    assert all("+" not in v for v in pins.values())  # no local labels such as torch's +cpu
    bare = job_runtime_env(str(tmp_path), storage, tracking, install=False)
    assert "pip" not in bare and "py_modules" not in bare
    # --cluster-stores: the stores are the cluster's own (a KubeRay secret); none is sent
    assert "env_vars" not in job_runtime_env(str(tmp_path), None, None)
    with pytest.raises(SpecError, match="^--cluster-stores: the stores come from the cluster"):
        submit_sweep(spec, "http://h:8265", str(tmp_path), storage=storage, tracking_uri=None,
                     checkpoint_root=None, trials=None, require_gpu=False, cluster_stores=True)
    assert "psycopg" not in dict(p.split("==") for p in pinned_requirements("sqlite:///x.db"))


def test_the_extractor_goes_with_the_job_and_one_outside_the_uploaded_folder_is_refused(
        write_spec, tmp_path):
    spec = SweepSpec.load(write_spec(SYNTHETIC))
    (tmp_path / "nets").mkdir()
    entry = job_entrypoint(spec, str(tmp_path), None, None, False, str(tmp_path / "nets/i.pt"))
    assert entry.endswith("launch spec.yaml --feature-extractor nets/i.pt")
    with pytest.raises(SpecError, match=r"^--feature-extractor: /elsewhere/x.pt: must be inside"):
        job_entrypoint(spec, str(tmp_path), None, None, False, "/elsewhere/x.pt")


def test_the_token_is_found_where_ray_looks_and_turns_token_mode_on(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_AUTH_MODE", "x")  # restored after the test, whatever it was
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_token() is None and auth_headers() == {}
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\n")
    assert find_token() == "from-home"
    (tmp_path / "t").write_text("from-path")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "t"))
    assert find_token() == "from-path"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert auth_headers() == {"Authorization": "Bearer from-env"}
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the user's explicit choice stands
    assert use_token_auth() is False
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    # ~/.ray/auth_token alone (Ray writes it for any local ray.init) is no sign the cluster
    # wants a token: a driver in token mode on a cluster without auth loses its actors
    assert use_token_auth() is False and "RAY_AUTH_MODE" not in os.environ
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "t"))  # named: token mode
    assert use_token_auth() is True and os.environ["RAY_AUTH_MODE"] == "token"


@pytest.mark.parametrize("flag", ["--storage", "--tracking-uri"])
def test_an_empty_store_flag_is_an_unset_variable_and_is_refused(write_spec, tmp_path,
                                                                 monkeypatch, flag):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["launch", str(write_spec(SYNTHETIC)), flag, ""])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gansweep: error: {flag}: empty (an unset shell variable?)")
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_storage_defaults_to_gansweep_storage(monkeypatch, tmp_path):
    monkeypatch.setenv("GANSWEEP_STORAGE", f"sqlite:///{tmp_path}/shared.db")
    assert Settings.resolve().storage == f"sqlite:///{tmp_path}/shared.db"


def test_a_job_driver_without_shared_stores_is_refused(monkeypatch, tmp_path):
    """A RayJob whose secret lacks GANSWEEP_STORAGE must not sweep into a file on the head;
    `status` run in a job is not a driver and is not refused."""
    monkeypatch.setenv(JOB_ENV_VAR, "{}")
    monkeypatch.delenv("GANSWEEP_STORAGE", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    with pytest.raises(SpecError, match=r"^--storage: this sweep runs as a Ray Job, and "
                                        r"GANSWEEP_STORAGE is not set on the cluster"):
        check_job_stores(None, None)
    monkeypatch.setenv("GANSWEEP_STORAGE", "postgresql://u@db/optuna")
    check_job_stores(None, None)
    monkeypatch.setenv("GANSWEEP_STORAGE", f"sqlite:///{tmp_path}/o.db")
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(main, ["status", "nope"])
    assert shown.exit_code == 2 and "no sweep named 'nope'" in shown.stderr


@pytest.mark.cluster  # a whole sweep, then its refused re-run (~13 s): make test-cluster
def test_a_rerun_against_an_empty_study_storage_is_refused_and_loses_nothing(
        ray_local, settings, write_spec, tmp_path):
    """The sweep's runs exist in MLflow but the study storage given is new (a RayJob re-run
    whose storage fell back to a file): no second trial-0000, no checkpoint cleared."""
    spec = SweepSpec.load(write_spec(SYNTHETIC.replace("trials: 4", "trials: 2")))
    assert launch(spec, settings, notice=lambda m: None).done == 2
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints" / "synth").iterdir())
    lost = Settings.resolve(storage=f"sqlite:///{tmp_path}/elsewhere.db",
                            tracking_uri=settings.tracking_uri,
                            checkpoint_root=settings.checkpoint_root)
    with pytest.raises(SpecError, match=r"^--storage: sweep 'synth' has no trial in sqlite:///"
                                        r".*elsewhere.db, but MLflow experiment \d+ already has "
                                        r"trial runs of it"):
        launch(spec, lost, notice=lambda m: None)
    client = MlflowClient(settings.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("synth").experiment_id],
                              "tags.`gansweep.role` = 'trial'")
    assert len(runs) == 2
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "synth").iterdir()) == checkpoints
    again = launch(spec, settings, notice=lambda m: None)  # the right storage: budget met
    assert again is None
    assert len(optuna.load_study(study_name="synth", storage=settings.storage).trials) == 2


def test_a_store_error_shows_the_uri_with_its_password_masked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["status", "x", "--storage",
                                       f"postgresql://gansweep:{SECRET}@127.0.0.1:1/optuna"])
    assert result.exit_code == 2
    assert "postgresql://gansweep:***@127.0.0.1:1/optuna" in result.stderr
    assert SECRET not in result.stderr
