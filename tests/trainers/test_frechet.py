import math

import numpy as np
import pytest
import torch
from torch import nn

from trainers.feature_net import (
    ImageEvaluator,
    feature_net_from_state,
    feature_net_state,
    fit_feature_net,
    net_id,
)
from trainers.frechet import class_coverage, class_kl, frechet_distance, gaussian_stats
from trainers.image_data import to_float

# --- Fréchet distance ---------------------------------------------------------------------------


def _random_psd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_gaussian_stats_are_float64_mean_and_unbiased_covariance():
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    mu, sigma = gaussian_stats(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(axis=0))
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False))


def test_fd_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).normal(size=(500, 16)) @ np.random.default_rng(2).normal(
        size=(16, 16))
    mu, sigma = gaussian_stats(x)
    assert frechet_distance(mu, sigma, mu, sigma) <= 1e-6 * np.trace(sigma)


def test_fd_matches_closed_form_for_diagonal_covariances():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_fd_matches_independent_computation_for_full_covariances():
    rng = np.random.default_rng(3)
    d = 8
    s1, s2 = _random_psd(rng, d), _random_psd(rng, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # S1 S2 is similar to a PSD matrix: its eigenvalues are real and >= 0 (up to round-off).
    eig = np.linalg.eigvals(s1 @ s2)
    trace_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(got, rel=1e-9)


def test_fd_of_commuting_covariances_is_the_eigenvalue_closed_form():
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a, b = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    zero = np.zeros(5)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(zero, s1, zero, s2) == pytest.approx(expected, rel=1e-9)


def test_fd_handles_singular_covariances_and_never_goes_negative():
    x = np.random.default_rng(5).normal(size=(10, 32))  # N < D: rank-deficient covariance
    mu, sigma = gaussian_stats(x)
    value = frechet_distance(mu, sigma, mu, sigma)
    assert 0.0 <= value < 1e-6


def test_fd_is_nan_on_non_finite_statistics():
    mu, sigma = np.zeros(2), np.eye(2)
    assert math.isnan(frechet_distance(np.array([np.nan, 0.0]), sigma, mu, sigma))


# --- class metrics ------------------------------------------------------------------------------


def test_class_coverage_counts_classes_predicted_at_least_once():
    assert class_coverage(np.array([0, 0, 2, 2, 2]), 4) == 0.5
    assert class_coverage(np.array([3, 2, 1, 0]), 4) == 1.0


def test_class_kl_of_matching_histogram_is_zero_and_of_one_class_is_log_k():
    real = np.array([10, 10, 10, 10])
    assert class_kl(np.array([0, 1, 2, 3] * 5), real) == pytest.approx(0.0, abs=1e-5)
    assert class_kl(np.zeros(20, dtype=int), real) == pytest.approx(math.log(4), abs=1e-5)
    # p = (3/4, 1/4), q = (1/2, 1/2)
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    got = class_kl(np.array([0, 0, 0, 1]), np.array([0.5, 0.5]))
    assert got == pytest.approx(expected, abs=1e-5)


def test_class_kl_stays_finite_when_a_predicted_class_never_occurs_in_real_data():
    value = class_kl(np.array([0, 1, 2]), np.array([5, 5, 0]))
    assert math.isfinite(value) and value > 1.0


# --- feature net and evaluator ------------------------------------------------------------------


def _patterns() -> np.ndarray:
    """(4, 8, 8) float in [0, 1]: horizontal stripes, vertical stripes, checkerboard, a blob."""
    i, j = np.mgrid[:8, :8]
    blob = ((i - 3.5) ** 2 + (j - 3.5) ** 2 < 6).astype(float)
    return np.stack([i % 2, j % 2, (i + j) % 2, blob]).astype(float)


def _labeled_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 (n, 1, 8, 8) images of 4 classes, each a pattern plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    x = _patterns()[labels] * 0.8 + 0.1 + rng.normal(0, 0.15, size=(n, 8, 8))
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)[:, None], labels


@pytest.fixture(scope="module")
def data():
    train, train_labels = _labeled_images(400, seed=0)
    held, held_labels = _labeled_images(200, seed=1)
    return train, train_labels, held, held_labels


@pytest.fixture(scope="module")
def trained(data):
    """The state of a classifier feature net fitted on the training patterns, as cached."""
    train, labels, _, _ = data
    return feature_net_state(fit_feature_net(train, labels, 4))


def test_fitting_twice_with_the_same_seed_gives_identical_weights(data):
    train, labels, _, _ = data
    rng_before = torch.get_rng_state()
    a = feature_net_state(fit_feature_net(train, labels, 4, seed=3, epochs=2))
    b = feature_net_state(fit_feature_net(train, labels, 4, seed=3, epochs=2))
    c = feature_net_state(fit_feature_net(train, labels, 4, seed=4, epochs=2))
    assert net_id(a) == net_id(b) != net_id(c)
    assert all(torch.equal(a["weights"][k], v) for k, v in b["weights"].items())
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is left alone


def test_state_round_trips_and_the_classifier_separates_the_classes(data, trained):
    state = trained
    net = feature_net_from_state(state)
    _, _, held, held_labels = data
    with torch.no_grad():
        x = to_float(held)
        assert net.features(x).shape == (200, 64)
        accuracy = (net.logits(x).argmax(1).numpy() == held_labels).mean()
    assert accuracy > 0.95


def test_evaluator_scores_real_images_near_zero_and_constant_images_far(data, trained):
    state = trained
    train, _, held, held_labels = data
    evaluator = ImageEvaluator(state, held, held_labels, 4, n_eval=300)
    itself = evaluator.evaluate_images(to_float(held))
    floor = evaluator.floor(train)
    assert floor == evaluator.floor(train)  # a fixed subset of n_eval images
    assert set(itself) == {"eval/fd", "eval/class_coverage", "eval/class_kl", "eval/kid",
                           "eval/kid_std", "eval/precision", "eval/recall", "eval/density",
                           "eval/coverage"} == set(floor)
    assert itself["eval/fd"] < 1e-3 * floor["eval/fd"] and itself["eval/class_coverage"] == 1.0
    assert itself["eval/class_kl"] < 0.01
    assert itself["eval/precision"] == itself["eval/recall"] == itself["eval/coverage"] == 1.0
    assert floor["eval/precision"] > 0.8 and floor["eval/recall"] > 0.8  # fresh draws, same data
    assert floor["eval/coverage"] > 0.8 and 0.7 < floor["eval/density"] < 1.3
    constant = evaluator.evaluate_images(torch.zeros(300, 1, 8, 8))
    assert constant["eval/fd"] > 20 * max(floor["eval/fd"], 1e-3)
    assert constant["eval/class_coverage"] <= 0.25
    assert constant["eval/class_kl"] > 1.0
    assert constant["eval/kid"] > 20 * abs(floor["eval/kid"]) + 10 * floor["eval/kid_std"]
    assert constant["eval/recall"] <= 0.05 and constant["eval/coverage"] <= 0.25  # collapsed


def test_evaluator_returns_nan_for_non_finite_fakes(data, trained):
    state = trained
    _, _, held, held_labels = data
    fakes = torch.zeros(10, 1, 8, 8)
    fakes[0, 0, 0, 0] = float("nan")
    metrics = ImageEvaluator(state, held, held_labels, 4).evaluate_images(fakes)
    assert all(math.isnan(v) for v in metrics.values())


class _MeanPool(nn.Module):
    """A stand-in Inception: (N, C, H, W) -> (N, 4) means over 2x2 quadrants."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # TorchScript is the format
def test_evaluator_adds_fid_when_given_a_torchscript_extractor(data, trained, tmp_path):
    state = trained
    _, _, held, held_labels = data
    path = tmp_path / "extractor.pt"
    torch.jit.script(_MeanPool()).save(str(path))
    evaluator = ImageEvaluator(state, held, held_labels, 4, extractor=path.read_bytes())
    itself = evaluator.evaluate_images(to_float(held))
    constant = evaluator.evaluate_images(torch.zeros(100, 1, 8, 8))
    assert itself["eval/fid"] < 1e-9 < constant["eval/fid"]


def test_unlabeled_data_gets_an_autoencoder_and_the_metrics_without_classes(data):
    train, _, held, _ = data
    state = feature_net_state(fit_feature_net(train, None, 0))
    assert net_id(state).startswith("ae32-") and state["kind"] == "autoencoder"
    evaluator = ImageEvaluator(state, held, None, 0)
    with pytest.raises(TypeError):
        feature_net_from_state(state).logits(to_float(held[:2]))
    itself = evaluator.evaluate_images(to_float(held))
    floor = evaluator.floor(train)
    constant = evaluator.evaluate_images(torch.zeros(200, 1, 8, 8))
    assert set(itself) == set(floor) == {"eval/fd", "eval/kid", "eval/kid_std", "eval/precision",
                                         "eval/recall", "eval/density", "eval/coverage"}
    assert itself["eval/fd"] < 1e-3 * floor["eval/fd"]
    assert constant["eval/recall"] <= 0.05
    assert constant["eval/fd"] > 100 * floor["eval/fd"]


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_scoring_runs_the_feature_net_and_the_users_extractor_on_the_trials_device(
        data, trained, tmp_path):
    """A trial on a GPU scores there: score(..., device) builds the evaluator (classifier and
    the user's FID extractor) on that device. "cpu:0" stands in for "cuda" on a CPU machine:
    it is a distinct device value that must travel all the way down."""
    from trainers.base import Evaluation
    from trainers.image_data import ImageDataset
    from trainers.image_task import ImageTask
    from trainers.scoring import score

    state = trained
    train, train_labels, held, held_labels = data
    path = tmp_path / "extractor.pt"
    torch.jit.script(_MeanPool()).save(str(path))
    task = ImageTask(ImageDataset("patterns", train, train_labels, held, held_labels, 4), state,
                     path.read_bytes(), n_eval=100)
    scored = score(Evaluation(samples=to_float(held[:100])), task, device="cpu:0")
    assert "eval/fid" in scored.metrics and "eval/fd" in scored.metrics
    on = task.evaluator("cpu:0")
    assert on.device == torch.device("cpu", 0)
    assert task.evaluator("cpu:0") is on  # built once per process and device
    assert task.evaluator("cpu").device == torch.device("cpu")


@pytest.mark.parametrize("samples, message", [
    (torch.full((20, 1, 8, 8), 255.0), r"must be images in \[-1, 1\], as the data is given to the "
                                       r"trainer, got values in \[255, 255\]"),
    (torch.zeros(20, 3, 8, 8), r"must be images \(n >= 2, 1, 8, 8\) in \[-1, 1\], got \(20, 3, 8"),
])
def test_images_the_metrics_cannot_read_are_refused_naming_why(data, trained, samples, message):
    """A plug-in's evaluate() returning [0, 255] pixels or the wrong shape: one line, as
    `gansweep check-trainer` and a trial's fail reason show it."""
    from trainers.base import Evaluation
    from trainers.image_data import ImageDataset
    from trainers.image_task import ImageTask
    from trainers.scoring import score

    train, labels, held, held_labels = data
    task = ImageTask(ImageDataset("patterns", train, labels, held, held_labels, 4), trained,
                     n_eval=100)
    with pytest.raises(ValueError, match=message):
        score(Evaluation(samples=samples), task)
    assert score(Evaluation(samples=to_float(held[:100])), task).metrics["eval/recall"] > 0.5
