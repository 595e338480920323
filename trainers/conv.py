"""Convolutional generator and discriminator for square images (DCGAN family). Knows nothing of
training.

Both nets share one geometry: n_blocks resolution doublings between the smallest feature map
s0 = size // 2**n_blocks (at least 2x2) and the image, with base_width * 2**k channels k blocks
away from full resolution. Example, 16 px digits, n_blocks=2, base_width=64:
  G: z (n, 64) -> (n, 128, 4, 4) -> (n, 64, 8, 8) -> (n, 64, 16, 16) -> (n, 1, 16, 16)
  D: (n, 1, 16, 16) -> (n, 64, 8, 8) -> (n, 128, 4, 4) -> (n, 1)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from trainers.models import ACTIVATIONS

IMAGE_SIZES = (8, 16, 32, 64)
G_NORMS = ("batch", "none")
D_NORMS = ("spectral", "layer", "none")


def max_blocks(size: int) -> int:
    """Most resolution doublings for `size` px images such that the smallest map stays >= 2x2."""
    return int(math.log2(size)) - 1


def check_geometry(size: int, n_blocks: int) -> None:
    if size not in IMAGE_SIZES:
        raise ValueError(f"image size must be one of {IMAGE_SIZES}, got {size}")
    if not 1 <= n_blocks <= max_blocks(size):
        raise ValueError(
            f"n_blocks must be in [1, {max_blocks(size)}] for {size}x{size} images "
            f"(the smallest feature map is 2x2), got {n_blocks}"
        )


def _check_choice(value: str, choices, what: str) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {sorted(choices)}, got {value!r}")


class ConvGenerator(nn.Module):
    """z (n, z_dim) float32 -> images (n, channels, size, size) in [-1, 1].

    Linear projection to (base_width * 2**(n_blocks-1), s0, s0), then n_blocks up-blocks
    (nearest 2x upsample -> conv 3x3 -> norm -> activation) halving the width each time except the
    last, which keeps base_width, then a 3x3 conv to `channels` and tanh. A plain module: picklable.

    Upsample + conv rather than DCGAN's ConvTranspose2d k4 s2 p1: with the transposed conv, G
    collapsed to one image on 8 px digits at n_blocks=2 (s0=2) in every D setting tried; with
    upsample + conv it did not (600 steps, otherwise default DCGANConfig, CPU). On 16 px digits
    n_blocks=3 (s0=2 again) still collapsed with either block; n_blocks=2 trained with both.
    """

    def __init__(
        self,
        z_dim: int,
        channels: int,
        size: int,
        n_blocks: int,
        base_width: int,
        norm: str = "batch",
        activation: str = "relu",
    ):
        super().__init__()
        check_geometry(size, n_blocks)
        _check_choice(norm, G_NORMS, "generator norm")
        _check_choice(activation, ACTIVATIONS, "activation")
        self.z_dim, self.channels, self.size = z_dim, channels, size
        self.s0 = size // 2**n_blocks
        # widths[k]: channels at resolution s0 * 2**k; the last two are both base_width.
        self.widths = [base_width * 2 ** max(n_blocks - 1 - k, 0) for k in range(n_blocks + 1)]
        bias = norm == "none"  # batch norm's shift makes a bias redundant
        self.project = nn.Linear(z_dim, self.widths[0] * self.s0 * self.s0, bias=bias)
        self.project_act = nn.Sequential(_g_norm(norm, self.widths[0]), ACTIVATIONS[activation]())
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(self.widths[k], self.widths[k + 1], 3, padding=1, bias=bias),
                _g_norm(norm, self.widths[k + 1]),
                ACTIVATIONS[activation](),
            )
            for k in range(n_blocks)
        )
        self.to_image = nn.Conv2d(self.widths[-1], channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z).view(-1, self.widths[0], self.s0, self.s0)
        x = self.project_act(x)  # (n, base_width * 2**(n_blocks-1), s0, s0), e.g. (n, 128, 4, 4)
        for block in self.blocks:
            x = block(x)  # (n, widths[k+1], 2h, 2w): (n, 64, 8, 8), then (n, 64, 16, 16)
        return torch.tanh(self.to_image(x))  # (n, channels, size, size), e.g. (n, 1, 16, 16)


class ConvDiscriminator(nn.Module):
    """images (n, channels, size, size) -> raw score (n, 1): a logit for ns, a critic value for
    hinge and wgan_gp, a regression target for lsgan.

    n_blocks down-blocks (Conv2d k4 s2 p1 -> norm -> activation) doubling the width from
    base_width, then a linear head on the flattened (base_width * 2**(n_blocks-1), s0, s0) map.
    Norms are per sample (batch norm would couple the samples that WGAN-GP and R1 differentiate):
    "spectral" wraps every conv and the head; "layer" is GroupNorm(1, C) after every block but the
    first (as DCGAN leaves D's first layer unnormalised); "none" is plain.
    """

    def __init__(
        self,
        channels: int,
        size: int,
        n_blocks: int,
        base_width: int,
        norm: str = "spectral",
        activation: str = "leaky_relu",
    ):
        super().__init__()
        check_geometry(size, n_blocks)
        _check_choice(norm, D_NORMS, "discriminator norm")
        _check_choice(activation, ACTIVATIONS, "activation")
        self.channels, self.size = channels, size
        s0 = size // 2**n_blocks
        widths = [channels] + [base_width * 2**k for k in range(n_blocks)]
        wrap = spectral_norm if norm == "spectral" else _identity
        blocks = []
        for k in range(n_blocks):
            layers: list[nn.Module] = [wrap(nn.Conv2d(widths[k], widths[k + 1], 4, 2, 1))]
            if norm == "layer" and k > 0:
                layers.append(nn.GroupNorm(1, widths[k + 1]))
            layers.append(ACTIVATIONS[activation]())
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.head = wrap(nn.Linear(widths[-1] * s0 * s0, 1))

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)  # (n, base_width * 2**k, h/2, w/2): (n, 64, 8, 8), then (n, 128, 4, 4)
        return self.head(x.flatten(1))  # (n, base_width * 2**(n_blocks-1) * s0 * s0) -> (n, 1)


def _g_norm(norm: str, width: int) -> nn.Module:
    return nn.BatchNorm2d(width) if norm == "batch" else nn.Identity()


def _identity(module: nn.Module) -> nn.Module:
    return module
