"""GAN-health pruning in a real sweep (local Ray, sqlite Optuna and MLflow): a user's trainer
that collapses onto one mode is pruned mid-run, and the reason reaches Optuna, MLflow, `status`
and the sweep page; its healthy twin completes."""

from __future__ import annotations

import sys

import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.cli import main
from orchestrator.driver.launch import launch
from orchestrator.layout import PRUNED_REASON_ATTR, RUN_ATTR, TAG_REASON
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.settings import Settings

PLUGIN = '''\
from dataclasses import dataclass

import torch

from trainers import Evaluation
from trainers.mlp_gan import MLPGANConfig, MLPGANTrainer


@dataclass(frozen=True)
class CollapsingConfig(MLPGANConfig):
    collapse: bool = False
    """Every evaluation's samples sit on the first mode: a generator collapsed to one mode.
    False: they are the data's own points, a generator as good as can be."""


class Collapsing(MLPGANTrainer):
    """Trains as the built-in MLP GAN; what it shows gansweep is decided by `collapse`."""

    Config = CollapsingConfig

    def evaluate(self):
        n = len(super().evaluate().samples)
        if self.config.collapse:
            mode = torch.tensor(self.data.means[:1].copy(), dtype=torch.float32)  # (1, 2)
            return Evaluation(samples=mode.expand(n, 2).clone())
        return Evaluation(samples=self.data.sample(n, torch.Generator().manual_seed(0)))
'''

SPEC = """\
name: collapses
dataset: ring8
trainer: collapsing:Collapsing
objective: {metric: eval/score, direction: maximize}
budget: {trials: 2, steps: 100, eval_every: 20, log_every: 10}
sampler: {name: random, seed: 0}
resources: {cpus_per_trial: 1}
fixed: {g_width: 32, d_width: 32, batch_size: 64}
enqueue: [{collapse: true}, {collapse: false}]
space:
  collapse: {type: categorical, choices: [true, false]}
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "collapsing.py").write_text(PLUGIN)
    (tmp_path / "spec.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


@pytest.mark.cluster  # a whole sweep of two small GANs (~20 s): make test-cluster
def test_a_collapsed_trial_is_pruned_with_its_reason_in_optuna_mlflow_and_status(ray_local,
                                                                                 folder):
    settings = Settings.resolve(f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db",
                                checkpoint_root=str(folder / "checkpoints"))
    stats = launch(SweepSpec.load(folder / "spec.yaml"), settings, notice=lambda m: None)
    assert (stats.pruned, stats.done, dict(stats.pruned_why)) == (1, 1, {"collapse": 1})
    trials = optuna.load_study(study_name="collapses", storage=settings.storage).get_trials()
    collapsed, healthy = sorted(trials, key=lambda t: not t.params["collapse"])
    assert collapsed.state == TrialState.PRUNED and healthy.state == TrialState.COMPLETE
    reason = collapsed.user_attrs[PRUNED_REASON_ATTR]
    # 1 mode of 8, all points in it: 1/8 * exp(-KL = ln 8) = 1/64. Warm-up 25 steps (a quarter
    # of 100): its evaluations at 40, 60 and 80 are the three in a row
    assert reason.startswith("collapse: samples under 0.25x the data's diversity for 3 "
                             "evaluations: eval/coverage 0.0156 (the data's 1) at step 80"), reason
    assert max(collapsed.intermediate_values) == 80  # stopped there: 20 of its 100 steps saved

    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(collapsed.user_attrs[RUN_ATTR])
    assert run.data.tags[TAG_REASON] == reason
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    page = parent.data.tags["mlflow.note.content"]
    assert "**Pruned** 1: collapse 1" in page and "trial-0000: collapse: samples under" in page

    status = CliRunner().invoke(main, ["status", "collapses", "--storage", settings.storage,
                                       "--wide"]).output
    assert "PRUNED: collapse: samples under 0.25x" in status, status
