"""Which trial is best and which config to trust (orchestrator/study/ranking.py), on real
in-memory Optuna studies: trials by value with running ones by their last report, the Pareto
front and a point of it, confirmed configs by their pessimistic bound, and the champion."""

from __future__ import annotations

import math
import statistics

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from scipy.stats import t as student_t

from orchestrator.errors import SpecError
from orchestrator.layout import CONFIRM_AT_ATTR
from orchestrator.study.ranking import best_trials as best
from orchestrator.study.ranking import (
    better,
    bound,
    champion,
    confirm_table,
    ranked,
    top_trials,
)

X = {"x": FloatDistribution(-2.0, 2.0)}


def _sweep(direction: str, values: list[float]) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for i, value in enumerate(values):
        study.add_trial(create_trial(params={"x": i / 10}, distributions=X, value=value,
                                     user_attrs={"mlflow_run_id": f"run{i}"}))
    study.add_trial(create_trial(params={"x": 1.5}, distributions=X,
                                 state=TrialState.FAIL))
    return study


def _confirm_run(study, source: int, index: int, value, state=TrialState.COMPLETE,
                 reports=None):
    study.add_trial(create_trial(
        params={"x": source / 10}, distributions=X, state=state,
        value=value if state == TrialState.COMPLETE else None,
        intermediate_values=reports or {},
        user_attrs={"confirms_trial": source, "seed_index": index}))


def test_the_bound_is_a_one_sided_student_t_bound_on_the_pessimistic_side():
    values = [0.8, 0.9, 0.7]
    mean, std, low = bound(values, maximize=True)
    margin = student_t.ppf(0.95, 2) * statistics.stdev(values) / math.sqrt(3)
    assert mean == pytest.approx(0.8) and std == pytest.approx(0.1)
    assert low == pytest.approx(0.8 - margin)
    assert bound(values, maximize=False)[2] == pytest.approx(0.8 + margin)
    assert bound([0.5], True) == (0.5, None, None) and bound([], True) == (None, None, None)


def test_the_table_ranks_configs_by_their_bound_not_by_their_lucky_sweep_value():
    sweep = _sweep("maximize", [0.99, 0.90, 0.50])
    top = top_trials(sweep, 2)
    assert [t.number for t in top] == [0, 1]
    confirm = optuna.create_study(direction="maximize")
    for i, v in enumerate([0.95, 0.30, 0.60]):  # trial 0: a lucky seed, widely spread
        _confirm_run(confirm, 0, i, v, reports={10: v, 20: v})
    for i, v in enumerate([0.85, 0.88, 0.86]):  # trial 1: steady
        _confirm_run(confirm, 1, i, v, reports={10: 0.99, 20: v})
    _confirm_run(confirm, 1, 3, None, state=TrialState.FAIL)
    rows = confirm_table(sweep, confirm)
    assert [r.trial for r in rows] == [1, 0]
    steady = rows[0]
    assert steady.values == (0.85, 0.88, 0.86) and steady.failed == 1
    assert steady.run_id == "run1" and steady.sweep_value == 0.90
    assert steady.mean == pytest.approx(statistics.fmean([0.85, 0.88, 0.86]))
    # --at best: each run's best report (its generator_best), here 0.99 for trial 1's runs
    assert confirm_table(sweep, confirm, at="best")[0].values == (0.99, 0.99, 0.99)


def test_trials_rank_best_first_ties_to_the_lower_number_running_ones_by_their_last_report():
    study = _sweep("minimize", [0.5, 0.2, 0.2, math.inf])
    running = study.ask()
    running.report(0.9, 2)
    running.report(0.1, 4)  # its latest report: better than every complete trial
    trials = study.get_trials()
    assert [(r.trial.number, r.value) for r in ranked(trials, maximize=False)] == [
        (1, 0.2), (2, 0.2), (0, 0.5)]  # inf never ranks; the FAIL neither
    with_running = ranked(trials, maximize=False, running=True)
    assert (with_running[0].trial.number, with_running[0].step) == (running.number, 4)
    assert [r.trial.number for r in ranked(trials, maximize=True)] == [0, 1, 2]
    assert better(0.3, None, True) and better(0.3, 0.2, True) and not better(0.3, 0.2, False)


def test_the_best_is_one_trial_or_the_pareto_front_and_none_without_a_complete_trial():
    study = _sweep("maximize", [0.3, 0.9, 0.9])
    assert [t.number for t in best(study)] == [1]
    assert [t.number for t in top_trials(study, 5)] == [1, 2, 0]
    front = optuna.create_study(directions=["minimize", "maximize"])
    for values in ((1.0, 0.2), (2.0, 0.9), (3.0, 0.1)):  # the last is dominated
        front.add_trial(create_trial(values=values, params={}, distributions={}))
    assert [t.number for t in best(front)] == [0, 1]
    with pytest.raises(SpecError, match="has no completed trial yet"):
        best(optuna.create_study(study_name="empty"))
    with pytest.raises(SpecError, match="confirm ranks configs on one objective"):
        top_trials(front, 2)


def test_the_champion_is_the_confirmed_config_with_the_best_bound_else_the_best_trial():
    sweep = _sweep("maximize", [0.99, 0.90])
    lucky = champion(sweep)
    assert (lucky.trial, lucky.run_id, lucky.value) == (0, "run0", 0.99)
    assert lucky.rule == "best objective_0 (maximize)"
    confirm = optuna.create_study(direction="maximize")
    for i, v in enumerate([0.95, 0.30, 0.60]):  # the sweep's best: a lucky seed
        _confirm_run(confirm, 0, i, v)
    for i, v in enumerate([0.85, 0.88, 0.86]):
        _confirm_run(confirm, 1, i, v)
    trusted = champion(sweep, confirm)
    assert (trusted.trial, trusted.run_id) == (1, "run1")
    assert trusted.value == pytest.approx(statistics.fmean([0.85, 0.88, 0.86]))
    assert trusted.rule.startswith("highest 95% lower bound of objective_0 over 3 fresh seeds")
    confirm.set_user_attr(CONFIRM_AT_ATTR, "best")  # ranked as its last table was
    assert champion(sweep, confirm).trial == 1
    assert champion(sweep, optuna.create_study(direction="maximize")).trial == 0  # no bound yet


def test_a_trial_that_entered_the_top_after_confirm_is_never_passed_over_in_silence():
    """Confirm ranked trials 0 and 1 (its top 2); two more trials later, trial 4 (0.95) is in
    the top 2 with no bound: promote refuses, saying what to run, instead of claiming that the
    confirmed trial 1 has the best bound of the top."""
    sweep = _sweep("maximize", [0.99, 0.90])
    confirm = optuna.create_study(direction="maximize")
    for source, values in ((0, [0.95, 0.30, 0.60]), (1, [0.85, 0.88, 0.86])):
        for i, v in enumerate(values):
            _confirm_run(confirm, source, i, v)
    for value in (0.5, 0.95):
        sweep.add_trial(create_trial(value=value, params={}, distributions={},
                                     user_attrs={"mlflow_run_id": f"run{len(sweep.trials)}"}))
    with pytest.raises(SpecError) as refused:
        champion(sweep, confirm)
    assert str(refused.value) == (
        f"sweep {sweep.study_name!r}: trial(s) 4 entered its top 2 after `gansweep confirm` "
        f"ranked it, and have no bound: run `gansweep confirm {sweep.study_name} --top 2` (it "
        f"retrains only what it lacks), or promote by the sweep's own values with --unconfirmed")
    assert champion(sweep).trial == 0  # --unconfirmed: by the sweep's own values
