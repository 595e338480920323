"""The scheduler's trials: new ones asked from the study, and those an earlier driver left
RUNNING, each as an `Active` (its Optuna trial, the `TrialSpec` its actors get, where it is)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.actor.worker import TrialSpec
from orchestrator.driver.context import SweepContext
from orchestrator.driver.decide import Action, Outcome
from orchestrator.spec.space import suggest_all
from orchestrator.spec.sweep import SpecError
from orchestrator.study.studies import (
    USER_ATTR_ATTEMPT,
    USER_ATTR_CONFIRMS,
    USER_ATTR_DIVERGED_STEP,
    USER_ATTR_REASON,
    USER_ATTR_RUN,
    USER_ATTR_SEED,
    USER_ATTR_SEED_INDEX,
    trial_seed,
)
from trainers.params import describe

RUN_TAG_ATTRS = (USER_ATTR_CONFIRMS, USER_ATTR_SEED_INDEX)


def run_tags(attrs: dict[str, Any]) -> dict[str, str]:
    """The MLflow tags a trial's user attrs give its run: a confirm trial's source and seed."""
    return {f"gansweep.{k}": str(attrs[k]) for k in RUN_TAG_ATTRS if k in attrs}


@dataclass
class Active:
    trial: optuna.Trial
    spec: TrialSpec
    worker: Any = None
    step: int = 0
    losses: int = 0  # actors lost under this trial; past max_retries it FAILs
    waiting_since: float = 0.0  # when it was queued to resume


def tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    """The one exit of a trial to Optuna: why it failed, where it diverged, its end state."""
    if outcome.diverged_step is not None:
        trial.set_user_attr(USER_ATTR_DIVERGED_STEP, outcome.diverged_step)
    if outcome.reason:
        trial.set_user_attr(USER_ATTR_REASON, outcome.reason)
    if outcome.state == TrialState.COMPLETE:
        study.tell(trial, outcome.value)
    else:
        study.tell(trial, state=outcome.state)


class TrialMaker:
    """Makes `Active` trials; one whose params the sampler cannot draw FAILs (none is left
    RUNNING without params)."""

    def __init__(self, ctx: SweepContext):
        self.spec, self.study, self.tracker = ctx.spec, ctx.study, ctx.tracker
        self.checkpoint_root = ctx.settings.checkpoint_root

    def ask(self) -> Active:
        trial = self.study.ask()
        params = self.suggest(trial)
        seed = trial_seed(self.spec.sampler.seed, trial.number)
        trial.set_user_attr(USER_ATTR_SEED, seed)
        # made first, then recorded: a driver dying between leaves it findable
        run_id = self.tracker.create_trial_run(trial.number, run_tags(trial.user_attrs))
        trial.set_user_attr(USER_ATTR_RUN, run_id)
        return Active(trial, self.trial_spec(trial.number, params, seed, run_id))

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's params; a sampler that cannot draw them fails the trial and stops the
        sweep in one line."""
        try:
            return {**self.spec.fixed, **suggest_all(self.spec.space, trial)}
        except Exception as exc:
            reason = f"the sampler could not suggest its params: {describe(exc)}"
            tell(self.study, trial, Outcome(Action.FAIL, reason=reason))
            raise SpecError(f"{self.spec.path or self.spec.name}: space: {reason}") from None

    def trial_spec(self, number: int, params: dict, seed: int, run_id: str,
                   attempt: int = 1) -> TrialSpec:
        budget = self.spec.budget
        return TrialSpec(
            sweep=self.spec.name, number=number, trainer=self.spec.trainer_target, params=params,
            seed=seed, run_id=run_id, checkpoint_root=self.checkpoint_root,
            total_steps=budget.steps, log_every=budget.log_every,
            attempt=attempt, keep_checkpoints=self.spec.storage.keep_checkpoints,
            objective=self.spec.objective.metric,
            maximize=self.spec.objective.direction == "maximize")

    def orphans(self, notice: Callable[[str], None]) -> list[Active]:
        """Trials an earlier driver left RUNNING (it was killed or interrupted): each resumes
        from its checkpoint in its own trial and run."""
        found = []
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            attrs = frozen.user_attrs
            trial = optuna.Trial(self.study, frozen._trial_id)
            seed = attrs.get(USER_ATTR_SEED, trial_seed(self.spec.sampler.seed, frozen.number))
            params = ({**self.spec.fixed, **frozen.params} if frozen.params
                      else self.suggest(trial))  # asked, then its driver died
            if USER_ATTR_SEED not in attrs:  # the driver died between asking and recording it
                trial.set_user_attr(USER_ATTR_SEED, seed)
            run_id = self.tracker.resume_trial_run(frozen.number, attrs.get(USER_ATTR_RUN),
                                                   run_tags(attrs))
            if attrs.get(USER_ATTR_RUN) != run_id:
                trial.set_user_attr(USER_ATTR_RUN, run_id)
            attempt = int(attrs.get(USER_ATTR_ATTEMPT, 1)) + 1
            trial.set_user_attr(USER_ATTR_ATTEMPT, attempt)
            step = max(frozen.intermediate_values, default=0)
            spec = self.trial_spec(frozen.number, params, seed, run_id, attempt)
            found.append(Active(trial, spec, step=step, waiting_since=time.time()))
            notice(f"trial {frozen.number}: left running by an earlier driver; resuming "
                   f"from its last checkpoint (reported step {step}, attempt {attempt})")
        return found
