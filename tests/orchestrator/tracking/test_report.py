"""Sweep report artifacts, on real in-memory Optuna studies."""

import csv
import io
import logging

import matplotlib.pyplot as plt
import optuna
from optuna.trial import TrialState
from PIL import Image

from orchestrator.tracking.report import _render, sweep_artifacts

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _single_objective_study() -> optuna.Study:
    """12 trials over 2 floats reporting intermediate values: 9 COMPLETE, 2 PRUNED, 1 FAIL."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for n in range(12):
        trial = study.ask()
        lr, beta = trial.suggest_float("lr", 1e-4, 1e-2, log=True), trial.suggest_float("b", 0, 1)
        trial.set_user_attr("seed", 100 + n)
        trial.set_user_attr("mlflow_run_id", f"run{n}")
        for step in range(3):
            trial.report(lr * 100 + beta / (step + 1), step)
        if n in (3, 7):
            study.tell(trial, state=TrialState.PRUNED)
        elif n == 5:
            trial.set_user_attr("fail_reason", "diverged")
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, lr * 100 + beta)
    return study


def _rows(files: dict[str, bytes]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files["optuna/trials.csv"].decode())))


def _assert_png(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert 200 <= image.width <= 3000 and 150 <= image.height <= 3000


def test_single_objective_study_gets_every_plot_and_leaves_no_figure_or_style_behind():
    style = dict(plt.rcParams)
    files = sweep_artifacts(_single_objective_study(), ["eval/fid"])
    assert set(files) == {"optuna/history.png", "optuna/importances.png",
                          "optuna/intermediate_values.png", "optuna/trials.csv"}
    for path in files:
        if path.endswith(".png"):
            _assert_png(files[path])
    assert plt.get_fignums() == []
    assert dict(plt.rcParams) == style  # Optuna's ggplot style does not leak


def test_trials_csv_has_one_row_per_trial_matching_the_study():
    study = _single_objective_study()
    rows = _rows(sweep_artifacts(study, ["eval/fid"]))
    assert len(rows) == len(study.trials)
    for row, trial in zip(rows, study.trials, strict=True):
        assert int(row["number"]) == trial.number
        assert row["state"] == trial.state.name
        if trial.state == TrialState.COMPLETE:
            assert float(row["eval/fid"]) == trial.value
            assert float(row["duration_s"]) >= 0 and row["datetime_complete"]
        assert float(row["params_lr"]) == trial.params["lr"]
        assert float(row["params_b"]) == trial.params["b"]
        assert row["mlflow_run_id"] == f"run{trial.number}"
        assert int(row["seed"]) == 100 + trial.number
    assert [r["state"] for r in rows].count("PRUNED") == 2
    assert [r["fail_reason"] for r in rows if r["state"] == "FAIL"] == ["diverged"]
    assert rows[5]["eval/fid"] == ""  # a failed trial has no value


def test_two_objective_study_gets_a_pareto_front_and_both_value_columns():
    study = optuna.create_study(directions=["minimize", "maximize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)),
                   n_trials=8)
    files = sweep_artifacts(study, ["eval/fid", "eval/modes"])
    assert {"optuna/pareto_front.png", "optuna/history-0.png", "optuna/history-1.png",
            "optuna/importances-0.png", "optuna/importances-1.png"} <= set(files)
    assert "optuna/intermediate_values.png" not in files
    assert "optuna/history.png" not in files
    _assert_png(files["optuna/pareto_front.png"])
    rows = _rows(files)
    assert [(float(r["eval/fid"]), float(r["eval/modes"])) for r in rows] == [
        tuple(t.values) for t in study.trials]


def test_single_complete_trial_still_gets_history_and_csv(caplog):
    study = optuna.create_study()
    study.enqueue_trial({"x": 0.5})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with caplog.at_level(logging.WARNING, logger="orchestrator.tracking.report"):
        files = sweep_artifacts(study, ["eval/loss"])
    assert set(files) == {"optuna/history.png", "optuna/trials.csv"}
    _assert_png(files["optuna/history.png"])
    assert [r["params_x"] for r in _rows(files)] == ["0.5"]
    assert not caplog.records  # importances skipped by design, not by failure


def test_a_failing_plot_is_skipped_with_a_warning_and_its_figure_closed(caplog):
    def broken_plot():
        plt.figure()
        raise ValueError("cannot draw")

    with caplog.at_level(logging.WARNING, logger="orchestrator.tracking.report"):
        assert _render("optuna/broken.png", broken_plot) is None
    assert "optuna/broken.png" in caplog.text and "cannot draw" in caplog.text
    assert plt.get_fignums() == []
