"""`gansweep confirm`: the top configs retrained on fresh seeds, and a table a user can trust."""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import threading
import time

import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from scipy.stats import t as student_t

from orchestrator.actor.checkpoints import TrialCheckpoints
from orchestrator.cli import main
from orchestrator.registry.confirm import confirm_spec, enqueue_missing
from orchestrator.spec.sweep import SpecError, SweepSpec
from orchestrator.study.ranking import top_trials
from tests.conftest import RING8_TINY, SYNTHETIC
from tests.orchestrator.study.test_ranking import _confirm_run, _sweep

X = {"x": FloatDistribution(-2.0, 2.0)}


def test_enqueueing_adds_only_the_missing_config_and_seed_pairs():
    sweep = _sweep("minimize", [0.3, 0.1, 0.2])
    confirm = optuna.create_study(direction="minimize")
    assert enqueue_missing(confirm, top_trials(sweep, 2), 2) == 4
    assert enqueue_missing(confirm, top_trials(sweep, 2), 2) == 4  # again: nothing new
    assert enqueue_missing(confirm, top_trials(sweep, 3), 3) == 9
    waiting = confirm.get_trials(states=(TrialState.WAITING,))
    pairs = sorted((t.user_attrs["confirms_trial"], t.user_attrs["seed_index"]) for t in waiting)
    assert pairs == [(s, i) for s in (0, 1, 2) for i in range(3)]
    assert {t.system_attrs["fixed_params"]["x"] for t in waiting
            if t.user_attrs["confirms_trial"] == 1} == {0.1}
    retried = optuna.create_study(direction="minimize")  # a pair that failed is tried again
    _confirm_run(retried, 1, 0, None, state=TrialState.FAIL)
    _confirm_run(retried, 1, 1, 0.2)
    assert enqueue_missing(retried, top_trials(sweep, 1), 2) == 3  # the budget: every trial
    [again] = retried.get_trials(states=(TrialState.WAITING,))
    assert (again.user_attrs["confirms_trial"], again.user_attrs["seed_index"]) == (1, 0)


def test_a_confirm_sweep_has_its_own_study_fresh_seeds_no_pruner_and_more_samples(tmp_path):
    spec = SweepSpec.parse(SYNTHETIC.replace("budget: {", "pruner: {name: median}\nbudget: {"))
    again = confirm_spec(spec, 6)
    assert again.name == "synth-confirm" and again.budget.trials == 6
    assert again.pruner.name == "none" and again.enqueue == ()
    assert again.sampler.seed != spec.sampler.seed and again.sampler.name == "random"
    assert again.budget.eval_scale == 4 and spec.budget.eval_scale == 1
    from orchestrator.driver.data import prepare_data

    ring = SweepSpec.parse(RING8_TINY)
    points = prepare_data(confirm_spec(ring, 2), str(tmp_path)).payload
    assert points.n_eval == 4 * prepare_data(ring, str(tmp_path)).payload.n_eval == 10_000
    multi = optuna.create_study(directions=["minimize", "maximize"])
    with pytest.raises(SpecError, match="2 objectives"):
        top_trials(multi, 1)


def _stores(tmp_path) -> list[str]:
    return ["--storage", f"sqlite:///{tmp_path}/optuna.db",
            "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]


@pytest.mark.cluster  # a sweep, then its confirm, by the CLI (~50 s): make test-cluster
def test_confirm_retrains_the_top_configs_as_child_runs_and_its_table_matches_them(
        ray_local, tmp_path, write_spec, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(RING8_TINY)
    runner = CliRunner()  # both commands on the test's Ray: one start-up
    launched = runner.invoke(main, ["launch", str(spec), *_stores(tmp_path)])  # 4 trials
    assert launched.exit_code == 0, launched.output
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("ring8-tiny").experiment_id
    parent = client.search_runs([experiment], "tags.`gansweep.role` = 'sweep'")[0]
    done = runner.invoke(main, ["confirm", "ring8-tiny", "--top", "2", "--seeds", "2",
                                "--json", *_stores(tmp_path)])
    assert done.exit_code == 0, done.output
    table = json.loads(done.output[done.output.index("{"):])
    runs = client.search_runs([experiment], "tags.`gansweep.role` = 'confirm'")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    sweep = optuna.load_study(study_name="ring8-tiny", storage=f"sqlite:///{tmp_path}/optuna.db")
    top = [t.number for t in top_trials(sweep, 2)]
    by_source: dict[int, list[float]] = {}
    for r in runs:  # fresh seeds, the source's params, the final objective as the statistic
        source = int(r.data.tags["gansweep.confirms_trial"])
        assert r.data.params["lr_g"] == str(sweep.trials[source].params["lr_g"])
        assert r.data.params["seed"] != str(sweep.trials[source].user_attrs["seed"])
        by_source.setdefault(source, []).append(r.data.metrics["eval/reverse_kl"])
    assert sorted(by_source) == sorted(top)
    for row in table["rows"]:
        values = by_source[row["trial"]]
        assert row["mean"] == pytest.approx(statistics.fmean(values))
        assert row["std"] == pytest.approx(statistics.stdev(values))
        margin = student_t.ppf(0.95, 1) * statistics.stdev(values) / math.sqrt(2)
        assert row["bound"] == pytest.approx(statistics.fmean(values) + margin)
    assert table["rows"][0]["bound"] <= table["rows"][1]["bound"]  # minimized: lowest first
    tags = client.get_run(parent.info.run_id).data.tags
    assert tags["gansweep.confirmed_trial"] == str(table["rows"][0]["trial"])
    files = {a.path for a in client.list_artifacts(parent.info.run_id, "confirm")}
    assert files == {"confirm/table.txt", "confirm/table.csv"}
    after = client.get_run(parent.info.run_id)  # the sweep's page and metrics are its own
    assert after.info.status == parent.info.status == "FINISHED"
    note = after.data.tags["mlflow.note.content"]  # the sweep's page, plus the table
    assert note.startswith(parent.data.tags["mlflow.note.content"].split("(updated")[0])
    assert "**Confirmed** by `gansweep confirm`" in note
    assert f"[trial-{table['rows'][0]['trial']:04d}]" in note.split("**Confirmed**")[1]
    assert after.data.metrics["sweep/completed"] == parent.data.metrics["sweep/completed"]
    assert after.data.metrics["confirm/completed"] == 4
    promoted = runner.invoke(main, ["promote", "ring8-tiny", "--model-name", "ring",
                                    *_stores(tmp_path)])
    assert promoted.exit_code == 0, promoted.output
    chosen = table["rows"][0]
    assert "lowest 95% upper bound of eval/reverse_kl over 2 fresh seeds" in promoted.output
    assert f"trial {chosen['trial']}, eval/reverse_kl = {chosen['mean']:.6g}" in promoted.output
    version = client.get_model_version_by_alias("ring", "champion")
    assert version.run_id == chosen["run_id"] and "confirmed: bound" in version.description


SLOW = SYNTHETIC.replace("budget: {trials: 4, steps: 4, eval_every: 2, log_every: 1}",
                         "budget: {trials: 2, steps: 30, eval_every: 10, log_every: 2}"
                         ).replace("resources:", "fixed: {sleep_s: 0.15}\nresources:")


@pytest.mark.cluster  # an actor killed mid-confirm (~35 s): make test-cluster
def test_a_confirm_run_whose_actor_is_killed_resumes_in_the_same_run(
        ray_local, settings, write_spec):
    from orchestrator.driver.launch import launch
    from orchestrator.registry.confirm import plan_confirm, report_confirm

    assert launch(SweepSpec.load(write_spec(SLOW)), settings, notice=lambda m: None).done == 2
    plan = plan_confirm("synth", 1, 2, settings.storage)
    client = MlflowClient(settings.tracking_uri)
    finished: dict = {}
    driver = threading.Thread(target=lambda: finished.update(stats=launch(
        plan.spec, settings, notice=lambda m: None, confirm_of="synth")))
    driver.start()

    def victim():
        runs = client.search_runs(
            [client.get_experiment_by_name("synth").experiment_id],
            "tags.`gansweep.role` = 'confirm' and tags.`gansweep.trial` = '0'")
        if (runs and "gansweep.pid" in runs[0].data.tags
                and TrialCheckpoints(settings.checkpoint_root, "synth-confirm", 0).steps()):
            return runs[0]
    deadline, run = time.time() + 60, None
    while run is None and time.time() < deadline:
        run = victim()
        time.sleep(0.05)
    assert run is not None, "confirm trial 0 never checkpointed"
    os.kill(int(run.data.tags["gansweep.pid"]), signal.SIGKILL)
    driver.join(timeout=120)
    assert not driver.is_alive() and finished["stats"].resumed == 1
    confirm = optuna.load_study(study_name="synth-confirm", storage=settings.storage)
    assert [t.state for t in confirm.trials] == [TrialState.COMPLETE] * 2
    assert confirm.trials[0].user_attrs["attempt"] == 2
    runs = client.search_runs([run.info.experiment_id], "tags.`gansweep.role` = 'confirm'")
    assert sorted(r.data.tags["gansweep.trial"] for r in runs) == ["0", "1"]  # no second run
    rows = report_confirm("synth", plan, settings)
    assert len(rows) == 1 and len(rows[0].values) == 2 and rows[0].failed == 0
