"""MLP generator and discriminator for 2D mixtures. Knows nothing of training."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

# Activation registry: the keys are the strings a search space emits.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": partial(nn.LeakyReLU, 0.2),
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


def mlp(
    d_in: int, width: int, depth: int, d_out: int, activation: str, batchnorm: bool = False
) -> nn.Sequential:
    """`depth` hidden blocks of Linear -> [BatchNorm1d] -> activation, then a Linear head."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(d_in if i == 0 else width, width))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[activation]())
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """z (n, z_dim) float32 -> points (n, 2). A plain module: picklable, loadable without gansweep's
    trainer code beyond this class."""

    def __init__(
        self, z_dim: int, width: int, depth: int, activation: str, batchnorm: bool = False
    ):
        super().__init__()
        self.z_dim = z_dim
        self.net = mlp(z_dim, width, depth, 2, activation, batchnorm)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)  # (n, z_dim) -> (n, 2)


class Discriminator(nn.Module):
    """points (n, 2) -> raw score (n, 1): a logit for ns, a critic value for hinge and wgan_gp.

    No batchnorm: it would couple samples within a batch and breaks the WGAN-GP penalty."""

    def __init__(self, width: int, depth: int, activation: str):
        super().__init__()
        self.net = mlp(2, width, depth, 1, activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (n, 2) -> (n, 1)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def update_ema(avg: nn.Module, model: nn.Module, step: int, decay: float) -> None:
    """avg <- EMA of model's weights after G step `step` (1-based), warmed up as
    min(decay, (1 + step) / (10 + step)) so that short runs do not average in the random init.
    Buffers (batch norm running statistics) are copied: the model's own, not averaged."""
    rate = 1.0 - min(decay, (1 + step) / (10 + step))
    for a, p in zip(avg.parameters(), model.parameters(), strict=True):
        a.lerp_(p, rate)
    for a, b in zip(avg.buffers(), model.buffers(), strict=True):
        a.copy_(b)
