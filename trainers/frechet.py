"""Fréchet distance between Gaussian fits of two feature sets, and class-histogram metrics.

numpy only (no scipy): tr((S1 S2)^{1/2}) is computed as the sum of square roots of the
eigenvalues of sqrt(S1) S2 sqrt(S1), a symmetric PSD matrix with the same spectrum as S1 S2, so
`eigvalsh` applies and there is no complex `sqrtm` to clean up.
"""

from __future__ import annotations

import math

import numpy as np

KL_EPS = 1e-6  # added to the real histogram's probabilities: a class never seen keeps KL finite


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D), both float64, of `features` (N, D), N >= 2."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2, got shape {x.shape}")
    mu = x.mean(axis=0)  # (D,)
    centered = x - mu  # (N, D)
    sigma = centered.T @ centered / (x.shape[0] - 1)  # (D, D)
    return mu, sigma


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray,
                     mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}), >= 0; NaN on non-finite input."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if not all(np.isfinite(a).all() for a in (mu1, s1, mu2, s2)):
        return math.nan
    root1 = _psd_sqrt(s1)  # (D, D)
    inner = root1 @ s2 @ root1  # (D, D), PSD, same eigenvalues as S1 S2
    eigvals = np.linalg.eigvalsh((inner + inner.T) / 2)  # symmetrize away round-off
    trace_sqrt = np.sqrt(np.clip(eigvals, 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix; tiny negative eigenvalues (round-off) become 0."""
    eigvals, eigvecs = np.linalg.eigh((sigma + sigma.T) / 2)
    return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def class_coverage(pred: np.ndarray, n_classes: int) -> float:
    """Fraction of the `n_classes` classes predicted at least once in `pred` (N,) int."""
    pred = np.asarray(pred, dtype=np.int64).ravel()
    return float(np.unique(pred[(pred >= 0) & (pred < n_classes)]).size / n_classes)


def class_kl(pred: np.ndarray, real_hist: np.ndarray) -> float:
    """KL(histogram of `pred` || `real_hist`), both over K classes; 0 log 0 = 0.

    `real_hist` (K,) may hold counts or probabilities. KL_EPS is added to its probabilities so a
    predicted class that never occurs in the real data costs a large but finite amount.
    """
    real = np.asarray(real_hist, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.int64).ravel()
    if pred.size == 0:
        return math.nan
    p = np.bincount(pred, minlength=real.size)[: real.size].astype(np.float64) / pred.size
    q = real / real.sum() + KL_EPS
    q /= q.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))
