"""Which field of a sweep's spec changed since its launch: the first that decides what its
trials mean (trainer, dataset, objective, fixed, space), named as the spec spells it."""

from __future__ import annotations

import pytest

from orchestrator.spec.changes import first_change
from orchestrator.spec.sweep import SweepSpec
from tests.conftest import RING8_TINY


def _spec(text: str) -> SweepSpec:
    return SweepSpec.parse(text, "ring8-tiny.yaml")


@pytest.mark.parametrize("old, new, expected", [
    ("high: 1.0e-3, log: true", "high: 2.0e-3, log: true",
     ("space.lr_g.high", "was 0.001, now 0.002")),
    ("choices: [ns, wgan_gp]", "choices: [ns, wgan_gp, hinge]",
     ("space.loss.choices", "was ['ns', 'wgan_gp'], now ['ns', 'wgan_gp', 'hinge']")),
    ("  g_depth: {type: int, low: 1, high: 2}\n", "",
     ("space.g_depth", "removed")),
    ("  g_depth: {type: int, low: 1, high: 2}\n",
     "  g_depth: {type: categorical, choices: [1, 2]}\n",
     ("space.g_depth.type", "was 'int', now 'categorical'")),
    ("batch_size: 64", "batch_size: 128", ("fixed.batch_size", "was 64, now 128")),
    ("batch_size: 64}", "batch_size: 64, beta1: 0.0}", ("fixed.beta1", "was not set, now 0.0")),
    ("eval/reverse_kl", "eval/score", ("objective", "was 'eval/reverse_kl (minimize)', now "
                                                    "'eval/score (minimize)'")),
    ("dataset: ring8", "dataset: grid25", ("dataset", "was 'ring8', now 'grid25'")),
])
def test_the_first_changed_field_is_named_with_both_values(old, new, expected):
    assert old in RING8_TINY
    assert first_change(_spec(RING8_TINY), _spec(RING8_TINY.replace(old, new))) == expected


@pytest.mark.parametrize("old, new", [
    ("trials: 4", "trials: 40"),  # the budget may grow
    ("steps: 60, eval_every: 20", "steps: 120, eval_every: 40"),
    ("sampler: {name: tpe, seed: 0}", "sampler: {name: random, seed: 1}"),
    ("g_width: 32", "g_width: 32.0"),  # the same value as YAML spells it otherwise
    ("high: 1.0e-3, log: true", "high: 0.001, log: true"),
])
def test_what_does_not_change_the_trials_meaning_is_no_change(old, new):
    assert old in RING8_TINY
    assert first_change(_spec(RING8_TINY), _spec(RING8_TINY.replace(old, new))) is None


PBT = "scheduler: {name: pbt, population: 4, interval: 20}\n"


@pytest.mark.parametrize("old, new, expected", [
    ("", PBT, ("scheduler", "was not set, now 'pbt'")),
    (PBT, "", ("scheduler", "was 'pbt', now not set")),
    (PBT, PBT.replace("interval: 20", "interval: 40"), ("scheduler.interval", "was 20, now 40")),
    (PBT, PBT.replace("20}", "20, mutable: [lr_g, gp_weight]}"), None),  # the default, written
    (PBT, PBT.replace("20}", "20, mutable: [lr_g]}"),
     ("scheduler.mutable", "was ['lr_g', 'gp_weight'], now ['lr_g']")),
    (PBT, PBT.replace("20}", "20, perturb: [0.5, 2.0]}"),
     ("scheduler.perturb", "was [0.8, 1.2], now [0.5, 2.0]")),
])
def test_turning_pbt_on_or_off_or_changing_its_rules_is_a_change(old, new, expected):
    assert first_change(_spec(RING8_TINY + old), _spec(RING8_TINY + new)) == expected
