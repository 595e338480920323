"""Shared by the grid25 benchmarks: the search space, one sweep in temp stores, per-trial metrics.

Scripts in this folder import it as `_common` (run them as files: the script's folder is on
sys.path then).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import optuna
import yaml
from optuna.trial import TrialState

from orchestrator.driver.launch import launch
from orchestrator.layout import RUN_ATTR
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.settings import Settings

METRICS = ("score", "modes", "high_quality", "reverse_kl")

# The space of search_spaces/grid25.yaml (its comment says why it looks the way it does); a run
# overrides its name, budget, sampler and pruner.
GRID25 = Path(__file__).resolve().parents[1] / "search_spaces" / "grid25.yaml"


GRID25_PRUNER = yaml.safe_load(GRID25.read_text())["pruner"]


def hyperband(min_resource: int | None = None, reduction_factor: int | None = None,
              bootstrap_count: int | None = None, n_startup_trials: int | None = None,
              metric: str | None = None) -> str:
    """The spec's pruner field: Hyperband over training steps, up to the trial's budget; by
    default grid25.yaml's min_resource, reduction_factor, bootstrap_count, n_startup_trials and
    metric (`none`: prune on the objective)."""
    min_resource = min_resource or GRID25_PRUNER["min_resource"]
    reduction_factor = reduction_factor or GRID25_PRUNER["reduction_factor"]
    if bootstrap_count is None:
        bootstrap_count = GRID25_PRUNER.get("bootstrap_count", 0)
    if n_startup_trials is None:
        n_startup_trials = GRID25_PRUNER.get("n_startup_trials", 0)
    if metric is None:
        metric = GRID25_PRUNER.get("metric")
    on = f", metric: {metric}" if metric and metric != "none" else ""
    return (f"{{name: hyperband, min_resource: {min_resource}, "
            f"reduction_factor: {reduction_factor}, bootstrap_count: {bootstrap_count}, "
            f"n_startup_trials: {n_startup_trials}{on}}}")


DIGITS = GRID25.parent / "digits-dcgan.yaml"


def grid25_spec(name: str, trials: int, steps: int, eval_every: int, sampler: str = "tpe",
                seed: int = 0, pruner: str = "none", health: bool | dict = False,
                confirm: dict | None = None, source: Path = GRID25) -> SweepSpec:
    """The space of `source` (grid25.yaml by default) with this budget, sampler and pruner;
    GAN-health pruning off unless `health` (True: the defaults) and no confirm phase unless
    `confirm` ({top, seeds})."""
    raw = yaml.safe_load(source.read_text())
    budget = {"trials": trials, "steps": steps, "eval_every": eval_every,
              "log_every": eval_every}  # one train row per chunk: its means
    if "eval_samples" in raw["budget"]:
        budget["eval_samples"] = raw["budget"]["eval_samples"]
    if confirm:
        budget["confirm"] = confirm
    raw.update(name=name, sampler={"name": sampler, "seed": seed}, pruner=yaml.safe_load(pruner),
               budget=budget, health=health,
               resources={"gpus_per_trial": 0, "cpus_per_trial": 1})
    return SweepSpec.parse(yaml.safe_dump(raw, sort_keys=False), str(source))


@dataclass
class TrialResult:
    number: int
    state: str
    params: dict
    metrics: dict = field(default_factory=dict)  # score, modes, ... at the trial's last eval
    curve: dict = field(default_factory=dict)  # step -> intermediate value at each eval


@dataclass
class SweepResult:
    spec: SweepSpec
    wall_s: float
    done: int
    pruned: int
    failed: int
    steps_trained: int
    trials: list[TrialResult]
    extra: Any = None  # what run_sweep's `analyse` returned, read before the stores went away

    def complete(self) -> list[TrialResult]:
        return [t for t in self.trials if t.state == "COMPLETE" and t.metrics]

    def best_by_score(self) -> TrialResult | None:
        return max(self.complete(), key=lambda t: t.metrics.get("score", -math.inf),
                   default=None)

    def best_reverse_kl(self) -> float | None:
        kls = [t.metrics["reverse_kl"] for t in self.complete()
               if math.isfinite(t.metrics.get("reverse_kl", math.nan))]
        return min(kls, default=None)

    def summary(self) -> dict:
        best = self.best_by_score()
        return {"trials": self.spec.budget.trials, "steps": self.spec.budget.steps,
                "eval_every": self.spec.budget.eval_every, "sampler": self.spec.sampler.name,
                "pruner": self.spec.pruner.name, "completed": self.done, "pruned": self.pruned,
                "failed": self.failed, "steps_trained": self.steps_trained,
                "wall_s": round(self.wall_s, 1),
                "best_reverse_kl_complete": _round(self.best_reverse_kl()),
                "best_score": _round(best.metrics.get("score")) if best else None,
                "best_trial": best.number if best else None,
                "best_modes": best.metrics.get("modes") if best else None,
                "best_high_quality": _round(best.metrics.get("high_quality")) if best else None,
                "best_reverse_kl": _round(best.metrics.get("reverse_kl")) if best else None,
                "best_params": best.params if best else None,
                "per_trial": [{"number": t.number, "state": t.state, "params": t.params,
                               "curve": t.curve} for t in self.trials]}


def run_sweep(spec: SweepSpec,
              analyse: Callable[[optuna.Study, Settings], Any] | None = None) -> SweepResult:
    """One sweep in throwaway sqlite stores (Ray must already be up: launch() reuses it);
    `analyse(study, settings)` reads them before they are deleted."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no table-creation chatter
    with tempfile.TemporaryDirectory(prefix="gansweep-bench-") as tmp:
        settings = Settings.resolve(f"sqlite:///{tmp}/optuna.db", f"sqlite:///{tmp}/mlflow.db",
                                    checkpoint_root=str(Path(tmp) / "checkpoints"),
                                    cache_dir=str(Path(tmp) / "cache"))
        t0 = time.perf_counter()
        stats = launch(spec, settings, notice=lambda message: None)
        wall = time.perf_counter() - t0
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=spec.name, storage=settings.storage)
        trials = _trial_results(study, settings.tracking_uri, spec.fixed)
        extra = analyse(study, settings) if analyse else None
    return SweepResult(spec, wall, stats.done, stats.pruned, stats.failed, stats.steps_trained,
                       trials, extra)


def _trial_results(study: optuna.Study, tracking_uri: str, fixed: dict) -> list[TrialResult]:
    client = mlflow.MlflowClient(tracking_uri)
    out = []
    for trial in study.get_trials(deepcopy=False):
        curve = {int(step): v for step, v in sorted(trial.intermediate_values.items())}
        result = TrialResult(trial.number, trial.state.name, {**fixed, **trial.params},
                             curve=curve)
        run_id = trial.user_attrs.get(RUN_ATTR)
        if run_id and trial.state != TrialState.RUNNING:
            logged = client.get_run(run_id).data.metrics  # latest value of each key
            result.metrics = {m: logged[f"eval/{m}"] for m in METRICS if f"eval/{m}" in logged}
        out.append(result)
    return out


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)
