"""PBT's exploit / explore decision as a table: who copies whom, what changes, quantile edges,
ties, members without a score; and the same decisions again for a resumed driver."""

from __future__ import annotations

import random

import pytest

from orchestrator.driver.pbt import (
    Member,
    explore,
    perturbed,
    plan_round,
    quantile_size,
    resample,
    round_rng,
)
from orchestrator.spec.space import Param

LR = Param("lr", "float", 1e-4, 1e-2, log=True)
STEPS = Param("d_steps", "int", 1, 4)
WIDTH = Param("width", "categorical", choices=(32, 64, 128))
SPACE = (LR, STEPS, WIDTH)


def _members(values, params=None) -> list[Member]:
    return [Member(i, v, dict(params or {"lr": 1e-3, "d_steps": 2, "width": 64}))
            for i, v in enumerate(values)]


def _plan(values, quantile=0.25, maximize=False, rng=None, resample_probability=0.0):
    plans = plan_round(_members(values), quantile, maximize, SPACE, ("lr",), (0.8, 1.2),
                       resample_probability, rng or random.Random(0))
    return {p.recipient: p.donor for p in plans}


@pytest.mark.parametrize("n, quantile, size", [
    (2, 0.25, 1), (4, 0.25, 1), (5, 0.25, 2), (8, 0.25, 2), (8, 0.5, 4), (3, 0.5, 1),
    (10, 0.01, 1),
])
def test_the_quantile_is_ceil_of_n_times_q_and_never_more_than_half(n, quantile, size):
    assert quantile_size(n, quantile) == size


@pytest.mark.parametrize("values, quantile, maximize, copies", [
    # minimize: member 3 (worst) copies member 0 (best); the middle is left alone
    ([0.1, 0.2, 0.3, 0.4], 0.25, False, {3: 0}),
    # maximize turns it round
    ([0.1, 0.2, 0.3, 0.4], 0.25, True, {0: 3}),
    # two of eight in each quantile: members 6 and 7 copy from {0, 1}
    ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], 0.25, False, {6: {0, 1}, 7: {0, 1}}),
    # quantile 0.5 of two: the worse copies the better
    ([0.5, 0.1], 0.5, False, {0: 1}),
    # all tied: nobody is worse than a donor, nobody copies
    ([0.3, 0.3, 0.3, 0.3], 0.25, False, {}),
    # the bottom members tie the worst of the top: left alone
    ([0.1, 0.3, 0.3, 0.3], 0.5, False, {}),
    # only the one truly worse copies
    ([0.1, 0.3, 0.3, 0.4], 0.5, False, {3: {0, 1}}),
    # a diverged member copies even outside the bottom quantile, besides the worst scored one
    ([0.1, None, 0.3, 0.4, 0.5, 0.2, 0.6, 0.7], 0.125, False, {1: 0, 7: 0}),
    # every member but one diverged: all copy the one left
    ([None, 0.4, None], 0.25, False, {0: 1, 2: 1}),
    # nobody has a score: nobody to copy from
    ([None, None], 0.25, False, {}),
    # NaN counts as no score; the worst scored member copies too
    ([float("nan"), 0.2, 0.1, 0.3], 0.25, False, {0: 2, 3: 2}),
])
def test_who_copies_whom(values, quantile, maximize, copies):
    plan = _plan(values, quantile, maximize)
    assert set(plan) == set(copies)
    for recipient, donor in plan.items():
        allowed = copies[recipient]
        assert donor in (allowed if isinstance(allowed, set) else {allowed})


def test_a_donor_is_drawn_from_the_whole_top_quantile():
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    donors = {_plan(values, rng=random.Random(seed))[7] for seed in range(40)}
    assert donors == {0, 1}


def test_the_same_seed_and_step_make_the_same_decisions_for_a_resumed_driver():
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    first = plan_round(_members(values), 0.25, False, SPACE, ("lr", "d_steps"), (0.8, 1.2),
                       0.5, round_rng(7, 500))
    again = plan_round(_members(values), 0.25, False, SPACE, ("lr", "d_steps"), (0.8, 1.2),
                       0.5, round_rng(7, 500))
    assert first == again
    other_round = plan_round(_members(values), 0.25, False, SPACE, ("lr", "d_steps"),
                             (0.8, 1.2), 0.5, round_rng(7, 1000))
    assert [p.params for p in other_round] != [p.params for p in first]


def test_explore_changes_only_the_mutable_params_starting_from_the_donors_values():
    donor = {"lr": 1e-3, "d_steps": 2, "width": 64}
    [plan] = plan_round([Member(0, 0.1, donor), Member(1, 0.9, {"lr": 5e-3, "d_steps": 1,
                                                                "width": 32})],
                        0.5, False, SPACE, ("lr",), (0.8, 1.2), 0.0, random.Random(1))
    assert (plan.recipient, plan.donor) == (1, 0)
    assert plan.params["width"] == 64 and plan.params["d_steps"] == 2  # the donor's, unchanged
    assert plan.params["lr"] in (pytest.approx(8e-4), pytest.approx(1.2e-3))
    assert plan.how == {"lr": "x0.8" if plan.params["lr"] < 1e-3 else "x1.2"}


@pytest.mark.parametrize("param, value, factor, expected", [
    (LR, 1e-3, 1.2, 1.2e-3),
    (LR, 9e-3, 1.2, 1e-2),  # clipped to high
    (LR, 1.1e-4, 0.8, 1e-4),  # clipped to low
    (STEPS, 2, 1.2, 3),  # 2.4 rounds to 2: an int moves by at least 1
    (STEPS, 2, 0.8, 1),
    (STEPS, 4, 1.2, 4),  # at the top: stays
    (STEPS, 1, 0.8, 1),
    (WIDTH, 64, 1.2, 128),  # a categorical moves to a neighbour
    (WIDTH, 64, 0.8, 32),
    (WIDTH, 128, 1.2, 128),
    (Param("b", "float", 0.0, 1.0, step=0.1), 0.5, 1.2, 0.6),  # snapped to the step
])
def test_perturbation(param, value, factor, expected):
    assert perturbed(param, value, factor, random.Random(0)) == pytest.approx(expected)


def test_resample_draws_inside_the_range_log_uniformly_and_from_the_choices():
    rng = random.Random(3)
    lrs = [resample(LR, rng) for _ in range(400)]
    assert all(1e-4 <= v <= 1e-2 for v in lrs)
    assert 0.3 < sum(v < 1e-3 for v in lrs) / len(lrs) < 0.7  # log-uniform: half below 1e-3
    assert {resample(WIDTH, rng) for _ in range(60)} == {32, 64, 128}
    assert {resample(STEPS, rng) for _ in range(60)} == {1, 2, 3, 4}


def test_resample_probability_one_always_resamples_and_zero_never():
    rng = random.Random(0)
    params = {"lr": 1e-3, "d_steps": 2, "width": 64}
    _, how = explore(params, SPACE, ("lr", "d_steps"), (0.8, 1.2), 1.0, rng)
    assert how == {"lr": "resampled", "d_steps": "resampled"}
    _, how = explore(params, SPACE, ("lr", "d_steps"), (0.8, 1.2), 0.0, rng)
    assert set(how.values()) <= {"x0.8", "x1.2"}


def test_a_conditional_param_absent_from_the_donor_is_not_invented():
    gp = Param("gp", "float", 1.0, 10.0, when={"loss": "wgan_gp"})
    new, how = explore({"lr": 1e-3, "loss": "ns"}, (LR, gp), ("lr", "gp"), (0.8,), 0.0,
                       random.Random(0))
    assert "gp" not in new and set(how) == {"lr"}
