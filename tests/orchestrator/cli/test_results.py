"""`gansweep status` and `best` on real Optuna studies: their JSON for one objective and several,
and the link to the best run (its tracking server's, without credentials, or `gansweep ui`'s)."""

from __future__ import annotations

import json

import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from orchestrator.cli import main
from orchestrator.layout import LAUNCH_ATTR, RUN_ATTR

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def test_status_json_of_a_multi_objective_sweep_lists_its_directions(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(storage=storage, study_name="pareto",
                                directions=["maximize", "minimize"])
    study.set_metric_names(["eval/modes", "eval/reverse_kl"])
    study.add_trial(create_trial(params={"lr": 0.1}, distributions={
        "lr": FloatDistribution(0.01, 1)}, values=[7, 0.2]))
    result = CliRunner().invoke(main, ["status", "pareto", "--json", "--storage", storage])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["directions"] == ["maximize", "minimize"] and "direction" not in found
    assert [g["metric"] for g in found["objectives"]] == ["eval/modes", "eval/reverse_kl"]
    assert found["trials"][0]["values"] == {"eval/modes": 7, "eval/reverse_kl": 0.2}


def test_status_json_of_one_objective_keeps_its_direction(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    optuna.create_study(storage=storage, study_name="one", direction="maximize")
    found = json.loads(CliRunner().invoke(
        main, ["status", "one", "--json", "--storage", storage]).output)
    assert (found["direction"], found["directions"]) == ("maximize", ["maximize"])


def test_best_links_its_run_on_the_sweeps_tracking_server_without_its_credentials(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(storage=storage, study_name="s")
    study.set_user_attr(LAUNCH_ATTR, {"tracking_uri": "http://me:***@mlflow.example:5000"})
    study.add_trial(create_trial(params={}, distributions={}, value=1.0,
                                 user_attrs={RUN_ATTR: "r1"}))
    found = json.loads(CliRunner().invoke(main, ["best", "s", "--json", "--storage",
                                                 storage]).output)
    assert found["run_url"] == "http://mlflow.example:5000/#/runs/r1?workflowType=machine_learning"


def test_best_of_a_local_store_links_its_run_on_gansweep_uis_address(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(storage=storage, study_name="s")
    study.add_trial(create_trial(params={}, distributions={}, value=1.0,
                                 user_attrs={RUN_ATTR: "r1"}))
    output = CliRunner().invoke(main, ["best", "s", "--storage", storage]).output
    assert "open it: http://127.0.0.1:5000/#/runs/r1?workflowType=machine_learning" in output
    assert "with `gansweep ui s` running" in output
