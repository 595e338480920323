"""The Optuna objects of a sweep, built on the driver from the spec's plain settings.

search.py parses `sampler:` and `pruner:` into `SamplerSpec` and `PrunerSpec` without Optuna;
this module, imported by study.py when a study is opened (and by search.py to check a pruner's
options), is where they become Optuna samplers and pruners.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.spec.search import PrunerSpec, SamplerSpec, grid_space
from orchestrator.spec.space import Param


def build_pruner(spec: PrunerSpec, steps: int) -> optuna.pruners.BasePruner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _pruner(spec, steps)


def _pruner(spec: PrunerSpec, steps: int) -> optuna.pruners.BasePruner:
    o = spec.options
    if spec.name == "median":
        return optuna.pruners.MedianPruner(**o)
    if spec.name == "percentile":
        if "percentile" not in o:
            raise ValueError("percentile: required (e.g. 25.0)")
        return optuna.pruners.PercentilePruner(**o)
    if spec.name == "successive_halving":
        return SuccessiveHalvingPruner(**o)
    if spec.name == "hyperband":  # resources are training steps, up to the trial's budget
        return HyperbandPruner(max_resource=steps, **o)
    if spec.name == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(**o)
    return optuna.pruners.NopPruner()


class _StartupTrials:
    """`n_startup_trials` for the rung pruners, as Optuna's median and percentile pruners have
    it: no trial is pruned until that many trials have completed. Without it a rung's first
    trials run to the end however poor (a rung promotes only the best so far until it has seen
    reduction_factor trials), and TPE models "good" on those few complete trials; the start-up
    gives it more complete trials to learn from (on grid25 it did not help: see
    benchmarks/README.md)."""

    def __init__(self, *args: Any, n_startup_trials: int = 0, **kwargs: Any) -> None:
        if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, int) \
                or n_startup_trials < 0:
            raise ValueError(f"n_startup_trials: must be an int >= 0, got {n_startup_trials!r}")
        super().__init__(*args, **kwargs)
        self.n_startup_trials = n_startup_trials

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        # asked even in the start-up, as it records the trial's value at each rung it reaches:
        # the start-up trials are the later ones' competitors
        prune = super().prune(study, trial)
        if not prune or not self.n_startup_trials:  # no count of the study's trials needed
            return prune
        return len(study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,))) >= self.n_startup_trials


class SuccessiveHalvingPruner(_StartupTrials, optuna.pruners.SuccessiveHalvingPruner):
    pass


class HyperbandPruner(_StartupTrials, optuna.pruners.HyperbandPruner):
    pass


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
