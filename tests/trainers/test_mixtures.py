import math

import numpy as np
import pytest
import torch

from trainers import load_dataset, mixture_metrics

PERFECT_HQ = 1.0 - math.exp(-4.5)  # P(||N(0, s^2 I_2)|| <= 3s): chi-square with 2 dof


@pytest.mark.parametrize("name, k, std", [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_exact_sampler_scores_all_modes(name, k, std):
    mixture = load_dataset(name)
    assert (mixture.n_modes, mixture.std) == (k, std)
    points = mixture.sample(2_500, torch.Generator().manual_seed(0))
    scores = mixture_metrics(points, mixture)
    assert scores["modes"] == k
    assert abs(scores["high_quality"] - PERFECT_HQ) < 0.01
    assert scores["reverse_kl"] < 0.01
    assert scores["score"] == pytest.approx(PERFECT_HQ, abs=0.02)


def test_ring8_and_grid25_means_follow_pacgan():
    ring = load_dataset("ring8").means
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0, atol=1e-6)
    grid = load_dataset("grid25").means
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert ring.dtype == grid.dtype == np.float32


def test_sample_is_deterministic_given_the_generator():
    mixture = load_dataset("ring8")
    a = mixture.sample(100, torch.Generator().manual_seed(3))
    b = mixture.sample(100, torch.Generator().manual_seed(3))
    assert a.shape == (100, 2) and a.dtype == torch.float32
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_collapse_on_one_mean_scores_one_mode_and_log_k(name):
    mixture = load_dataset(name)
    points = np.repeat(mixture.means[:1], 500, axis=0)
    scores = mixture_metrics(points, mixture)
    assert scores["modes"] == 1
    assert scores["high_quality"] == 1.0
    assert scores["reverse_kl"] == pytest.approx(math.log(mixture.n_modes))
    assert scores["score"] == scores["coverage"] == pytest.approx(1 / mixture.n_modes**2)


def test_points_far_from_every_mean_score_nothing():
    points = np.full((100, 2), 50.0, dtype=np.float32)
    scores = mixture_metrics(points, load_dataset("ring8"))
    assert scores["modes"] == 0
    assert scores["high_quality"] == 0.0
    assert scores["score"] == 0.0


def test_non_finite_points_are_never_high_quality():
    mixture = load_dataset("ring8")
    points = np.concatenate([mixture.means, np.full((8, 2), np.nan, dtype=np.float32)])
    scores = mixture_metrics(points, mixture)
    assert scores["modes"] == 8
    assert scores["high_quality"] == 0.5
    nothing = mixture_metrics(points[8:], mixture)
    assert math.isnan(nothing["reverse_kl"]) and nothing["score"] == nothing["coverage"] == 0.0


def test_score_needs_quality_not_only_a_flat_histogram():
    # points spread evenly on a ring twice the radius: every mode gets an equal share (KL 0)
    # but no point is high quality, so the score is 0
    mixture = load_dataset("ring8")
    angles = np.linspace(0, 2 * np.pi, 800, endpoint=False)
    points = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    scores = mixture_metrics(points, mixture)
    assert scores["reverse_kl"] < 0.01 and scores["score"] == 0.0


def test_coverage_ranks_a_blurred_full_grid_above_a_sharp_half_where_the_score_does_not():
    # early in training the winners cover every mode but blurred, the losers are sharp on a few:
    # the score ranks them the wrong way round, coverage (the score without sharpness) does not
    mixture = load_dataset("grid25")
    gen = torch.Generator().manual_seed(0)
    blurred = np.repeat(mixture.means, 200, axis=0) + 0.3 * torch.randn(
        25 * 200, 2, generator=gen).numpy()
    sharp_half = np.repeat(mixture.means[:12], 400, axis=0) + mixture.std * torch.randn(
        12 * 400, 2, generator=gen).numpy()
    b, s = mixture_metrics(blurred, mixture), mixture_metrics(sharp_half, mixture)
    assert b["modes"] == 25 and s["modes"] < 20
    assert b["score"] < s["score"]
    assert b["coverage"] > 0.9 > 0.5 > s["coverage"]
    for scores in (b, s):
        assert scores["coverage"] == pytest.approx(
            scores["modes"] / 25 * math.exp(-scores["reverse_kl"]))
        assert scores["score"] == pytest.approx(scores["coverage"] * scores["high_quality"])


@pytest.mark.parametrize("n", [2500, 10_000])
def test_score_noise_is_the_reverse_kl_sampling_noise_of_n_points(n):
    from trainers.mixtures import score_noise

    grid = load_dataset("grid25")
    expected = math.sqrt(2 * (25 - 1)) / (2 * n)  # KL of n draws ~ chi2(K - 1) / (2n)
    noise = score_noise(grid, n, draws=300)
    assert 0.8 * expected < noise < 1.2 * expected
    assert score_noise(grid, n, draws=300) == noise  # seeded: the same every run
