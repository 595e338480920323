"""A sweep whose spec has `budget.confirm`: its top configs retrained on fresh seeds when the
search ends, on the same actors and into the same parent run; resumable; `promote` picks by the
bound; bad `confirm` settings refused in one line before anything exists."""

from __future__ import annotations

import os
import signal

import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.cli import main
from orchestrator.driver.confirm import pairs_left, plan_phase
from orchestrator.driver.launch import launch
from orchestrator.driver.signals import Interrupted
from orchestrator.spec.sweep import SweepSpec
from orchestrator.study.ranking import champion
from tests.conftest import SYNTHETIC
from tests.orchestrator.study.test_ranking import _confirm_run, _sweep

CONFIRMED = SYNTHETIC.replace("log_every: 1}", "log_every: 1, confirm: {top: 2, seeds: 2}}")
# trials with chunks left when the confirm phase is stopped: 3 chunks of 0.4 s
SLOW = CONFIRMED.replace("trials: 4, steps: 4, eval_every: 2", "trials: 3, steps: 12, "
                         "eval_every: 4").replace("resources:", "fixed: {sleep_s: 0.1}\n"
                                                                "resources:")


def _runs(client: MlflowClient, role: str) -> list:
    experiment = client.get_experiment_by_name("synth").experiment_id
    return client.search_runs([experiment], f"tags.`gansweep.role` = '{role}'")


def _study(settings, name: str = "synth-confirm") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=settings.storage)


def test_the_confirm_phase_plans_the_top_completed_configs_and_says_when_fewer_exist(
        settings):
    sweep = _sweep("minimize", [0.3, 0.1])  # two completed trials
    spec = SweepSpec.parse(CONFIRMED.replace("top: 2", "top: 5"))
    said: list[str] = []
    plan = plan_phase(spec, sweep, settings.storage, said.append)
    assert plan.configs == 2 and plan.spec.budget.trials == 4  # what exists, on 2 seeds each
    assert said == ["synth: budget.confirm.top is 5, and only 2 trial(s) completed: "
                    "confirming those"]
    confirm = _study(settings)
    assert pairs_left(sweep, confirm, 5, 2) == 4  # queued: still to run
    empty = optuna.create_study(direction="minimize")
    assert plan_phase(spec, empty, settings.storage, said.append) is None
    assert said[-1] == "synth: no trial completed: nothing to confirm"


def test_a_confirm_run_that_failed_is_done_for_the_phase_and_retried_by_gansweep_confirm():
    sweep = _sweep("minimize", [0.3, 0.1, 0.2])
    confirm = optuna.create_study(direction="minimize")
    _confirm_run(confirm, 1, 0, None, state=TrialState.FAIL)
    _confirm_run(confirm, 1, 1, 0.2)
    assert pairs_left(sweep, confirm, 1, 2) == 0  # the phase does not run it again
    assert pairs_left(sweep, confirm, 2, 2) == 2  # trial 2's config: both seeds
    assert pairs_left(sweep, None, 2, 3) == 6


@pytest.mark.parametrize("confirm, error", [
    ("{top: 2, seeds: 0}", "budget.confirm.seeds: must be >= 2, got 0"),
    ("{top: 0, seeds: 3}", "budget.confirm.top: must be >= 1, got 0"),
    ("{top: 2, seeds: 3, runs: 4}", "budget.confirm.runs: unknown field (known: top, seeds)"),
    ("{top: 2, seeds: 2.5}", "budget.confirm.seeds: must be an integer, got 2.5"),
    ("{top: '2'}", "budget.confirm.top: must be an integer, got '2'"),
    ("[2, 3]", "budget.confirm: must be a mapping like {top: 2, seeds: 3}, got [2, 3]"),
])
def test_bad_confirm_settings_are_one_line_exit_2_and_nothing_is_created(
        tmp_path, write_spec, confirm, error):
    spec = write_spec(SYNTHETIC.replace("log_every: 1}", f"log_every: 1, confirm: {confirm}}}"),
                      "bad.yaml")
    before = sorted(p.name for p in tmp_path.iterdir())
    done = CliRunner().invoke(main, ["launch", str(spec), "--storage",
                                     f"sqlite:///{tmp_path}/optuna.db", "--tracking-uri",
                                     f"sqlite:///{tmp_path}/made.db"])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [f"gansweep: error: bad.yaml: {error}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_several_objectives_have_no_ranking_to_confirm():
    multi = CONFIRMED.replace("objective: {metric: eval/loss, direction: minimize}",
                              "objectives: [{metric: eval/loss, direction: minimize}, "
                              "{metric: eval/x_loss, direction: minimize}]")
    with pytest.raises(Exception, match="budget.confirm: a sweep with 2 objectives has no"):
        SweepSpec.parse(multi, source="m.yaml")


def test_a_sweep_with_confirm_ends_with_confirm_runs_on_its_actors_in_its_parent_run(
        ray_local, settings, write_spec):
    said: list[str] = []
    stats = launch(SweepSpec.load(write_spec(CONFIRMED)), settings, notice=said.append)
    assert stats.done == 4  # the search's stats
    assert "synth: confirming the top 2 on 2 fresh seeds (4 runs, 4x the eval samples)" in said
    confirm = _study(settings)
    assert [t.state for t in confirm.trials] == [TrialState.COMPLETE] * 4
    client = MlflowClient(settings.tracking_uri)
    [parent] = _runs(client, "sweep")
    assert parent.info.status == "FINISHED"
    trials, confirms = _runs(client, "trial"), _runs(client, "confirm")
    assert len(trials) == 4 and len(confirms) == 4
    assert {r.data.tags["mlflow.parentRunId"] for r in confirms} == {parent.info.run_id}
    # no actor made for the confirm: the pool's 2 slots ran everything (on a busy machine one
    # slot's actor may start so late that the search never used it, and the confirm does)
    pids = {r.data.tags["gansweep.pid"] for r in trials + confirms}
    assert len(pids) <= 2
    tags = parent.data.tags
    best_seeds = [r for r in confirms if r.data.tags["gansweep.confirms_trial"]
                  == tags["gansweep.confirmed_trial"]]
    assert len(best_seeds) == 2 and "**Confirmed**" in tags["mlflow.note.content"]
    assert parent.data.metrics["confirm/completed"] == 4
    files = {a.path for a in client.list_artifacts(parent.info.run_id, "confirm")}
    assert files == {"confirm/table.txt", "confirm/table.csv"}

    said.clear()  # searched and confirmed: answered before Ray, nothing run again
    assert launch(SweepSpec.load(write_spec(CONFIRMED)), settings, notice=said.append) is None
    assert said[0].startswith("synth: budget met, 4 of 4 trials done")
    assert len(_study(settings).trials) == 4

    chosen = champion(_study(settings, "synth"), confirm)  # what `promote` registers
    assert chosen.trial == int(tags["gansweep.confirmed_trial"])
    assert chosen.rule.startswith("lowest 95% upper bound of eval/loss over 2 fresh seeds")


@pytest.mark.cluster  # a sweep stopped mid-confirm, then resumed (~35 s): make test-cluster
def test_an_interrupted_confirm_phase_resumes_its_trials_without_running_search_again(
        ray_local, settings, write_spec):
    spec = SweepSpec.load(write_spec(SLOW))

    def interrupt_once_confirming(stats) -> None:  # Ctrl-C as the first confirm run trains
        if stats.phase == "confirm" and stats.running and not interrupted:
            interrupted.append(True)
            os.kill(os.getpid(), signal.SIGINT)
    interrupted: list[bool] = []
    with pytest.raises(Interrupted) as stopped:
        launch(spec, settings, on_update=interrupt_once_confirming, notice=lambda m: None)
    assert stopped.value.suspended  # checkpointed, left RUNNING to resume
    search = [t.state for t in _study(settings, "synth").trials]
    assert search == [TrialState.COMPLETE] * 3
    left = {t.number for t in _study(settings).trials if t.state == TrialState.RUNNING}
    assert left == set(stopped.value.suspended)
    client = MlflowClient(settings.tracking_uri)
    assert _runs(client, "sweep")[0].info.status == "KILLED"

    said: list[str] = []
    stats = launch(spec, settings, notice=said.append)  # = `gansweep resume synth`
    assert stats is None and "synth: search done (3 trials); its confirm phase goes on" in said
    assert len(_study(settings, "synth").trials) == 3  # no search trial run again
    confirm = _study(settings)
    assert [t.state for t in confirm.trials] == [TrialState.COMPLETE] * 4
    assert {t.number for t in confirm.trials if t.user_attrs.get("attempt", 1) > 1} == left
    runs = _runs(client, "confirm")
    assert sorted(int(r.data.tags["gansweep.trial"]) for r in runs) == [0, 1, 2, 3]  # no twin
    assert all(r.info.status == "FINISHED" for r in runs)
    [parent] = _runs(client, "sweep")
    assert parent.info.status == "FINISHED" and "gansweep.confirmed_trial" in parent.data.tags


def test_the_progress_display_shows_the_confirm_phase_as_a_bar_of_its_own():
    import io

    from rich.console import Console

    from orchestrator.cli.progress import SweepProgress
    from orchestrator.driver.stats import SweepStats

    out = io.StringIO()
    with SweepProgress(SweepSpec.parse(CONFIRMED),
                       Console(file=out, width=120, force_terminal=False)) as progress:
        progress.update(SweepStats(budget=4, done=4))
        progress.update(SweepStats(budget=6, done=1, phase="confirm"))
    tasks = {t.fields["name"]: (t.completed, t.total) for t in progress.progress.tasks}
    assert tasks == {"synth": (4, 4), "synth confirm": (1, 6)}
