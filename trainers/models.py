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


class ClusterGenerator(nn.Module):
    """A self-conditioned generator (Liu et al. 2020): z (n, z_dim) float32 -> points (n, 2),
    where the last coordinate of z picks one of the real data's clusters with the clusters' real
    frequencies (through the normal CDF), and the MLP maps the other coordinates and that cluster
    (one-hot) to a point. Like Generator, a plain module fed with Gaussian noise alone."""

    def __init__(
        self, z_dim: int, width: int, depth: int, activation: str, batchnorm: bool,
        weights: Tensor,
    ):
        super().__init__()
        self.n_clusters = int(weights.shape[0])
        self.z_dim = z_dim + 1  # the noise it takes: z_dim for the MLP, one to pick a cluster
        # a cluster is the number of cumulative weights below the uniform that z's last picks
        self.register_buffer("bounds", torch.cumsum(weights, 0)[:-1].float())  # (K - 1,)
        self.register_buffer("codes", torch.arange(self.n_clusters))  # (K,)
        self.net = mlp(z_dim + self.n_clusters, width, depth, 2, activation, batchnorm)

    def cluster(self, z: Tensor) -> Tensor:
        """The cluster (n,) int64 that noise z (n, z_dim) picks."""
        uniform = torch.special.ndtr(z[:, -1])  # (n,) in (0, 1)
        return (uniform[:, None] > self.bounds).sum(dim=1)  # (n, K - 1) -> (n,)

    def decode(self, z: Tensor, cluster: Tensor) -> Tensor:
        """Points (n, 2) for MLP noise z (n, z_dim - 1) in clusters (n,)."""
        onehot = (cluster[:, None] == self.codes).to(z.dtype)  # (n, K)
        return self.net(torch.cat([z, onehot], dim=1))  # (n, z_dim - 1 + K) -> (n, 2)

    def forward(self, z: Tensor) -> Tensor:
        return self.decode(z[:, :-1], self.cluster(z))  # (n, z_dim) -> (n, 2)


class Discriminator(nn.Module):
    """points (n, 2) -> raw score (n, 1): a logit for ns, a critic value for hinge and wgan_gp.
    With n_clusters, also told each point's cluster (n,) int64, one-hot beside the point.

    No batchnorm: it would couple samples within a batch and breaks the WGAN-GP penalty."""

    def __init__(self, width: int, depth: int, activation: str, n_clusters: int = 0):
        super().__init__()
        self.n_clusters = n_clusters
        self.net = mlp(2 + n_clusters, width, depth, 1, activation)

    def forward(self, x: Tensor, cluster: Tensor | None = None) -> Tensor:
        if self.n_clusters:
            onehot = nn.functional.one_hot(cluster, self.n_clusters).to(x.dtype)  # (n, K)
            x = torch.cat([x, onehot], dim=1)  # (n, 2 + K)
        return self.net(x)  # (n, 2 [+ K]) -> (n, 1)


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
