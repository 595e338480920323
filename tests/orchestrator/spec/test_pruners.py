"""The pruners a spec names, as Optuna builds them: loaded, refused in one line naming the field,
and the rung pruners' start-up trials."""

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from orchestrator.cli import main
from orchestrator.spec.pruners import build_pruner
from tests.conftest import SYNTHETIC
from tests.orchestrator.spec.test_search import MULTI, _load


@pytest.mark.parametrize("extra, expected", [
    ("pruner: {name: hyperband, min_resource: 1, reduction_factor: 3}\n", "hyperband"),
    ("pruner: median\n", "median"),
    ("pruner: {name: percentile, percentile: 25.0}\n", "percentile"),
    ("pruner: {name: wilcoxon, p_threshold: 0.1}\n", "wilcoxon"),
    ("pruner: {name: successive_halving, min_resource: 1}\n", "successive_halving"),
    ("", "none"),
])
def test_pruners_load(write_spec, extra, expected):
    assert _load(write_spec, SYNTHETIC + extra).pruner.name == expected


def test_a_pruner_takes_its_own_metric_and_the_objective_by_default(write_spec):
    spec = _load(write_spec, SYNTHETIC + "pruner: {name: median, metric: eval/x_loss}\n")
    assert (spec.pruner.name, spec.pruner.metric, spec.pruner.options) == (
        "median", "eval/x_loss", {})
    assert _load(write_spec, SYNTHETIC + "pruner: median\n").pruner.metric is None


@pytest.mark.parametrize("pruner", [
    "{name: hyperband, min_resource: 1, reduction_factor: 3, n_startup_trials: 2}",
    "{name: successive_halving, min_resource: 1, reduction_factor: 2, n_startup_trials: 2}",
])
def test_rung_pruners_prune_nothing_until_their_startup_trials_complete(write_spec, pruner):
    """The first two trials run to the end even when the second is worse than the first at
    the rung; from then on, a trial as bad is pruned there, the start-up trials being its
    competitors."""
    spec = _load(write_spec, SYNTHETIC + f"pruner: {pruner}\n")
    # a budget of 2 steps: one Hyperband bracket, its one rung at step 1
    study = optuna.create_study(direction="maximize", pruner=build_pruner(spec.pruner, 2))
    pruned = []
    for value in (1.0, 0.0, 0.0, 2.0):
        trial = study.ask()
        trial.report(value, 1)
        pruned.append(trial.should_prune())
        study.tell(trial, state=TrialState.PRUNED) if pruned[-1] else study.tell(trial, value)
    assert pruned == [False, False, True, False]


def test_several_objectives_refuse_a_pruner_with_exit_2(tmp_path, write_spec, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = _load(write_spec, MULTI)
    assert [o.metric for o in spec.objectives] == ["eval/loss", "eval/x_loss"] and spec.multi
    path = write_spec(MULTI + "pruner: median\n", "multi.yaml")
    result = CliRunner().invoke(main, ["launch", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("gansweep: error: multi.yaml: pruner: pruning needs a "
                                     "single objective: Optuna's pruners are single-objective "
                                     "(use pruner: none)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi.yaml", "s.yaml"]
