"""The trainer contract's pure parts: what counts as a trainer, the free scoring of samples, and
the conformance checker on the built-in trainers (no Ray, no MLflow)."""

import io
import math
from dataclasses import dataclass

import pytest
import torch
from PIL import Image

from trainers import TRAINERS, Evaluation, load_dataset, score
from trainers.base import as_evaluation, bad_metrics, contract_problems
from trainers.conformance import CHECKS, check_trainer


def test_every_built_in_trainer_keeps_the_contract():
    assert {name: contract_problems(cls) for name, cls in TRAINERS.items()} == {
        "mlp_gan": [], "dcgan": [], "synthetic": []}


@pytest.mark.parametrize("name, data, params", [
    ("mlp_gan", "ring8", {"g_width": 16, "d_width": 16, "clusters": 4, "ema": True}),
    ("synthetic", "none", {"x": 0.5}),
])
def test_the_built_in_trainers_pass_every_check(name, data, params):
    checks = check_trainer(TRAINERS[name], load_dataset(data), params)
    assert [c.name for c in checks] == list(CHECKS)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_contract_problems_name_what_is_missing():
    @dataclass(frozen=True)
    class Params:
        lr: float = 1e-3

    class HalfATrainer:
        Config = Params
        DATA_KIND = "pictures"

        def train_for(self, n):
            return {}

    assert contract_problems(HalfATrainer) == [
        "DATA_KIND must be one of mixture, image, none, custom, any, got 'pictures'",
        "missing method(s) evaluate, generator, state_dict, load_state_dict"]
    assert contract_problems(len) == ["not a class but a builtin_function_or_method"]


def test_metric_rules_namespaces_and_finite_numbers():
    assert bad_metrics({"train/d_loss": 0.5, "perf/steps_per_s": 3}, ("train/", "perf/")) == []
    assert bad_metrics({"d_loss": 0.5, "train/g": math.inf, "train/x": torch.tensor(1.0)},
                       ("train/",)) == ["'d_loss' is not under train/", "train/g is inf",
                                        "train/x is a Tensor, not a float"]


def test_evaluate_may_return_a_plain_dict():
    assert as_evaluation({"eval/x": 1.0}) == Evaluation(metrics={"eval/x": 1.0})
    with pytest.raises(TypeError, match="Evaluation or a dict"):
        as_evaluation(3.0)


def test_points_on_a_mixture_get_the_pacgan_metrics_and_a_scatter_plot():
    ring = load_dataset("ring8")
    on_modes = torch.tensor(ring.means).repeat(100, 1)  # (800, 2): every mode, exactly
    scored = score(Evaluation(metrics={"eval/own": 2.0, "eval/modes": -1.0}, samples=on_modes),
                   ring)
    assert scored.metrics["eval/high_quality"] == 1.0 and scored.metrics["eval/reverse_kl"] == 0
    assert scored.metrics["eval/own"] == 2.0
    assert scored.metrics["eval/modes"] == -1.0  # the trainer's own metric wins
    assert Image.open(io.BytesIO(scored.image)).size == (320, 320)
    png = b"\x89PNG\r\n\x1a\n..."
    assert score(Evaluation(samples=on_modes, image=png), ring).image == png  # the trainer's own


@pytest.mark.parametrize("evaluation, data, message", [
    (Evaluation(samples=torch.zeros(10, 3)), "ring8", r"points \(n, 2\), got \(10, 3\)"),
    (Evaluation(samples=torch.zeros(10, 2)), "none",
     "scores on mixture or image data only; this data is none"),
    (Evaluation(samples=[[0.0, 0.0]]), "ring8", "must be a torch.Tensor, got list"),
    (Evaluation({"eval/x": None}), "none", "metric eval/x must be a number, got NoneType"),
    (Evaluation(image=b"GIF89a"), "none", "Evaluation.image must be the bytes of a PNG file"),
])
def test_an_evaluation_that_does_not_fit_is_refused_naming_why(evaluation, data, message):
    with pytest.raises(ValueError, match=message):
        score(evaluation, load_dataset(data))
