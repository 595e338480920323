"""A finished sweep without Ray, for the promote and sample tests: a real Optuna study in sqlite,
and per trial a real MLflow run with real generators logged as an actor logs them (log_model), as a
completed trial leaves them (`trial-0000-last`, and `trial-0000-best` with its step and value)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from mlflow import MlflowClient

from orchestrator.actor.models import log_model
from orchestrator.layout import (
    AT_BEST,
    RUN_ATTR,
    TAG_BEST_STEP,
    TAG_BEST_VALUE,
    TAG_SWEEP,
    TAG_TRIAL,
)

METRIC = "eval/score"
Z_DIM = 3


@dataclass
class ToySweep:
    name: str
    storage: str
    tracking_uri: str
    study: optuna.Study
    client: MlflowClient
    experiment_id: str

    def add_trial(self, value: float, generator: torch.nn.Module | None = None,
                  best: bool = True) -> str:
        """A COMPLETE trial of objective `value` whose run logged `generator` (a small MLP of
        points by default); `best=False`: a run from before trials kept their best generator."""
        number = len(self.study.trials)
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{number:04d}",
                                     tags={TAG_SWEEP: self.name, TAG_TRIAL: str(number)})
        run_id = run.info.run_id
        generator = generator if generator is not None else points_generator(number)
        log_model(self.tracking_uri, run_id, generator, Z_DIM)
        if best:
            log_model(self.tracking_uri, run_id, generator, Z_DIM, at=AT_BEST)
            self.client.set_tag(run_id, TAG_BEST_STEP, "40")
            self.client.set_tag(run_id, TAG_BEST_VALUE, repr(value))
        self.study.add_trial(optuna.trial.create_trial(
            value=value, params={}, distributions={}, user_attrs={RUN_ATTR: run_id}))
        return run_id


def points_generator(seed: int, out: int = 2) -> torch.nn.Module:
    """z (n, Z_DIM) -> points (n, out): a real, if untrained, generator."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(Z_DIM, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, out)).eval()


class ImageGenerator(torch.nn.Module):
    """z (n, Z_DIM) -> images (n, channels, size, size) in [-1, 1]."""

    def __init__(self, channels: int = 1, size: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.shape = (channels, size, size)
        self.fc = torch.nn.Linear(Z_DIM, channels * size * size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(z)).reshape(-1, *self.shape)


def toy_sweep(folder: Path, name: str = "toy", direction: str = "maximize") -> ToySweep:
    """Sweep `name` with its stores in `folder`: the stores take several sweeps (making a store
    costs seconds, a sweep in it milliseconds)."""
    storage = f"sqlite:///{folder}/optuna.db"
    tracking_uri = f"sqlite:///{folder}/mlflow.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage, direction=direction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([METRIC])
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(name, (folder / "artifacts" / name).as_uri())
    return ToySweep(name, storage, tracking_uri, study, client, experiment_id)
