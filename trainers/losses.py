"""GAN objectives as registries of small pure functions, keyed by the strings a search space emits.

Every loss has the same two signatures:
  d(d_real, d_fake) -> scalar   D minimises it; d_real, d_fake are raw critic outputs (B, 1)
  g(d_fake) -> scalar           G minimises it
Penalties have one signature too: penalty(d, real, fake, generator) -> scalar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def ns_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # -log D(x) - log(1 - D(G(z))), written with logits for numerical stability.
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def ns_g(d_fake: Tensor) -> Tensor:
    # Non-saturating: -log D(G(z)) keeps gradients alive while D is winning.
    return F.softplus(-d_fake).mean()


def hinge_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def wasserstein_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    return d_fake.mean() - d_real.mean()


def wasserstein_g(d_fake: Tensor) -> Tensor:
    # Also the hinge generator loss: G raises the critic's score of its samples.
    return -d_fake.mean()


def gradient_penalty(
    d: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator
) -> Tensor:
    """WGAN-GP: (||grad_x D(x)|| - 1)^2 on random interpolates of real and fake (B, 2)."""
    alpha = torch.rand(real.shape[0], 1, generator=generator).to(real.device)  # (B, 1)
    mixed = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)  # (B, 2)
    (grad,) = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)  # (B, 2)
    return ((grad.norm(dim=1) - 1.0) ** 2).mean()


@dataclass(frozen=True)
class GANLoss:
    """A D objective, a G objective and an optional penalty added to D's loss."""

    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]
    penalty: Callable[[nn.Module, Tensor, Tensor, torch.Generator], Tensor] | None = None


LOSSES: dict[str, GANLoss] = {
    "ns": GANLoss(ns_d, ns_g),
    "hinge": GANLoss(hinge_d, wasserstein_g),
    "wgan_gp": GANLoss(wasserstein_d, wasserstein_g, penalty=gradient_penalty),
}
