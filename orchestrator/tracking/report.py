"""Summary plots and a trial table for a sweep's parent MLflow run.

Every plot is best-effort: one that Optuna cannot draw (too few trials, nothing varied, a
matplotlib error) is skipped with a warning, so the report never fails a sweep. A multi-objective
study gets one history and one importance plot per objective (`optuna/history-<i>.png`,
`optuna/importances-<i>.png`, i indexing `objective_names`) and, for 2 or 3 objectives, a Pareto
front instead of the intermediate values. `optuna/trials.csv` is always there. The names are
orchestrator/layout.py's.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # the driver has no display; must precede the first pyplot import

import matplotlib.pyplot as plt
import optuna
from optuna.trial import FrozenTrial, TrialState
from optuna.visualization import matplotlib as oplt

from orchestrator.layout import (
    HISTORY_PNG,
    IMPORTANCES_PNG,
    INTERMEDIATE_PNG,
    PARETO_PNG,
    REASON_ATTR,
    RUN_ATTR,
    SEED_ATTR,
    TRIALS_CSV,
    per_objective,
)

USER_ATTRS = (RUN_ATTR, SEED_ATTR, REASON_ATTR)
log = logging.getLogger(__name__)


def sweep_artifacts(study: optuna.Study, objective_names: list[str]) -> dict[str, bytes]:
    """Files for the sweep's parent MLflow run, keyed by artifact path."""
    plots: dict[str, Callable[[], object]] = {}
    if len(study.directions) == 1:
        name = objective_names[0]
        plots[HISTORY_PNG] = lambda: oplt.plot_optimization_history(
            study, target_name=name)
        if _importance_possible(study):
            plots[IMPORTANCES_PNG] = lambda: oplt.plot_param_importances(
                study, target_name=name)
        if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
            plots[INTERMEDIATE_PNG] = lambda: oplt.plot_intermediate_values(study)
    else:
        for i, name in enumerate(objective_names):
            plots.update(_objective_plots(study, i, name))
        if len(objective_names) in (2, 3):
            plots[PARETO_PNG] = lambda: oplt.plot_pareto_front(
                study, target_names=objective_names)
    files = {path: png for path, plot in plots.items() if (png := _render(path, plot))}
    files[TRIALS_CSV] = trials_csv(study, objective_names)
    return files


def warm_up() -> None:
    """Render the report once on a tiny in-memory study, on a thread while the sweep runs:
    matplotlib's fonts and Optuna's plotting and importance code load then (seconds, the first
    time), not between the sweep's last trial and the command's exit."""
    from optuna.distributions import FloatDistribution

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    space = {"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)}
    for x, y in ((0.1, 0.7), (0.5, 0.2), (0.9, 0.4)):
        study.add_trial(optuna.trial.create_trial(params={"x": x, "y": y}, distributions=space,
                                                  value=x + y, intermediate_values={1: x}))
    sweep_artifacts(study, ["warm-up"])


def _objective_plots(study: optuna.Study, i: int, name: str) -> dict[str, Callable[[], object]]:
    """History (and importances) of objective i of a multi-objective study."""
    # with a target, Optuna's importance evaluator assumes lower is better: flip a maximized one
    sign = -1.0 if study.directions[i] == optuna.study.StudyDirection.MAXIMIZE else 1.0

    def target(t: FrozenTrial) -> float:
        return t.values[i]

    def low_is_good(t: FrozenTrial) -> float:
        return sign * t.values[i]

    plots: dict[str, Callable[[], object]] = {
        per_objective(HISTORY_PNG, i): lambda: oplt.plot_optimization_history(
            study, target=target, target_name=name)}
    if _importance_possible(study):
        plots[per_objective(IMPORTANCES_PNG, i)] = lambda: oplt.plot_param_importances(
            study, target=low_is_good, target_name=name)
    return plots


def _importance_possible(study: optuna.Study) -> bool:
    """Importance needs >= 2 complete trials and >= 2 params that took more than one value
    (the importance of a lone parameter is 100% by construction: not worth a plot)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = {name for t in done for name in t.params}
    varied = [n for n in names if len({repr(t.params.get(n)) for t in done}) > 1]
    return len(done) >= 2 and len(varied) >= 2


def _render(path: str, plot: Callable[[], object]) -> bytes | None:
    """PNG bytes of one Optuna plot, or None (logged) when it fails. Closes what it opened."""
    before = set(plt.get_fignums())
    try:
        # rc_context undoes Optuna's global plt.style.use("ggplot") once the PNG is written
        with warnings.catch_warnings(), matplotlib.rc_context():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # the importance evaluator's reminder that a target is minimized: handled above
            warnings.filterwarnings("ignore", "PedAnovaImportanceEvaluator computes")
            warnings.filterwarnings("ignore", "Tight layout not applied")  # long param names
            axes = plot()
            buf = io.BytesIO()
            axes.figure.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        return buf.getvalue()
    except Exception as exc:  # a report must never fail the sweep
        log.warning("sweep report: skipped %s: %s: %s", path, type(exc).__name__, exc)
        return None
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def trials_csv(study: optuna.Study, objective_names: list[str]) -> bytes:
    """One row per trial: number, state, objective values, params, user attrs, timing."""
    trials = study.get_trials(deepcopy=False)
    params = sorted({name for t in trials for name in t.params})
    header = ["number", "state", *objective_names, *(f"params_{p}" for p in params),
              *USER_ATTRS, "datetime_start", "datetime_complete", "duration_s"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for t in trials:
        values = list(t.values) if t.values else [""] * len(objective_names)
        writer.writerow([t.number, t.state.name, *values,
                         *(t.params.get(p, "") for p in params),
                         *(t.user_attrs.get(a, "") for a in USER_ATTRS),
                         _iso(t.datetime_start), _iso(t.datetime_complete), _duration(t)])
    return buf.getvalue().encode()


def _iso(when) -> str:
    return when.isoformat() if when else ""


def _duration(t: FrozenTrial) -> float | str:
    return t.duration.total_seconds() if t.duration is not None else ""
