"""A sweep read back for `status` and `best`, as plain rows, on a real Optuna study."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from orchestrator.layout import (
    ATTEMPT_ATTR,
    LAUNCH_ATTR,
    PBT_LINEAGE_ATTR,
    PBT_PARAMS_ATTR,
    PBT_ROUND_ATTR,
    REASON_ATTR,
    RUN_ATTR,
    SEED_ATTR,
)
from orchestrator.study.results import (
    best_trials,
    line_text,
    member_line,
    objectives,
    pbt_line,
    pbt_summary,
    trial_rows,
)

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
X = {"x": FloatDistribution(-2.0, 2.0)}


def test_each_trial_is_a_row_with_its_seed_run_reason_attempt_and_last_step():
    study = optuna.create_study(direction="maximize")
    study.set_metric_names(["eval/score"])
    study.add_trial(create_trial(params={"x": 0.5}, distributions=X, value=0.9,
                                 intermediate_values={5: 0.7, 10: 0.9},
                                 user_attrs={SEED_ATTR: 7, RUN_ATTR: "r0", ATTEMPT_ATTR: 2}))
    study.add_trial(create_trial(params={"x": 1.0}, distributions=X, state=TrialState.FAIL,
                                 user_attrs={REASON_ATTR: "diverged"}))
    done, failed = trial_rows(study)
    assert (done["value"], done["values"], done["seed"], done["run_id"]) == (
        0.9, {"eval/score": 0.9}, 7, "r0")
    assert (done["attempt"], done["last_step"], done["state"]) == (2, 10, "COMPLETE")
    assert (failed["reason"], failed["attempt"], failed["value"]) == ("diverged", 1, None)
    assert [t["number"] for t in best_trials(study)] == [0]
    assert objectives(study) == [{"metric": "eval/score", "direction": "maximize"}]


# A population of 6 with rounds every 250 steps: (member, its exploits [[step, donor], ...])
LINEAGES = {0: [], 1: [], 2: [[250, 1], [750, 4]], 3: [[500, 4], [1000, 5]], 4: [],
            5: [[500, 2], [1500, 0]]}


def _members(lineages: dict[int, list]) -> list:
    trials = []
    for number, lineage in lineages.items():
        trial = create_trial(params={"x": 0.1}, distributions=X, value=float(number),
                             user_attrs={PBT_PARAMS_ATTR: {"x": 0.1}, PBT_LINEAGE_ATTR: lineage})
        trial.number = number
        trials.append(trial)
    return trials


@pytest.mark.parametrize("member, line, text", [
    # 3 took 5's state at 1000; 5's at 1000 came from 2 at 500 (its copy of 0 at 1500 came
    # later); 2's at 500 from 1 at 250 (its copy of 4 at 750 later still)
    (3, [(3, None), (5, 1000), (2, 500), (1, 250)], "trial 3 <- 5 at 1000 <- 2 at 500 <- 1 at 250"),
    (5, [(5, None), (0, 1500)], "trial 5 <- 0 at 1500"),
    (2, [(2, None), (4, 750)], "trial 2 <- 4 at 750"),
    (1, [(1, None)], "trial 1, never copied"),
])
def test_a_members_line_walks_back_through_each_donors_exploits_before_the_copy(member, line,
                                                                                text):
    trials = _members(LINEAGES)
    assert member_line(trials, member) == line
    assert line_text(line) == text


def test_a_pbt_sweep_is_summed_up_from_its_launch_record_and_its_members():
    study = optuna.create_study()
    assert pbt_summary(study) is None  # no member, no pbt scheduler: not a PBT sweep
    study.set_user_attr(LAUNCH_ATTR, {"spec": "name: p\nscheduler: {name: pbt, population: 6, "
                                              "interval: 250}\n"})
    assert pbt_line(pbt_summary(study)) == (
        "pbt: population 6, round every 250 steps, no round yet, 0 exploits")
    for trial in _members(LINEAGES):
        study.add_trial(trial)
    study.set_user_attr(PBT_ROUND_ATTR, 1500)
    assert pbt_summary(study) == {"population": 6, "interval": 250, "last_round": 1500,
                                  "exploits": 6}
    assert pbt_line(pbt_summary(study)) == (
        "pbt: population 6, round every 250 steps, last round at step 1500, 6 exploits")
    rows = {row["number"]: row for row in trial_rows(study)}
    assert rows[3]["exploits"] == [[500, 4], [1000, 5]] and rows[0]["exploits"] == []
    # a record that does not say (or cannot be read): the members are counted, no interval
    study.set_user_attr(LAUNCH_ATTR, {"spec": "scheduler: [unclosed"})
    assert pbt_line(pbt_summary(study)) == (
        "pbt: population 6, last round at step 1500, 6 exploits")


def test_a_trial_that_is_no_member_has_no_exploits():
    study = optuna.create_study()
    study.add_trial(create_trial(params={"x": 0.5}, distributions=X, value=0.9))
    assert trial_rows(study)[0]["exploits"] is None


def test_status_and_best_show_a_members_params_now_and_best_its_schedule():
    study = optuna.create_study(direction="minimize")
    schedule = [[0, {"x": 0.9, "fixed_k": 1}], [500, {"x": 0.3, "fixed_k": 1}]]
    study.add_trial(create_trial(params={"x": 0.5}, distributions=X, value=0.1, user_attrs={
        "gansweep.pbt.params": schedule[-1][1], "gansweep.pbt.schedule": schedule,
        "gansweep.pbt.lineage": [[500, 1]]}))
    study.add_trial(create_trial(params={"x": 0.7}, distributions=X, value=0.2))
    rows = {r["number"]: r for r in trial_rows(study)}
    assert rows[0]["params"] == {"x": 0.3}  # its last params, on its own param names
    assert rows[1]["params"] == {"x": 0.7}  # not a member: as Optuna has them
    [best] = best_trials(study)
    assert best["params"] == {"x": 0.3} and best["schedule"] == schedule
