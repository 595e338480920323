"""DiffAugment (Zhao et al. 2020): differentiable augmentations of every image D sees.

D overfits a small data set within a few thousand steps; augmenting only the real images would
teach G to make augmented-looking images. DiffAugment applies the same random transforms to the
real and the fake batches D scores, in the D step and in the G step, and every transform is
differentiable, so G's gradient flows through it. A policy is a registry entry of the kind the
losses are, keyed by the string a search space emits:

  none                       the identity
  translation                shift by up to 1/8 of the image, zero-filled
  translation_cutout         then a zeroed square of half the image's side at a random place
  color_translation_cutout   first brightness, saturation and contrast jitter

Random draws come from the caller's CPU generator (one draw per image), so a trainer that passes
its private RNG resumes bitwise and matches across devices. Images are (B, C, H, W), any range.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

TRANSLATION_RATIO = 0.125  # the paper's: up to 1/8 of the side
CUTOUT_RATIO = 0.5  # the paper's: a square of half the side

Augmentation = Callable[[Tensor, torch.Generator], Tensor]


def _uniform(x: Tensor, generator: torch.Generator) -> Tensor:
    """One uniform [0, 1) per image (B, 1, 1, 1), drawn on the CPU, on x's device and dtype."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator).to(x.device, x.dtype)


def color(x: Tensor, generator: torch.Generator) -> Tensor:
    """Brightness +U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5), per image."""
    x = x + (_uniform(x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)  # over channels: a no-op for one channel
    x = (x - mean) * (_uniform(x, generator) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def translation(x: Tensor, generator: torch.Generator, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Each image shifted by up to ratio * side pixels along each axis, the gap zero-filled."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), generator=generator).to(x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), generator=generator).to(x.device)
    grid_b, grid_y, grid_x = torch.meshgrid(
        torch.arange(b, device=x.device), torch.arange(h, device=x.device),
        torch.arange(w, device=x.device), indexing="ij")  # (B, H, W) each
    grid_y = (grid_y + dy + 1).clamp(0, h + 1)  # index into the zero-padded image
    grid_x = (grid_x + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, H+2, W+2, C)
    return padded[grid_b, grid_y, grid_x].permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


def cutout(x: Tensor, generator: torch.Generator, ratio: float = CUTOUT_RATIO) -> Tensor:
    """Each image with a zeroed square of ratio * side, centred anywhere (it may be clipped)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=generator).to(x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=generator).to(x.device)
    grid_b, grid_y, grid_x = torch.meshgrid(
        torch.arange(b, device=x.device), torch.arange(ch, device=x.device),
        torch.arange(cw, device=x.device), indexing="ij")  # (B, ch, cw) each
    grid_y = (grid_y + oy - ch // 2).clamp(0, h - 1)
    grid_x = (grid_x + ox - cw // 2).clamp(0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[grid_b, grid_y, grid_x] = 0
    return x * mask.unsqueeze(1)


AUGMENTS: dict[str, tuple[Augmentation, ...]] = {
    "none": (),
    "translation": (translation,),
    "translation_cutout": (translation, cutout),
    "color_translation_cutout": (color, translation, cutout),
}


def augment(x: Tensor, policy: str, generator: torch.Generator) -> Tensor:
    """`x` (B, C, H, W) through the policy's transforms, in order; `none` returns x itself."""
    for transform in AUGMENTS[policy]:
        x = transform(x, generator)
    return x
