"""A sweep read back for `status` and `best`, as plain rows, on a real Optuna study."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from orchestrator.layout import ATTEMPT_ATTR, REASON_ATTR, RUN_ATTR, SEED_ATTR
from orchestrator.study.results import best_trials, objectives, trial_rows

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
