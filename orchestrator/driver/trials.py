"""The scheduler's trials: new ones asked from the study, and those an earlier driver left
RUNNING, each as an `Active` (its Optuna trial, the `TrialSpec` its actors get, where it is);
and the one exit of a trial to Optuna (`tell`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.boundary import COMPLETE, PRUNED, TrialSpec
from orchestrator.driver.context import SweepContext
from orchestrator.driver.decide import Action, Outcome
from orchestrator.driver.health import History
from orchestrator.errors import SpecError, describe
from orchestrator.layout import (
    ATTEMPT_ATTR,
    CONFIRMS_ATTR,
    DIVERGED_STEP_ATTR,
    PBT_SCHEDULE_ATTR,
    PRUNED_REASON_ATTR,
    REASON_ATTR,
    RUN_ATTR,
    SEED_ATTR,
    run_tags,
)
from orchestrator.study.samplers import suggest_all
from orchestrator.study.studies import open_storage, reopen_trial, trial_seed


@dataclass
class Active:
    trial: optuna.Trial
    spec: TrialSpec
    worker: Any = None
    step: int = 0
    losses: int = 0  # actors lost under this trial; past max_retries it FAILs
    waiting_since: float = 0.0  # when it was queued to resume
    health: History = History()  # what the GAN-health rules read, one point per evaluation


def tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    """The one exit of a trial to Optuna: why it failed, where it diverged, its end state."""
    if outcome.diverged_step is not None:
        trial.set_user_attr(DIVERGED_STEP_ATTR, outcome.diverged_step)
    if outcome.reason:
        attr = PRUNED_REASON_ATTR if outcome.state == PRUNED else REASON_ATTR
        trial.set_user_attr(attr, outcome.reason)
    if outcome.state == COMPLETE:
        study.tell(trial, outcome.value)
    else:
        study.tell(trial, state=TrialState[outcome.state])


def replayed(spec: TrialSpec, attrs: dict) -> TrialSpec:
    """A confirm trial of a PBT member retrains its schedule ([[from step, params], ...]): the
    params change as it trains, as they did for the member's state."""
    if CONFIRMS_ATTR not in attrs or not attrs.get(PBT_SCHEDULE_ATTR):
        return spec
    schedule = tuple((int(step), dict(params)) for step, params in attrs[PBT_SCHEDULE_ATTR])
    changing = tuple(sorted({name for _, params in schedule for name, value in params.items()
                             if value != schedule[0][1].get(name)}))
    first = dict(schedule[0][1])  # its line's first params (a donor's architecture, maybe)
    return dataclasses.replace(spec, params=first, schedule=schedule, mutable=changing,
                               first_params=first)


class TrialMaker:
    """Makes `Active` trials; one whose params the sampler cannot draw FAILs (none is left
    RUNNING without params)."""

    def __init__(self, ctx: SweepContext):
        self.spec, self.study, self.tracker = ctx.spec, ctx.study, ctx.tracker
        self.checkpoint_root = ctx.settings.checkpoint_root
        self.storage_url = ctx.settings.storage

    def ask(self) -> Active:
        trial = self.study.ask()
        params = self.suggest(trial)
        seed = trial_seed(self.spec.sampler.seed, trial.number)
        trial.set_user_attr(SEED_ATTR, seed)
        # made first, then recorded: a driver dying between leaves it findable
        run_id = self.tracker.create_trial_run(trial.number, run_tags(trial.user_attrs))
        trial.set_user_attr(RUN_ATTR, run_id)
        spec = replayed(self.trial_spec(trial.number, params, seed, run_id), trial.user_attrs)
        return Active(trial, spec)

    def unclosed(self) -> list[tuple[Active, str]]:
        """Trials that ended while their run could not be closed (a disk that filled up, a
        tracking server gone at that moment): (the trial, its end state) for each whose run is
        still RUNNING in MLflow, for the scheduler to write what their checkpoint kept and close
        the run."""
        open_runs = self.tracker.open_trial_runs()
        if not open_runs:
            return []
        ended = self.study.get_trials(deepcopy=False, states=(
            TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
        found = []
        for frozen in ended:
            attrs = frozen.user_attrs
            run_id = attrs.get(RUN_ATTR)
            if run_id not in open_runs:
                continue
            seed = attrs.get(SEED_ATTR, trial_seed(self.spec.sampler.seed, frozen.number))
            spec = self.trial_spec(frozen.number, {**self.spec.fixed, **frozen.params}, seed,
                                   run_id, int(attrs.get(ATTEMPT_ATTR, 1)))
            found.append((Active(frozen, spec), frozen.state.name))
        return found

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
        left = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        storage = open_storage(self.storage_url) if left else None
        found = []
        for frozen in left:
            attrs = frozen.user_attrs
            trial = reopen_trial(self.study, storage, frozen.number)
            seed = attrs.get(SEED_ATTR, trial_seed(self.spec.sampler.seed, frozen.number))
            params = ({**self.spec.fixed, **frozen.params} if frozen.params
                      else self.suggest(trial))  # asked, then its driver died
            if SEED_ATTR not in attrs:  # the driver died between asking and recording it
                trial.set_user_attr(SEED_ATTR, seed)
            run_id = self.tracker.resume_trial_run(frozen.number, attrs.get(RUN_ATTR),
                                                   run_tags(attrs))
            if attrs.get(RUN_ATTR) != run_id:
                trial.set_user_attr(RUN_ATTR, run_id)
            attempt = int(attrs.get(ATTEMPT_ATTR, 1)) + 1
            trial.set_user_attr(ATTEMPT_ATTR, attempt)
            step = max(frozen.intermediate_values, default=0)
            spec = replayed(self.trial_spec(frozen.number, params, seed, run_id, attempt), attrs)
            found.append(Active(trial, spec, step=step, waiting_since=time.time()))
            notice(f"trial {frozen.number}: left running by an earlier driver; resuming "
                   f"from its last checkpoint (reported step {step}, attempt {attempt})")
        return found
