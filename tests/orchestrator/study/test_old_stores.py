"""Stores written by an earlier gansweep still read, promote and resume: the stores an
interrupted sweep left under the tree at commit 401cdd3 (tests/fixtures/old_stores/: trial 0
complete with its generators, trials 1 and 2 RUNNING with checkpoints, their runs KILLED), in a
folder moved since (as a user's project folder moves; `relocate` mends MLflow's locations)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from orchestrator.actor.checkpoints import TrialCheckpoints
from orchestrator.actor.worker import _rows
from orchestrator.cli import main
from orchestrator.driver.data import prepare_data
from orchestrator.layout import ATTEMPT_ATTR, PRUNED_REASON_ATTR, RUN_ATTR
from orchestrator.stores.relocate import relocate
from orchestrator.study.record import launch_record
from orchestrator.study.studies import load_study
from trainers import build_trainer

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "old_stores" / "stores-401cdd3.tar.gz"
NAME = "oldring"


@pytest.fixture
def old(tmp_path) -> Path:
    """The old stores, unpacked into a folder of their own and relocated there."""
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "STORES"
    assert [m.rewritten > 0 for m in relocate(folder / "mlflow.db")] == [True]
    return folder


def _flags(folder: Path) -> list[str]:
    return ["--storage", f"sqlite:///{folder}/optuna.db",
            "--tracking-uri", f"sqlite:///{folder}/mlflow.db"]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_an_old_sweep_reads_back_its_record_trials_and_checkpoints(old, tmp_path):
    storage = f"sqlite:///{old}/optuna.db"
    status = json.loads(_cli("status", NAME, "--json", *_flags(old)[:2]))
    assert [(t["number"], t["state"]) for t in status["trials"]] == [
        (0, "COMPLETE"), (1, "RUNNING"), (2, "RUNNING")]
    assert json.loads(_cli("best", NAME, "--json", *_flags(old)[:2]))["number"] == 0
    record = launch_record(NAME, storage)
    spec = record.sweep_spec()
    assert (spec.name, spec.trainer, spec.budget.trials) == (NAME, "mlp_gan", 3)
    settings = record.settings(storage, f"sqlite:///{old}/mlflow.db",
                               checkpoint_root=str(old / "checkpoints"))
    assert settings.checkpoint_root == str(old / "checkpoints")
    study, data = load_study(NAME, storage), prepare_data(spec, str(tmp_path)).payload
    for trial in study.trials[1:]:  # what a resume loads into the trial's new actor
        run_id = trial.user_attrs[RUN_ATTR]
        payload = TrialCheckpoints(settings.checkpoint_root, NAME, trial.number).load_latest(
            run_id)
        assert payload is not None and payload["run_id"] == run_id
        trainer = build_trainer(spec.trainer_target, payload["spec"]["params"], data, 0)
        trainer.load_state_dict(payload["trainer"])
        assert trainer.step == payload["step"] > 0
        assert all(row.key and row.step > 0 for row in _rows(payload["unwritten"]))


def test_an_old_sweeps_generator_is_promoted_and_samples(old, tmp_path):
    out = _cli("promote", NAME, "--model-name", "old-g", *_flags(old))
    assert "trial 0" in out and "alias champion -> version 1" in out
    _cli("sample", "models:/old-g@champion", "-n", "16", "-o", str(tmp_path / "s.npy"),
         "--tracking-uri", f"sqlite:///{old}/mlflow.db")
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (16, 2) and np.isfinite(samples).all()


@pytest.mark.cluster  # resumes two trials of a real GAN sweep (~40 s): make test-cluster
def test_an_old_interrupted_sweep_resumes_in_its_own_trials_and_runs(old):
    storage = f"sqlite:///{old}/optuna.db"
    before = {t.number: t.user_attrs.get(RUN_ATTR) for t in load_study(NAME, storage).trials}
    _cli("resume", NAME, *_flags(old), "--checkpoint-root", str(old / "checkpoints"))
    study = load_study(NAME, storage)
    # trial 0 had completed; the resumed two train on to the end, or until a GAN-health rule
    # (on by default, old sweeps too) stops them with its reason
    assert study.trials[0].state.name == "COMPLETE"
    for t in study.trials[1:]:
        assert t.state.name == "COMPLETE" or (
            t.state.name == "PRUNED" and t.user_attrs[PRUNED_REASON_ATTR].startswith(
                ("collapse:", "d_wins:", "stagnation:"))), (t.state, t.user_attrs)
    last = {t.user_attrs[RUN_ATTR]: max(t.intermediate_values) for t in study.trials}
    assert {t.number: t.user_attrs[RUN_ATTR] for t in study.trials} == before  # same runs
    assert [t.user_attrs.get(ATTEMPT_ATTR, 1) for t in study.trials] == [1, 2, 2]
    client = MlflowClient(f"sqlite:///{old}/mlflow.db")
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id], "tags.`gansweep.role` = 'trial'")
    assert sorted(r.info.run_id for r in runs) == sorted(before.values())  # none made anew
    for run_id in before.values():
        steps = [m.step for m in client.get_metric_history(run_id, "eval/score")]
        assert sorted(steps) == list(range(100, last[run_id] + 1, 100))  # each once, in order
        assert client.get_run(run_id).info.status == "FINISHED"
