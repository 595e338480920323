"""k-means for self-conditioning (Liu et al. 2020): deterministic, CPU, torch only."""

from __future__ import annotations

import torch
from torch import Tensor


def kmeans(points: Tensor, k: int, generator: torch.Generator, iters: int = 100) -> Tensor:
    """Centroids (k, d) of `points` (n, d): k-means++ seeding drawn from `generator`, then Lloyd
    steps until no point changes cluster (at most `iters`). A cluster left empty keeps its centroid.
    """
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= {n} points, got k={k}")
    first = int(torch.randint(n, (1,), generator=generator))
    centroids = points[first : first + 1].clone()  # (1, d)
    closest = torch.cdist(points, centroids).squeeze(1).pow(2)  # (n,) squared distance to nearest
    for _ in range(1, k):
        # k-means++: the next centroid is a point drawn with probability ~ squared distance
        pick = int(torch.multinomial(closest + 1e-12, 1, generator=generator))
        centroids = torch.cat([centroids, points[pick : pick + 1]])  # (c + 1, d)
        closest = torch.minimum(closest, (points - points[pick]).pow(2).sum(1))
    labels = nearest(points, centroids)  # (n,)
    for _ in range(iters):
        sums = torch.zeros_like(centroids).index_add_(0, labels, points)  # (k, d)
        counts = torch.bincount(labels, minlength=k)  # (k,)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        new = nearest(points, centroids)
        if torch.equal(new, labels):
            break
        labels = new
    return centroids


def nearest(points: Tensor, centroids: Tensor) -> Tensor:
    """Index (n,) int64 of the nearest of `centroids` (k, d) for each of `points` (n, d)."""
    return torch.cdist(points, centroids).argmin(dim=1)
