"""The pruners a spec can name, built as Optuna builds them: a spec's pruner options are checked
by building it once at load (Optuna's own refusal, one line naming the field, before anything is
created), and the study is opened with the same object. The only spec module that imports
Optuna, and only when a spec names a pruner."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from orchestrator.errors import FieldError
from orchestrator.spec.search import PrunerSpec


def check_pruner(spec: PrunerSpec, steps: int) -> None:
    """Refuse, naming the field, the options Optuna refuses for this pruner."""
    if spec.name == "none":  # nothing for Optuna to refuse: parsing stays free of it
        return
    try:
        build_pruner(spec, steps)
    except (TypeError, ValueError) as exc:
        raise FieldError(f"pruner.{spec.name}", str(exc).splitlines()[0]) from None


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
        _check_rungs(o)
        return SuccessiveHalvingPruner(**o)
    if spec.name == "hyperband":  # resources are training steps, up to the trial's budget
        _check_rungs(o)
        return HyperbandPruner(max_resource=steps, **o)
    if spec.name == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(**o)
    return optuna.pruners.NopPruner()


def _check_rungs(options: dict) -> None:
    """What Optuna takes but fails on later, in the driver (min_resource 0 divides by zero)."""
    low = options.get("min_resource", "auto")
    if low != "auto" and (isinstance(low, bool) or not isinstance(low, int) or low < 1):
        raise ValueError(f"min_resource: must be an int >= 1 (steps) or 'auto', got {low!r}")
    factor = options.get("reduction_factor", 3)
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ValueError(f"reduction_factor: must be an int >= 2, got {factor!r}")


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
