"""The Optuna study of a sweep: storage, sampler, per-trial seeds, budget accounting.

Only the driver imports this. The study name is the sweep name, so launching the same spec
again continues the study instead of failing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from orchestrator.spec import SpecError, SweepSpec

DEFAULT_STORAGE = "sqlite:///optuna.db"
USER_ATTR_RUN = "mlflow_run_id"
USER_ATTR_SEED = "seed"
USER_ATTR_REASON = "fail_reason"


def resolve_storage(flag: str | None = None) -> str:
    return flag or DEFAULT_STORAGE


def make_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    seed = spec.sampler.seed
    if spec.sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # multivariate + group model conditional spaces jointly; the constant liar keeps asks from
    # proposing the same point while earlier trials are still in flight (the scheduler asks one
    # trial ahead, so there is always one in flight, even with a single actor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          constant_liar=True,
                                          n_startup_trials=startup_trials(spec.budget.trials))


def startup_trials(budget: int) -> int:
    """Random trials before TPE models the space: Optuna's 10, fewer for small budgets so that a
    short sweep still gets guided trials."""
    return max(2, min(10, budget // 4))


def open_study(spec: SweepSpec, storage: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(storage=storage, study_name=spec.name,
                                    direction=spec.objective.direction,
                                    sampler=make_sampler(spec),
                                    pruner=optuna.pruners.NopPruner(),  # Optuna's default: median
                                    load_if_exists=True)
    except Exception as exc:  # bad URL, missing driver, unreachable database
        raise SpecError(f"--storage: cannot open {storage}: {_first_line(exc)}") from None
    if study.direction.name.lower() != spec.objective.direction:
        raise SpecError(f"{spec.path or spec.name}: objective.direction: study {spec.name!r} in "
                        f"{storage} was created with {study.direction.name.lower()}")
    return study


def load_study(name: str, storage: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).exists():
        raise SpecError(f"no sweep named {name!r}: {storage} does not exist")  # don't create it
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise SpecError(f"no sweep named {name!r} in {storage}") from None
    except Exception as exc:
        raise SpecError(f"--storage: cannot open {storage}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def trial_seed(sweep_seed: int, number: int) -> int:
    """A trial's seed: a pure function of the sweep seed and the trial number."""
    return int(np.random.SeedSequence([sweep_seed, number]).generate_state(1)[0])


def trials_used(study: optuna.Study) -> int:
    """Trials that count against the budget: every trial that was ever started."""
    return sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))


def orphaned_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials left RUNNING by a driver that is gone."""
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
