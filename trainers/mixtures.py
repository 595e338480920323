"""2D Gaussian mixtures and their metrics, following the PacGAN protocol exactly.

ring8: 8 Gaussians evenly spaced on the unit circle, std 0.01.
grid25: 25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True, eq=False)
class Mixture:
    """An equal-weight isotropic Gaussian mixture in 2D."""

    name: str
    means: np.ndarray  # (K, 2) float32
    std: float
    n_eval: int = 2_500  # points a trainer generates per evaluation (PacGAN protocol: 2,500)

    @property
    def n_modes(self) -> int:
        return int(self.means.shape[0])

    @property
    def extent(self) -> float:
        """Largest absolute coordinate of any mean: plots and axes are sized from it."""
        return float(np.abs(self.means).max())

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 2) float32: a uniform mode per point plus Gaussian noise, drawn from `generator`."""
        means = torch.tensor(self.means)  # (K, 2); a copy: Ray shares numpy read-only
        modes = torch.randint(self.n_modes, (n,), generator=generator)  # (n,)
        noise = torch.randn(n, 2, generator=generator)  # (n, 2)
        return means[modes] + self.std * noise  # (n, 2)


def ring8() -> Mixture:
    angles = 2.0 * np.pi * np.arange(8) / 8
    means = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    return Mixture("ring8", means, 0.01)


def grid25() -> Mixture:
    axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    xx, yy = np.meshgrid(axis, axis, indexing="ij")
    means = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    return Mixture("grid25", means, 0.05)


def mixture_metrics(points: np.ndarray | torch.Tensor, mixture: Mixture) -> dict:
    """PacGAN metrics of generated `points` (n, 2) against `mixture`.

    modes: number of modes with at least one high-quality point.
    high_quality: fraction of points within 3 std (Euclidean) of their nearest mean.
    reverse_kl: KL(histogram of all points over their nearest mean || uniform over K).
    score: modes/K * high_quality * exp(-reverse_kl), one number to maximize that needs all
        three at once (a perfect sampler scores ~0.989; a low KL alone, from points spread
        between the modes, does not score).
    coverage: modes/K * exp(-reverse_kl), the score without its sharpness term: how many modes
        are reached, and how evenly, however blurred. A GAN covers the modes before it sharpens
        them, so early in training it ranks trials differently from the score. (Pruning grid25
        on it at 1,000 steps did worse than on the score, though: small networks cover every
        mode early and stay blurred.)
    """
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    means = mixture.means.astype(np.float64)
    k = mixture.n_modes
    # Non-finite points (a diverged G) belong to no mode and are never high quality.
    finite = np.isfinite(points).all(axis=1)
    dists = np.linalg.norm(points[finite, None, :] - means[None, :, :], axis=2)  # (n_finite, K)
    nearest = dists.argmin(axis=1) if len(dists) else np.zeros(0, dtype=np.int64)
    good = dists.min(axis=1) <= 3.0 * mixture.std if len(dists) else np.zeros(0, dtype=bool)
    counts = np.bincount(nearest, minlength=k).astype(np.float64)  # (K,)
    n = len(points)
    modes = int(np.unique(nearest[good]).size)
    high_quality = float(good.sum() / n) if n else 0.0
    reverse_kl = _kl_to_uniform(counts)
    coverage = modes / k * math.exp(-reverse_kl) if math.isfinite(reverse_kl) else 0.0
    return {"modes": modes, "high_quality": high_quality, "reverse_kl": reverse_kl,
            "score": coverage * high_quality, "coverage": coverage}


def score_noise(mixture: Mixture, n: int, draws: int = 500, seed: int = 0) -> float:
    """Standard deviation of `score` over `draws` evaluations on n points of a generator that is
    perfect but for chance: every point on a mode's mean (all high quality), its mode drawn with
    the mixture's equal weights. What is left is the sampling noise of the reverse-KL term, about
    sqrt(2 (K - 1)) / (2 n): two generators whose scores on n points differ by less than this
    cannot be told apart by one evaluation."""
    generator = torch.Generator().manual_seed(seed)
    means = torch.tensor(mixture.means)  # (K, 2)
    scores = [
        mixture_metrics(means[torch.randint(mixture.n_modes, (n,), generator=generator)],
                        mixture)["score"]
        for _ in range(draws)
    ]
    return float(np.std(scores, ddof=1))


def _kl_to_uniform(counts: np.ndarray) -> float:
    """sum_k p_k log(p_k K), with 0 log 0 = 0; NaN when there is no finite point at all."""
    total = counts.sum()
    if total == 0:
        return math.nan
    p = counts[counts > 0] / total
    return float(np.sum(p * np.log(p * len(counts))))
