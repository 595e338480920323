"""A trial's generator as an MLflow model, logged on a real sqlite store and loaded back as a
user would, without gansweep."""

from __future__ import annotations

import mlflow
import numpy as np
import torch

from orchestrator.actor.models import input_example, log_model, torch_requirement


def test_a_self_conditioned_generator_loads_back_from_mlflow_with_any_batch(run):
    from trainers import build_trainer, load_dataset

    client, run_id = run
    trainer = build_trainer("mlp_gan", {"clusters": 8, "g_width": 16}, load_dataset("grid25"), 0)
    generator = trainer.generator()
    model_id = log_model(client.tracking_uri, run_id, generator, trainer.z_dim)  # a batch of 16
    mlflow.set_tracking_uri(client.tracking_uri)
    loaded = mlflow.pytorch.load_model(f"models:/{model_id}")
    z = torch.randn(100, trainer.z_dim)
    with torch.no_grad():
        assert torch.equal(loaded(z), generator(z))  # the cluster draw is part of the model


def test_the_noise_example_is_seeded_gaussian_and_torch_is_pinned_without_its_build_tag():
    example = input_example(5)
    assert example.shape == (16, 5) and example.dtype == np.float64
    np.testing.assert_array_equal(example, input_example(5))
    assert abs(example.mean()) < 1 and example.std() > 0.5  # noise, not zeros
    assert torch_requirement() == f"torch=={torch.__version__.split('+')[0]}"
