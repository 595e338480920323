"""Trials asked and told: the one exit to Optuna, and a sampler that cannot draw a trial's params
failing it in one line. On a real in-memory study and a recording tracker (no MLflow)."""

from __future__ import annotations

import optuna
import pytest

from orchestrator.driver.context import SweepContext
from orchestrator.driver.decide import Action, Outcome
from orchestrator.driver.trials import TrialMaker, tell
from orchestrator.errors import SpecError
from orchestrator.layout import DIVERGED_STEP_ATTR, REASON_ATTR, RUN_ATTR, SEED_ATTR
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.settings import Settings
from orchestrator.study.studies import open_study
from tests.conftest import SYNTHETIC
from tests.orchestrator.driver.fake_pool import FakeTracker


def _maker(tmp_path, text=SYNTHETIC) -> TrialMaker:
    spec = SweepSpec.parse(text)
    storage = str(tmp_path / "study.journal")
    settings = Settings(storage=storage, tracking_uri="sqlite:///unused.db",
                        checkpoint_root=str(tmp_path / "ck"))
    return TrialMaker(SweepContext(spec, settings, open_study(spec, storage), FakeTracker()))


@pytest.mark.parametrize("outcome, state", [
    (Outcome(Action.COMPLETE, value=0.5), "COMPLETE"),
    (Outcome(Action.PRUNE), "PRUNED"),
    (Outcome(Action.FAIL, reason="diverged", diverged_step=6), "FAIL"),
])
def test_each_end_reaches_optuna_once_with_its_reason(outcome, state):
    study = optuna.create_study()
    trial = study.ask()
    tell(study, trial, outcome)
    frozen = study.trials[0]
    assert frozen.state.name == state
    assert frozen.user_attrs.get(REASON_ATTR) == (outcome.reason or None)
    assert frozen.user_attrs.get(DIVERGED_STEP_ATTR) == outcome.diverged_step
    assert frozen.value == outcome.value


def test_an_asked_trial_has_its_seed_and_run_before_any_actor_sees_it(tmp_path):
    maker = _maker(tmp_path)
    active = maker.ask()
    attrs = maker.study.trials[0].user_attrs
    assert attrs[RUN_ATTR] == "run-0" == active.spec.run_id
    assert attrs[SEED_ATTR] == active.spec.seed and set(active.spec.params) == {"x", "y"}
    assert (active.spec.total_steps, active.spec.objective) == (4, "eval/loss")


def test_a_sampler_that_cannot_draw_fails_the_trial_and_says_so_in_one_line(tmp_path):
    maker = _maker(tmp_path)
    trial = maker.study.ask({"x": optuna.distributions.CategoricalDistribution([5.0, 6.0])})
    with pytest.raises(SpecError, match="space: the sampler could not suggest its params"):
        maker.suggest(trial)  # x asked again as a float: Optuna refuses
    assert maker.study.trials[0].state.name == "FAIL"
