"""The sweep's sampler, built on the driver from the spec's plain settings, and what it draws:
each trial's params from the space (`suggest_all`), what a sampler will not do (`fit_search`).

orchestrator/spec/search.py parses `sampler:` without Optuna; the pruner is built by
orchestrator/spec/pruners.py, which also checks its options when the spec is read.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna

from orchestrator.spec.search import SamplerSpec, grid_size, grid_space
from orchestrator.spec.space import Param
from orchestrator.spec.sweep import SweepSpec


def build_sampler(sampler: SamplerSpec, space: tuple[Param, ...],
                  startup_trials: int) -> optuna.samplers.BaseSampler:
    s, seed = optuna.samplers, sampler.seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if sampler.name == "random":
            return s.RandomSampler(seed=seed)
        if sampler.name == "grid":
            return s.GridSampler(grid_space(space), seed=seed)
        if sampler.name == "cmaes":
            return s.CmaEsSampler(seed=seed, n_startup_trials=startup_trials,
                                  warn_independent_sampling=False)
        if sampler.name == "qmc":
            return s.QMCSampler(seed=seed, warn_independent_sampling=False)
        if sampler.name == "gp":
            return s.GPSampler(seed=seed, n_startup_trials=startup_trials)
        if sampler.name == "nsga2":
            return s.NSGAIISampler(seed=seed)
        if sampler.name == "nsga3":
            return s.NSGAIIISampler(seed=seed)
        # multivariate + group model conditional spaces jointly; the constant liar keeps asks
        # from proposing the same point while earlier trials are still in flight (the scheduler
        # asks one trial ahead, so there is always one in flight, even with a single actor)
        return s.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                            n_startup_trials=startup_trials)


def suggest(param: Param, trial: optuna.Trial) -> Any:
    """Ask an Optuna trial for one parameter of the space."""
    if param.kind == "float":
        return trial.suggest_float(param.name, param.low, param.high, log=param.log,
                                   step=param.step)
    if param.kind == "int":
        return trial.suggest_int(param.name, param.low, param.high, log=param.log,
                                 step=param.step or 1)
    return trial.suggest_categorical(param.name, list(param.choices))


def suggest_all(params: tuple[Param, ...], trial: optuna.Trial) -> dict[str, Any]:
    """Suggest every active parameter in spec order; conditions refer to earlier params."""
    chosen: dict[str, Any] = {}
    for param in params:
        if param.active(chosen):
            chosen[param.name] = suggest(param, trial)
    return chosen


def fit_search(spec: SweepSpec, notice: Callable[[str], None]) -> SweepSpec:
    """Say what a sampler will not do, and cap a grid's budget at the grid's size."""
    categorical = [p.name for p in spec.space if p.kind == "categorical"]
    if spec.sampler.name == "cmaes" and categorical:
        notice(f"warning: CMA-ES models numbers only: {', '.join(categorical)} fall back to "
               f"independent random sampling")
    if spec.sampler.name == "grid" and grid_size(spec.space) < spec.budget.trials:
        notice(f"the grid has {grid_size(spec.space)} points: budget capped at that")
        return spec.with_trials(grid_size(spec.space))
    return spec
