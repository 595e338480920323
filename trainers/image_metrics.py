"""Sample-based GAN metrics on features, beside the Fréchet distance and in the same space.

Pure torch (float64, on the features' device), each a function of a real feature set (N, D)
and a fake one (M, D):
- `kid`: the unbiased squared MMD with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3
  (features divided by one scale, the real set's: see `_kid_scale`),
  averaged over `KID_SUBSETS` random pairs of subsets of `KID_SUBSET` (Bińkowski et al. 2018,
  "Demystifying MMD GANs"). Unbiased at any sample size, so it compares across eval_samples where
  FD, biased by 1/n, does not; its mean over subsets and their std.
- `precision_recall`: the k-NN manifolds of Kynkäänniemi et al. 2019 (k = 3): precision is the
  share of fakes inside some real sample's k-NN ball (fidelity), recall the share of reals inside
  some fake's ball (diversity: a generator that drops modes loses recall).
- `density_coverage`: Naeem et al. 2020 (k = 5), built on the real balls only, which makes them
  robust to fake outliers: density counts how many real balls hold each fake (about 1 for fakes
  distributed like the data, above 1 when they crowd dense regions); coverage is the share of
  real balls holding at least one fake.

Manifold metrics compare sets of equal size (their radii shrink with n), so both sets are cut to
`n = min(N, M)` samples, the first n of each (the eval noise is fixed, so the same fakes).
"""

from __future__ import annotations

import math

import numpy as np
import torch

KID_SUBSET = 100  # samples per KID subset; eval_samples must hold at least this many
KID_SUBSETS = 50  # subset pairs averaged
PR_K = 3  # Kynkäänniemi et al.'s k
DC_K = 5  # Naeem et al.'s k
MIN_SAMPLES = DC_K + 1  # the fewest samples per set the manifold metrics take
_TIE = 1e-9  # a point on a ball's edge is inside it (the papers' <=), despite round-off
_CHUNK = 1024  # rows of a distance matrix computed at once (10k x 10k stays ~80 MB a chunk)


def kid(real, fake, subset: int = KID_SUBSET, subsets: int = KID_SUBSETS,
        seed: int = 0) -> tuple[float, float]:
    """KID of features `real` (N, D) and `fake` (M, D): the mean and std over `subsets` draws of
    the unbiased MMD^2 between `subset` reals and `subset` fakes (fewer if a set is smaller),
    with the kernel k(x, y) = (x.y / (D s^2) + 1)^3, s the reals' RMS deviation per dimension.
    Draws come from a numpy RNG seeded `seed`: the same sets give the same value."""
    x = _features(real, "real")
    y = _features(fake, "fake", x.device)
    m = min(subset, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs >= 2 samples per set, got {len(x)} real, {len(y)} fake")
    scale = x.shape[1] * _kid_scale(x) ** 2  # x.y / scale is O(1) for the reference set
    rng = np.random.default_rng(seed)
    xi = np.stack([rng.choice(len(x), m, replace=False) for _ in range(subsets)])  # (S, m)
    yi = np.stack([rng.choice(len(y), m, replace=False) for _ in range(subsets)])
    xs, ys = x[torch.from_numpy(xi).to(x.device)], y[torch.from_numpy(yi).to(x.device)]
    k_xx = (xs @ xs.mT / scale + 1) ** 3  # (S, m, m)
    k_yy = (ys @ ys.mT / scale + 1) ** 3
    k_xy = (xs @ ys.mT / scale + 1) ** 3
    off = m * (m - 1)
    values = ((k_xx.sum((1, 2)) - k_xx.diagonal(dim1=1, dim2=2).sum(1)) / off
              + (k_yy.sum((1, 2)) - k_yy.diagonal(dim1=1, dim2=2).sum(1)) / off
              - 2 * k_xy.mean((1, 2))).cpu().numpy()  # (S,)
    return float(values.mean()), float(values.std())


def _kid_scale(reference: torch.Tensor) -> float:
    """One length for the whole feature space: the reference set's RMS deviation per dimension.
    The cubic kernel was made for features of order 1 (Inception's pooled activations); dividing
    both sets by one scalar keeps their geometry and keeps x.y / D of order 1 in any network's
    feature space, so KID stays comparable across trials of one sweep."""
    return float(reference.var(dim=0).mean().sqrt().clamp_min(1e-12))


def precision_recall(real, fake, k: int = PR_K) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls, on the first
    min(N, M) samples of each set."""
    x, y = _equal(real, fake, k)
    real_radii, fake_radii = _kth_nn(x, k), _kth_nn(y, k)  # (n,), (n,)
    precision = _balls_holding(y, x, real_radii).gt(0).double().mean()
    recall = _balls_holding(x, y, fake_radii).gt(0).double().mean()
    return float(precision), float(recall)


def density_coverage(real, fake, k: int = DC_K) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) with the real samples' k-NN balls, on the first
    min(N, M) samples of each set."""
    x, y = _equal(real, fake, k)
    radii = _kth_nn(x, k)  # (n,)
    holding = _balls_holding(y, x, radii)  # (n,): real balls holding each fake
    covered = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for start in range(0, len(y), _CHUNK):
        covered |= (torch.cdist(y[start:start + _CHUNK], x) <= radii).any(dim=0)
    return float(holding.double().sum() / (k * len(y))), float(covered.double().mean())


def _features(a, what: str, device=None) -> torch.Tensor:
    a = torch.as_tensor(a, device=device).double()
    if a.dim() != 2:
        raise ValueError(f"{what} features must be (N, D), got shape {tuple(a.shape)}")
    return a


def _equal(real, fake, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = _features(real, "real")
    y = _features(fake, "fake", x.device)
    n = min(len(x), len(y))
    if n <= k:
        raise ValueError(f"k = {k} needs more than {k} samples per set, got {len(x)} real and "
                         f"{len(y)} fake")
    return x[:n], y[:n]


def _kth_nn(a: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's distance to its k-th nearest other row of `a` (n,)."""
    radii = []
    for start in range(0, len(a), _CHUNK):
        d = torch.cdist(a[start:start + _CHUNK], a)  # (c, n): itself at distance 0
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # skips itself, at 0
    return torch.cat(radii) * (1 + _TIE)


def _balls_holding(points: torch.Tensor, centres: torch.Tensor,
                   radii: torch.Tensor) -> torch.Tensor:
    """For each point, how many balls (centres[j], radii[j]) hold it (len(points),)."""
    counts = []
    for start in range(0, len(points), _CHUNK):
        counts.append((torch.cdist(points[start:start + _CHUNK], centres) <= radii).sum(dim=1))
    return torch.cat(counts)


def sample_metrics(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Every metric above for features `real` (N, D) and `fake` (M, D), under eval/ names:
    eval/kid, eval/kid_std, eval/precision, eval/recall, eval/density, eval/coverage."""
    real, fake = torch.as_tensor(real), torch.as_tensor(fake)
    if not (torch.isfinite(real).all() and torch.isfinite(fake).all()):
        return dict.fromkeys(SAMPLE_METRICS, math.nan)
    kid_mean, kid_std = kid(real, fake)
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    return {"eval/kid": kid_mean, "eval/kid_std": kid_std, "eval/precision": precision,
            "eval/recall": recall, "eval/density": density, "eval/coverage": coverage}


SAMPLE_METRICS = ("eval/kid", "eval/kid_std", "eval/precision", "eval/recall", "eval/density",
                  "eval/coverage")
