"""`gansweep status` and `best` on real Optuna studies: their JSON for one objective and several,
and the link to the best run (its tracking server's, without credentials, or `gansweep ui`'s)."""

from __future__ import annotations

import json
import re

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


def test_status_is_one_line_per_trial_best_first_in_80_columns(tmp_path, monkeypatch):
    """Complete trials by the objective (best starred), then running, pruned and failed; an
    attempt column; long params and reasons cut with an ellipsis, `--wide` shows them all."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    from orchestrator.layout import ATTEMPT_ATTR, REASON_ATTR

    monkeypatch.setenv("COLUMNS", "80")
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    study.set_metric_names(["eval/score"])
    dists = {"learning_rate_generator": FloatDistribution(1e-5, 1e-2),
             "discriminator_architecture": CategoricalDistribution(["wide_residual_blocks",
                                                                   "plain"])}
    params = {"learning_rate_generator": 1.234567e-4,
              "discriminator_architecture": "wide_residual_blocks"}
    for value, state, attrs in ((0.5, TrialState.COMPLETE, {}),
                                (None, TrialState.FAIL, {REASON_ATTR: "RuntimeError: " + "x" * 90}),
                                (0.9, TrialState.COMPLETE, {ATTEMPT_ATTR: 3}),
                                (None, TrialState.PRUNED, {}),
                                (0.7, TrialState.COMPLETE, {})):
        study.add_trial(create_trial(params=params, distributions=dists, value=value,
                                     state=state, user_attrs=attrs))
    result = CliRunner().invoke(main, ["status", "s", "--storage", storage])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, result.output
    assert lines[0].startswith("sweep s: 5 trials, best #2 eval/score=0.9 (maximize)")
    header = next(line for line in lines if " state " in line and " try " in line)
    rows = [line for line in lines if re.match(r"\s*\*?\d+\s", line)]
    assert [row.split()[0] for row in rows] == ["*2", "4", "0", "3", "1"]  # one line each
    assert [row.split()[1] for row in rows] == ["COMPLETE"] * 3 + ["PRUNED", "FAIL:"]
    at = header.index(" try ")
    assert [row[at:at + 5].strip() for row in rows] == ["3", "1", "1", "1", "1"]
    assert any(line.rstrip().endswith("…") for line in lines)
    assert "eval/score: PacGAN score" in result.output
    wide = CliRunner().invoke(main, ["status", "s", "--storage", storage, "--wide"])
    assert "RuntimeError: " + "x" * 90 in wide.output and "wide_residual_blocks" in wide.output


def test_status_says_what_twice_the_trials_would_find_once_three_are_complete(tmp_path):
    """One line for one objective from 3 complete trials on (pruned ones do not count), with
    what it assumes; none with fewer, and none for several objectives."""
    from optuna.trial import TrialState

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(storage=storage, study_name="s", direction="minimize")
    study.set_metric_names(["eval/reverse_kl"])

    def expected_line() -> list[str]:
        output = CliRunner().invoke(main, ["status", "s", "--storage", storage]).output
        return [line for line in output.splitlines() if line.startswith("expected best")]

    for value, state in ((0.9, TrialState.COMPLETE), (None, TrialState.PRUNED),
                         (0.4, TrialState.COMPLETE)):
        study.add_trial(create_trial(value=value, state=state))
    assert expected_line() == []  # 2 complete trials
    study.add_trial(create_trial(value=0.6))
    [line] = expected_line()
    mean, low, high = map(float, re.match(
        r"expected best at 2x trials \(6\): (\S+) \[(\S+), (\S+)\] \(now 0.4\)$", line).groups())
    assert low <= mean <= high == 0.4  # lower is better: more trials never lose the best 0.4
    output = CliRunner().invoke(main, ["status", "s", "--storage", storage]).output
    assert "(assumes i.i.d. trials, as random search's; TPE's are better" in output
    found = json.loads(CliRunner().invoke(
        main, ["status", "s", "--json", "--storage", storage]).output)["expected_best"]
    assert (found["trials"], found["best_now"], found["high"]) == (6, 0.4, 0.4)
    assert found["low"] <= found["mean"] <= 0.4 and found["assumes"].startswith("assumes i.i.d.")
    pareto = optuna.create_study(storage=storage, study_name="p", directions=["maximize"] * 2)
    for v in range(4):
        pareto.add_trial(create_trial(values=[v, v]))
    output = CliRunner().invoke(main, ["status", "p", "--storage", storage]).output
    assert "expected best" not in output


def test_status_of_a_pbt_sweep_says_its_rounds_and_each_members_exploits_in_80_columns(
        tmp_path, monkeypatch):
    """One line on the population (from the launch record and the study), and a column with
    each member's exploits and the donor of its last; no i.i.d. extrapolation for members that
    copy each other; --json carries both."""
    from orchestrator.layout import PBT_LINEAGE_ATTR, PBT_PARAMS_ATTR, PBT_ROUND_ATTR

    monkeypatch.setenv("COLUMNS", "80")
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(storage=storage, study_name="p", direction="minimize")
    study.set_metric_names(["eval/reverse_kl"])
    study.set_user_attr(LAUNCH_ATTR, {"spec": "name: p\nscheduler: {name: pbt, population: 4, "
                                              "interval: 500}\n"})
    study.set_user_attr(PBT_ROUND_ATTR, 1500)
    dists = {"learning_rate_generator": FloatDistribution(1e-5, 1e-2, log=True)}
    lineages = {0: [], 1: [[500, 0], [1500, 3]], 2: [[1000, 0]], 3: []}
    for number, value in ((0, 0.4), (1, 0.1), (2, 0.3), (3, 0.2)):
        params = {"learning_rate_generator": 1.234567e-4 * (number + 1)}
        study.add_trial(create_trial(params=params, distributions=dists, value=value,
                                     intermediate_values={2000: value},
                                     user_attrs={PBT_PARAMS_ATTR: params,
                                                 PBT_LINEAGE_ATTR: lineages[number]}))
    result = CliRunner().invoke(main, ["status", "p", "--storage", storage])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, result.output
    assert "pbt: population 4, round every 500 steps, last round at step 1500, 3 exploits" in \
        lines
    header = next(line for line in lines if " exploits " in line)
    rows = [line for line in lines if re.match(r"\s*\*?\d+\s", line)]
    at = header.index("exploits")
    assert [(row.split()[0], row[at:at + 8].strip()) for row in rows] == [
        ("*1", "2 <-3"), ("3", "0"), ("2", "1 <-0"), ("0", "0")]
    assert "expected best" not in result.output
    found = json.loads(CliRunner().invoke(main, ["status", "p", "--json", "--storage",
                                                 storage]).output)
    assert found["pbt"] == {"population": 4, "interval": 500, "last_round": 1500, "exploits": 3}
    assert found["trials"][1]["exploits"] == [[500, 0], [1500, 3]]
