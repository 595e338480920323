"""The shared noise bank: the z every trial of a sweep evaluates on.

`eval_noise(n, z_dim)` is the same tensor in every trial, at every step, on every machine, so a
sample grid of trial 3 and one of trial 7 show what two generators make of the same z, and a
grid at step 400 what the same generator made of it 200 steps later. Row i's first k coordinates
depend neither on `n` nor on `z_dim`: trials that draw more samples, or have a wider z, still
share z where they overlap. It draws from a private generator and touches no global RNG.

A trainer of your own gets comparable grids by evaluating on `eval_noise(n, self.z_dim)`.
"""

from __future__ import annotations

import math

import torch

NOISE_SEED = 20_261_202  # fixed for good: changing it changes every grid and eval metric
BLOCK = 64  # rows drawn per seed: one block is one sample grid


def eval_noise(n: int, z_dim: int) -> torch.Tensor:
    """(n, z_dim) float32 standard normal noise, the same for every trial of every sweep."""
    if n < 0 or z_dim < 1:
        raise ValueError(f"eval_noise: need n >= 0 and z_dim >= 1, got n={n}, z_dim={z_dim}")
    rng = torch.Generator()
    blocks = []
    for b in range(math.ceil(n / BLOCK)):
        rng.manual_seed(NOISE_SEED + b)
        # drawn coordinate by coordinate: coordinate j of a block depends on j alone
        blocks.append(torch.randn(z_dim, BLOCK, generator=rng).T)  # (BLOCK, z_dim)
    if not blocks:
        return torch.zeros(0, z_dim)
    return torch.cat(blocks)[:n].contiguous()
