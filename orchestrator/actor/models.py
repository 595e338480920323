"""How a trial's generator is packaged and logged as an MLflow model, so that it loads and runs
anywhere.

Three choices, each for a user who loads the model later without gansweep:
- **Any float noise.** torch.export turns `z.to(torch.float32)` into a guard that rejects every
  other dtype, so numpy's default float64 noise (`np.random.randn`) failed. `AnyFloatNoise` casts
  with the functional `_to_copy` op, which the exported graph keeps as an op, not a guard: the
  loaded module takes float32 and float64 alike. The signature says float64 (what numpy makes and
  what MLflow's JSON serving parses), so `pyfunc.predict(np.random.randn(n, z))` works.
- **A seeded Gaussian input example**, not zeros: a generator's typical input, the same on
  every log (seed EXAMPLE_SEED), and what torch.export traces.
- **torch pinned** to the version it was exported with: a pt2 archive is read back by torch.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from orchestrator.layout import AT_LAST, TAG_MODEL_AT, model_name

EXAMPLE_SEED = 0
EXAMPLE_BATCH = 16  # > 1, so the exported batch dimension stays dynamic


class AnyFloatNoise(nn.Module):
    """`generator` behind a cast of its noise to float32 that torch.export keeps as an op."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(torch.ops.aten._to_copy.default(z, dtype=torch.float32))


def input_example(z_dim: int, n: int = EXAMPLE_BATCH) -> np.ndarray:
    """(n, z_dim) float64 standard normal noise, seeded: the same example on every log."""
    return np.random.default_rng(EXAMPLE_SEED).standard_normal((n, z_dim))


def torch_requirement() -> str:
    """`torch==2.5.1` for the running torch, its local build tag (`+cu121`) dropped: pip
    cannot resolve a local tag from PyPI, and any build of that version reads the archive."""
    return f"torch=={torch.__version__.split('+', 1)[0]}"


def log_model_kwargs(generator: nn.Module, z_dim: int) -> dict:
    """What `mlflow.pytorch.log_model` needs besides the model's name."""
    return {"pytorch_model": AnyFloatNoise(generator).eval(),
            "input_example": input_example(z_dim),
            "pip_requirements": [torch_requirement()]}


def log_model(tracking_uri: str, run_id: str, generator: nn.Module, z_dim: int,
              at: str = AT_LAST, metrics: list | tuple = ()) -> str:
    """`generator` as one of the run's MLflow PyTorch models (torch.export format, dynamic batch;
    float32 or float64 noise, a seeded input example, torch pinned), named after the run
    (`trial-0007-best`: `at` says which of its generators it is) and carrying `metrics`, the
    eval's MetricRows it was chosen at, as MLflow 3 logged-model metrics: the experiment's Models
    tab then lists each trial's generators with their scores. Returns the model's id.

    On the caller's thread: torch.export is not thread-safe, so an actor exports in a helper
    process (orchestrator/actor/exporter.py). The fluent API (a global active run) is used only
    here, because `log_model` has no client form."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    name = model_name(client.get_run(run_id).info.run_name or run_id, at)
    with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        # torch's archive writer on CPU weights: noise under the progress display
        warnings.filterwarnings("ignore", "No complete tensor found")
        logged = mlflow.pytorch.log_model(name=name, tags={TAG_MODEL_AT: at},
                                          **log_model_kwargs(generator, z_dim))
        log_model_metrics(client, run_id, logged.model_id, metrics)
    return logged.model_id


def log_model_metrics(client, run_id: str, model_id: str, rows) -> None:
    """The eval's metrics on logged model `model_id`, as the run has them: same key, value, step
    and timestamp, so the run's own history gets no second copy (MLflow writes a model's metrics
    to its run too, and keeps a row once)."""
    from mlflow.entities import Metric

    if rows:
        client.log_batch(run_id, metrics=[Metric(key, value, timestamp, step, model_id=model_id)
                                          for key, value, timestamp, step in rows])
