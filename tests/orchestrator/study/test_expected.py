"""The expected best of a sweep of n trials (orchestrator/study/expected.py): Dodge et al.'s
formula on small cases worked by hand, the direction, the continuation past the trials run."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from orchestrator.study.expected import (
    ASSUMES,
    best_so_far,
    complete_values,
    expected_best,
    expected_max,
    summary_line,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize(("values", "n", "expected"), [
    ([1, 2, 3, 4], 1, 2.5),  # one trial: the mean
    ([1, 2, 3, 4], 2, (1 * 1 + 2 * 3 + 3 * 5 + 4 * 7) / 16),  # P(max is v_(i)) = (2i - 1) / 16
    ([4, 1, 3, 2], 2, 50 / 16),  # order does not matter
    ([0, 1], 2, 0.75),  # the best of two draws of a fair coin
    ([0, 1], 3, 7 / 8),
    ([5, 5, 5], 7, 5.0),
    ([1, 2, 3, 4], 200, 4.0),  # many draws: the best
])
def test_expected_max_is_dodge_et_als_formula(values, n, expected):
    assert expected_max(values, n)[0] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("values", [[], [0.7], [0.7, math.nan], [math.inf, 0.2]])
def test_fewer_than_two_finite_values_give_nothing(values):
    assert expected_best(values, maximize=True) is None


def test_the_curve_up_to_n_starts_at_the_mean_and_rises_toward_the_best_inside_its_band():
    values = [0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.0, 0.6]
    found = expected_best(values, maximize=True)
    sweep = found.sweep
    assert list(sweep.trials) == list(range(1, 9))
    assert sweep.mean[0] == pytest.approx(np.mean(values))
    assert np.all(np.diff(sweep.mean) > 0) and sweep.mean[-1] < found.best == 0.9
    assert np.all(sweep.low <= sweep.mean) and np.all(sweep.mean <= sweep.high)


def test_past_n_the_best_so_far_is_kept_and_new_trials_may_beat_it():
    """At N the curve is the best now; at 2N the new trials beat it with probability 1/2 (i.i.d.
    trials), so the band's worse end is the best now and its mean and better end are above."""
    values = [0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.0, 0.6]
    found = expected_best(values, maximize=True)
    assert list(found.more.trials) == list(range(8, 17))
    assert found.more.at(8) == (0.9, 0.9, 0.9)
    mean, low, high = found.at_double()
    assert low == 0.9 < mean < high
    assert np.all(np.diff(found.more.mean) > 0)


def test_a_minimized_objective_is_the_maximized_one_negated():
    values = np.array([3.0, 1.0, 2.5, 0.4, 1.7])
    low_wins, high_wins = expected_best(values, maximize=False), expected_best(-values, True)
    assert low_wins.best == 0.4
    for mine, theirs in ((low_wins.sweep, high_wins.sweep), (low_wins.more, high_wins.more)):
        assert np.allclose(mine.mean, -theirs.mean)
        assert np.allclose(mine.low, -theirs.high) and np.allclose(mine.high, -theirs.low)
    mean, low, high = low_wins.at_double()
    assert low < mean < high == 0.4  # better is lower: the best now is the band's upper end


def test_equal_values_predict_no_gain_and_a_band_of_width_zero():
    found = expected_best([0.5, 0.5, 0.5], maximize=True)
    assert found.at_double() == (0.5, 0.5, 0.5)
    assert np.all(found.sweep.mean == 0.5)


def test_the_same_trials_give_the_same_estimate():
    values = [0.3, 0.8, 0.1, 0.5]
    assert expected_best(values, True).at_double() == expected_best(values, True).at_double()


def test_best_so_far_follows_the_direction():
    assert list(best_so_far([0.2, 0.1, 0.5, 0.3], True)) == [0.2, 0.2, 0.5, 0.5]
    assert list(best_so_far([0.2, 0.1, 0.5, 0.3], False)) == [0.2, 0.1, 0.1, 0.1]


def test_only_complete_trials_with_a_finite_value_count_in_trial_order():
    study = optuna.create_study(direction="maximize")
    for value, state in ((0.3, TrialState.COMPLETE), (None, TrialState.PRUNED),
                         (0.7, TrialState.COMPLETE), (None, TrialState.FAIL),
                         (0.1, TrialState.COMPLETE)):
        study.add_trial(create_trial(value=value, state=state))
    assert complete_values(reversed(study.trials)) == [0.3, 0.7, 0.1]


def test_the_summary_line_fits_80_columns_and_says_what_it_assumes():
    line = summary_line(expected_best([-0.123456, -0.5, -0.2, -0.9] * 250, maximize=True))
    assert line.startswith("expected best at 2x trials (2000): ") and len(line) < 80
    assert line.endswith("(now -0.1235)")
    assert "i.i.d." in ASSUMES and "TPE" in ASSUMES and len(f"  ({ASSUMES})") <= 80


@pytest.mark.parametrize(("values", "maximize", "bound", "capped"), [
    ([0.0, 0.02, 0.7, 0.01, 0.9], True, 1.0, True),  # a score: never past 1
    ([0.3, 0.05, 0.2, 0.04, 0.9], False, 0.0, True),  # a KL: never under 0
    ([0.0, 0.02, 0.7, 0.01, 0.9], False, 1.0, False),  # 1 is the worse side here: no bound
])
def test_a_new_best_never_passes_the_metrics_best_possible_value(values, maximize, bound,
                                                                 capped):
    sign = 1 if maximize else -1
    free = expected_best(values, maximize)
    found = expected_best(values, maximize, best_possible=bound)
    assert bool(sign * free.more.mean[-1] > sign * found.more.mean[-1]) == capped
    if capped:  # without the bound the band's better end passes it; with it, never
        free_end, end = (free.more.high, found.more.high) if maximize else (
            free.more.low, found.more.low)
        assert (sign * free_end > sign * bound).any() and not (sign * end > sign * bound).any()
