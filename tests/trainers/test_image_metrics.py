"""KID, precision/recall and density/coverage against brute-force references (double loops
over the definitions in the papers) and hand-computed values."""

import itertools
import math

import numpy as np
import pytest

from trainers.image_metrics import density_coverage, kid, precision_recall, sample_metrics


def brute_radii(a, k):
    return [sorted(math.dist(p, q) for j, q in enumerate(a) if j != i)[k - 1]
            for i, p in enumerate(a)]


def in_ball(point, centre, radius):
    return math.dist(point, centre) <= radius


def brute_pr(real, fake, k):
    balls, fake_balls = list(zip(real, brute_radii(real, k), strict=True)), list(
        zip(fake, brute_radii(fake, k), strict=True))
    precision = np.mean([any(in_ball(y, x, r) for x, r in balls) for y in fake])
    recall = np.mean([any(in_ball(x, y, r) for y, r in fake_balls) for x in real])
    return precision, recall


def brute_dc(real, fake, k):
    balls = list(zip(real, brute_radii(real, k), strict=True))
    density = sum(in_ball(y, x, r) for y in fake for x, r in balls) / (k * len(fake))
    coverage = np.mean([any(in_ball(y, x, r) for y in fake) for x, r in balls])
    return density, coverage


def brute_mmd2(x, y):
    def k(a, b):
        return (np.dot(a, b) / len(a) + 1) ** 3
    m = len(x)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * m)
    return xx + yy - 2 * xy


def test_hand_computed_values_in_one_dimension():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0], [2.2], [3.0]])
    # real radii (k=1) are all 1; fake radii are 1.7, 7, 0.8, 0.8
    assert precision_recall(real, fake, k=1) == (0.75, 1.0)  # 10 lies in no real ball
    density, coverage = density_coverage(real, fake, k=1)
    assert density == pytest.approx(6 / 4) and coverage == 1.0  # 0.5, 2.2, 3 in two balls each


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_manifold_metrics_match_the_definitions_on_random_sets(seed):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(40, 3)), rng.normal(0.5, 1.3, size=(40, 3))
    assert precision_recall(real, fake) == pytest.approx(brute_pr(real, fake, 3))
    assert density_coverage(real, fake) == pytest.approx(brute_dc(real, fake, 5))


def test_identical_sets_score_perfect_fidelity_and_diversity():
    real = np.random.default_rng(0).normal(size=(200, 8))
    assert precision_recall(real, real) == (1.0, 1.0)
    density, coverage = density_coverage(real, real)
    assert coverage == 1.0 and density == pytest.approx(brute_dc(real, real, 5)[0])
    mean, _ = kid(real, real)  # subsets of one set share points: slightly negative, ~0
    assert abs(mean) < 0.1 * kid(real, real + 0.5)[0]  # a shift of half a std


def clusters(n_per, centres, rng):
    return np.concatenate([rng.normal(c, 0.1, size=(n_per, 2)) for c in centres])


def test_a_dropped_cluster_costs_recall_and_coverage_not_precision():
    rng = np.random.default_rng(0)
    centres = [(0, 0), (10, 0), (0, 10)]
    real = clusters(60, centres, rng)
    fake = clusters(90, centres[:2], rng)  # same count, one mode missing
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    assert precision > 0.9 and 0.55 < recall <= 2 / 3  # the third mode's reals: no fake near
    assert 0.55 < coverage <= 2 / 3
    assert (precision, recall) == pytest.approx(brute_pr(real, fake, 3))
    assert (density, coverage) == pytest.approx(brute_dc(real, fake, 5))


def test_a_collapsed_generator_has_no_recall_and_covers_one_ball_neighbourhood():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(100, 4))
    fake = np.repeat(real[:1], 100, axis=0)  # every sample is the first real point
    precision, recall = precision_recall(real, fake)
    assert precision == 1.0  # it is a real point
    assert recall == pytest.approx(brute_pr(real, fake, 3)[1]) and recall <= 0.05
    density, coverage = density_coverage(real, fake)
    assert (density, coverage) == pytest.approx(brute_dc(real, fake, 5))
    assert coverage <= 0.1


def test_kid_is_the_unbiased_mmd_and_unbiased_in_expectation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 4)), rng.normal(0.3, 1.0, size=(20, 4))
    scale = float(np.sqrt(np.var(x, axis=0, ddof=1).mean()))  # the reals' RMS deviation
    mean, std = kid(x, y, subset=20, subsets=3)  # every subset is the whole set
    assert std == pytest.approx(0, abs=1e-12)
    assert mean == pytest.approx(brute_mmd2(x / scale, y / scale))
    same = [kid(rng.normal(size=(100, 8)), rng.normal(size=(100, 8)), subsets=1)[0]
            for _ in range(200)]  # independent draws of one distribution
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    shifted = kid(rng.normal(size=(100, 8)), rng.normal(1.0, 1.0, size=(100, 8)))[0]
    assert shifted > 10 * np.std(same)


def test_too_few_samples_for_k_name_k_and_the_counts():
    with pytest.raises(ValueError, match="k = 5 needs more than 5 samples per set, got 5 real"):
        density_coverage(np.zeros((5, 2)), np.zeros((9, 2)))


def test_non_finite_features_give_nan_for_every_metric():
    real, fake = np.zeros((10, 2)), np.full((10, 2), np.nan)
    assert all(math.isnan(v) for v in sample_metrics(real, fake).values())
