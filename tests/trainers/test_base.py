"""The trainer contract's pure parts: what counts as a trainer, the free scoring of samples, and
the conformance checker on the built-in trainers (no Ray, no MLflow)."""

import io
import math
from dataclasses import dataclass

import pytest
import torch
from PIL import Image

from trainers import (
    TRAINERS,
    Evaluation,
    MLPGANConfig,
    MLPGANTrainer,
    SyntheticTrainer,
    load_dataset,
    score,
)
from trainers.base import as_evaluation, bad_metrics, contract_problems, mutable_params
from trainers.conformance import CHECKS, changed_config, check_trainer, summary
from trainers.params import check_mutable_change


def test_every_built_in_trainer_keeps_the_contract():
    assert {name: contract_problems(cls) for name, cls in TRAINERS.items()} == {
        "mlp_gan": [], "dcgan": [], "synthetic": []}


@pytest.mark.parametrize("name, data, params", [
    ("mlp_gan", "ring8", {"g_width": 16, "d_width": 16, "clusters": 4, "ema": True}),
    ("synthetic", "none", {"x": 0.5}),
])
def test_the_built_in_trainers_pass_every_check(name, data, params):
    checks = check_trainer(TRAINERS[name], load_dataset(data), params)
    assert [c.name for c in checks] == [*CHECKS, "pbt"]
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert summary(TRAINERS[name], checks) == "10 passed, 0 failed"


def test_the_built_in_trainers_say_what_pbt_may_change():
    adversarial = ("lr_g", "lr_d", "beta1", "beta2", "gp_weight", "r1_weight", "r1_every",
                   "d_steps", "ema_decay")
    assert {name: mutable_params(cls) for name, cls in TRAINERS.items()} == {
        "mlp_gan": adversarial, "dcgan": (*adversarial, "augment"), "synthetic": ("x", "y")}


def test_changed_config_moves_each_field_to_a_value_the_config_accepts():
    config = MLPGANConfig(r1_weight=0.0)
    changed, moved = changed_config(config, ["lr_g", "beta2", "r1_weight", "d_steps", "ema",
                                             "loss"])
    assert moved == ("lr_g", "beta2", "r1_weight", "d_steps", "ema")  # a string has no other
    assert (changed.lr_g, changed.beta2, changed.r1_weight, changed.d_steps, changed.ema,
            changed.loss) == (1.25e-3, 0.999 * 0.8, 0.5, 3, True, "ns")  # beta2 < 1


class IgnoresReconfigure(MLPGANTrainer):
    """Refuses a fixed field as it should, then keeps training with its old config."""

    def reconfigure(self, config):
        check_mutable_change(self.config, config, self.MUTABLE, "ignores")


class ForgetsTheOptimizers(MLPGANTrainer):
    """Records the new config, but its Adam pair keeps the old learning rates and betas."""

    def reconfigure(self, config):
        check_mutable_change(self.config, config, self.MUTABLE, "forgets")
        self.config = config


class AcceptsAnything(MLPGANTrainer):
    def reconfigure(self, config):
        self.config = config
        self._configure_optimizers()


class VagueRefusal(MLPGANTrainer):
    def reconfigure(self, config):
        raise ValueError("not now")


@pytest.mark.parametrize("trainer, reason", [
    (IgnoresReconfigure, "state_dict()['config'] after reconfigure has lr_g 0.001 (not "
                         "0.00125): the checkpoint does not record the new config"),
    (ForgetsTheOptimizers, "after reconfigure, a trainer built with the new config and loaded "
                           "trains on differently: "),
    (AcceptsAnything, "reconfigure accepted a change of g_depth, which is not in MUTABLE"),
    (VagueRefusal, "reconfigure refused a change of g_depth (not in MUTABLE) with a ValueError "
                   "that does not name it: not now"),
])
def test_check_trainer_fails_a_reconfigure_that_does_not_keep_the_contract(trainer, reason):
    checks = check_trainer(trainer, load_dataset("ring8"), {"g_width": 8, "d_width": 8})
    assert [c.name for c in checks if not c.passed] == ["pbt"]
    assert checks[-1].detail.startswith(reason), checks[-1].detail
    assert summary(trainer, checks) == "9 passed, 1 failed"


def test_a_trainer_without_mutable_is_not_checked_for_pbt_and_the_summary_says_so():
    class NoPBT(SyntheticTrainer):
        MUTABLE = ()

    checks = check_trainer(NoPBT, None, {"x": 0.5})
    assert [c.name for c in checks] == list(CHECKS)
    assert summary(NoPBT, checks) == "9 passed, 0 failed; pbt: not supported (no MUTABLE)"


@dataclass(frozen=True)
class LearningRate:
    lr: float = 1e-3


@pytest.mark.parametrize("mutable, can_reconfigure, problem", [
    ("lr", True, "MUTABLE must be a tuple of Config field names, got 'lr'"),
    (("lr", 3), True, "MUTABLE must be a tuple of Config field names, got ('lr', 3)"),
    (("lr", "width"), True, "MUTABLE names 'width', not field(s) of Config"),
    (("lr",), False, "MUTABLE is declared but reconfigure(config) is missing"),
])
def test_contract_problems_name_a_bad_mutable(mutable, can_reconfigure, problem):
    class PBTTrainer(SyntheticTrainer):
        Config = LearningRate
        MUTABLE = mutable
        reconfigure = SyntheticTrainer.reconfigure if can_reconfigure else None

    assert contract_problems(PBTTrainer) == [problem]


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
