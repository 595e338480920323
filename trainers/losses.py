"""GAN objectives as registries of small pure functions, keyed by the strings a search space emits.

Every loss has the same two signatures:
  d(d_real, d_fake) -> scalar   D minimises it; d_real, d_fake are raw critic outputs (B, 1)
  g(d_fake) -> scalar           G minimises it
Penalties have one signature too: penalty(d, real, fake, generator) -> scalar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

Critic = Callable[[Tensor], Tensor]
"""D as the penalties call it: the module, or the module bound to the batch's clusters."""


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


def lsgan_d(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # Least squares (Mao et al. 2017, a=0, b=c=1): regress real scores to 1 and fake ones to 0.
    return 0.5 * ((d_real - 1.0) ** 2).mean() + 0.5 * (d_fake**2).mean()


def lsgan_g(d_fake: Tensor) -> Tensor:
    # G pulls the scores of its samples towards the real target 1.
    return 0.5 * ((d_fake - 1.0) ** 2).mean()


def d_accuracy(d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
    """How well D tells one batch's real (B, 1) from its fake (B, 1) scores: the share of real
    scored above, and of fake below, the midpoint of the two means (any loss: a Wasserstein
    critic has no 0.5 line). Both near 1 for long: D wins, and G's gradients carry little."""
    with torch.no_grad():
        mid = 0.5 * (d_real.mean() + d_fake.mean())
        return (d_real > mid).float().mean(), (d_fake < mid).float().mean()


def gradient_penalty(
    d: Critic, real: Tensor, fake: Tensor, generator: torch.Generator
) -> Tensor:
    """WGAN-GP: (||grad_x D(x)|| - 1)^2 on random interpolates of real and fake (B, ...).

    Points (B, 2) or images (B, C, H, W): one alpha per sample, the norm over all its features.
    """
    alpha = torch.rand(real.shape[0], 1, generator=generator).to(real.device)  # (B, 1)
    alpha = alpha.view(-1, *[1] * (real.dim() - 1))  # (B, 1) for points, (B, 1, 1, 1) for images
    mixed = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)  # like real
    (grad,) = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)  # like real
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def r1_penalty(d: Critic, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
    """R1 (Mescheder et al. 2018): E||grad_x D(x)||^2 on real data only, any shape (B, ...).

    Unweighted; the caller adds r1_weight / 2 times it to D's loss. `fake` and `generator` are
    unused: the argument list is the penalty signature.
    """
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)  # like real
    return grad.pow(2).flatten(1).sum(dim=1).mean()


class Means:
    """Running means of named loss terms, each over the times it was added (a lazy R1 is not
    added every step). Floats or device tensors: summing tensors does not synchronise."""

    def __init__(self) -> None:
        self._sums: dict[str, Any] = {}
        self._counts: dict[str, int] = {}

    def add(self, terms: dict[str, Any]) -> None:
        for key, value in terms.items():
            self._sums[key] = self._sums[key] + value if key in self._sums else value
            self._counts[key] = self._counts.get(key, 0) + 1

    def means(self) -> dict[str, Any]:
        return {key: total / self._counts[key] for key, total in self._sums.items()}


def r1_due(weight: float, every: int, d_step: int) -> bool:
    """Whether D step `d_step` (0-based, counted over the whole run) adds the R1 penalty: with
    lazy regularization (StyleGAN2) every `every`-th step does, weighted `every` times."""
    return weight > 0 and d_step % every == 0


@dataclass(frozen=True)
class GANLoss:
    """A D objective, a G objective and an optional penalty added to D's loss."""

    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]
    penalty: Callable[[Critic, Tensor, Tensor, torch.Generator], Tensor] | None = None


LOSSES: dict[str, GANLoss] = {
    "ns": GANLoss(ns_d, ns_g),
    "hinge": GANLoss(hinge_d, wasserstein_g),
    "wgan_gp": GANLoss(wasserstein_d, wasserstein_g, penalty=gradient_penalty),
    "lsgan": GANLoss(lsgan_d, lsgan_g),
}
