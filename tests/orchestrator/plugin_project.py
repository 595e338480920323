"""A user's project folder for the plug-in tests: the example plug-in (examples/custom_trainer)
and broken variants of it, copied where neither the session's Ray workers nor the installed
packages know them (the `project` fixture, tests/orchestrator/conftest.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_trainer"

BROKEN = '''\
import math
import time

import torch

from my_gan.cgan import ConditionalGAN
from trainers import Evaluation


class ForgetsItsRNG(ConditionalGAN):
    """Draws noise from a private generator that its state_dict leaves out."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rng = torch.Generator().manual_seed(self.seed)

    def _sample_z(self, n):
        return torch.randn(n, self.g.z_dim, generator=self.rng)


class NaNLoss(ConditionalGAN):
    def train_for(self, n):
        return {**super().train_for(n), "train/g_loss": math.nan}


class ForgetsTheClassCoordinate(ConditionalGAN):
    """Trains on the right noise, but tells gansweep the MLP's noise width, not the width the
    exported generator takes."""

    @property
    def z_dim(self):
        return self.config.z_dim


class Slow(ConditionalGAN):
    """The example at 100 ms a step or more: time to kill its actor mid-trial, once it has
    tagged its run (its logging thread imports MLflow first)."""

    def train_for(self, n):
        time.sleep(0.1 * n)
        return super().train_for(n)


class TextMetric(ConditionalGAN):
    def evaluate(self):
        evaluation = super().evaluate()
        return Evaluation({"eval/quality": "good"}, evaluation.samples)


class ClaimsAMetric(ConditionalGAN):
    """Declares an eval/ metric of its own that evaluate() never returns."""

    METRICS = ("eval/sharpness",)


class Hangs(ConditionalGAN):
    """From step 20 on, a trial with lr_g above 9e-4 never returns from train_for (as a
    deadlocked collective or a stuck data loader does); the others train."""

    def train_for(self, n):
        while self.step >= 20 and self.config.lr_g > 9e-4:
            time.sleep(1)
        return super().train_for(n)


class Stalls(ConditionalGAN):
    """Returns from train_for without training: a trial must not wait on it forever."""

    def train_for(self, n):
        return {"train/d_loss": 0.0}
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project folder holding the example plug-in and broken variants; the cwd."""
    folder = tmp_path / "project"
    shutil.copytree(EXAMPLE / "my_gan", folder / "my_gan")
    (folder / "broken_gans.py").write_text(BROKEN)
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the folders a spec adds stay in this test
    for name in [m for m in sys.modules if m.startswith(("my_gan", "broken_gans"))]:
        monkeypatch.delitem(sys.modules, name)  # each test imports its own copy
    return folder
