"""`promote` on real stores: a real Optuna study and real MLflow runs with real logged generators
(tests/orchestrator/registry/toy_registry.py), no Ray. Every test has its own sweep in one pair
of stores."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import optuna
import pytest
import torch
from click.testing import CliRunner

from orchestrator.actor.models import input_example, log_model_kwargs
from orchestrator.cli import main
from orchestrator.layout import AT_BEST, AT_LAST, BEST_MODEL_NAME, MODEL_NAME, TAG_CHAMPION
from orchestrator.registry.promote import promote, version_model_id
from orchestrator.study.ranking import champion
from tests.orchestrator.registry.toy_registry import METRIC, Z_DIM, points_generator, toy_sweep


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return tmp_path_factory.mktemp("stores")


def logged_model(sweep, run_id, at):
    found = sweep.client.search_logged_models(
        experiment_ids=[sweep.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND tags.`gansweep.at` = '{at}'")
    assert len(found) == 1
    return found[0]


def test_the_version_and_the_logged_model_link_both_ways_and_say_why(stores):
    sweep = toy_sweep(stores, "link")
    sweep.add_trial(0.2)
    run_id = sweep.add_trial(0.7)
    done = promote(sweep.study, sweep.tracking_uri, "link-g",
                   storage="postgresql://gansweep:hunter2@db:5432/optuna")
    client, best = sweep.client, logged_model(sweep, run_id, AT_BEST)
    version = client.get_model_version("link-g", done.version)
    assert version_model_id(version) == best.model_id and version.run_id == run_id
    # the logged model's page shows the registration (the tag MLflow's UI reads)
    listed = json.loads(client.get_logged_model(best.model_id).tags["mlflow.modelVersions"])
    assert listed == [{"name": "link-g", "version": done.version}]
    assert {k: v for k, v in version.tags.items() if k != "gansweep.run_id"} == {
        "gansweep.sweep": "link", "gansweep.trial": "1", "gansweep.objective": METRIC,
        "gansweep.direction": "maximize", "gansweep.value": "0.7",
        "gansweep.rule": f"best {METRIC} (maximize)", "gansweep.generator": "trial-0001-best",
        "gansweep.storage": "postgresql://gansweep:***@db:5432/optuna"}
    for words in ("Sweep link, trial 1", run_id, f"{METRIC} = 0.7 (maximize)",
                  f"Chosen by: best {METRIC} (maximize)", "its best evaluation (step 40",
                  "postgresql://gansweep:***@db:5432/optuna"):
        assert words in version.description
    assert "hunter2" not in version.description + json.dumps(version.tags)
    assert client.get_run(run_id).data.tags[TAG_CHAMPION] == "true"


def test_the_champion_runs_on_float64_noise_with_a_gaussian_example_and_pinned_torch(
        stores, tmp_path):
    sweep = toy_sweep(stores, "loads")
    generator = points_generator(7)
    sweep.add_trial(0.5, generator)
    promote(sweep.study, sweep.tracking_uri, "loads-g")
    uri = "models:/loads-g@champion"
    pyfunc = mlflow.pyfunc.load_model(uri)  # the tracking URI promote set
    out = pyfunc.predict(np.random.default_rng(1).standard_normal((16, Z_DIM)))  # float64
    assert out.shape == (16, 2) and np.isfinite(out).all()
    z = torch.randn(100, Z_DIM)
    loaded = mlflow.pytorch.load_model(uri)
    with torch.no_grad():
        assert torch.equal(loaded(z), generator(z))  # float32, as the trainers' contract says
        assert torch.allclose(loaded(z.double()), generator(z))  # and float64
    with open(mlflow.pyfunc.get_model_dependencies(uri)) as f:
        requirements = f.read().split()
    assert f"torch=={torch.__version__.split('+')[0]}" in requirements
    path = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path))
    example = mlflow.models.Model.load(path).load_input_example(path)
    assert example.shape == (16, Z_DIM) and 0.5 < example.std() < 1.5  # not zeros
    np.testing.assert_array_equal(example, input_example(Z_DIM))  # seeded: same every log


def test_a_new_best_moves_the_alias_and_the_new_version_says_what_it_replaced(stores):
    sweep = toy_sweep(stores, "move")
    first_run = sweep.add_trial(0.4)
    first = promote(sweep.study, sweep.tracking_uri, "move-g")
    again = promote(sweep.study, sweep.tracking_uri, "move-g")
    assert (again.version, again.created, again.alias_moved) == (first.version, False, False)
    new_run = sweep.add_trial(0.9)
    moved = promote(sweep.study, sweep.tracking_uri, "move-g")
    client = sweep.client
    assert moved.created and moved.alias_moved and moved.version != first.version
    assert str(client.get_model_version_by_alias("move-g", "champion").version) == moved.version
    assert (moved.replaced.version, moved.replaced.value) == (first.version, "0.4")
    version = client.get_model_version("move-g", moved.version)
    assert version.tags["gansweep.replaced_version"] == first.version
    assert version.tags["gansweep.replaced_value"] == "0.4"
    assert f"Replaced version {first.version} as champion (trial 0, {METRIC} = 0.4)" in (
        version.description)
    assert client.get_run(first_run).data.tags[TAG_CHAMPION] == "false"
    assert client.get_run(new_run).data.tags[TAG_CHAMPION] == "true"
    assert len(client.search_model_versions("name = 'move-g'")) == 2


def test_at_last_promotes_the_last_generator_and_an_older_run_falls_back_to_it(stores):
    sweep = toy_sweep(stores, "older")
    run_id = sweep.add_trial(0.3, best=False)  # logged before trials kept their best generator
    fallback = promote(sweep.study, sweep.tracking_uri, "older-g")  # --at best
    assert (fallback.generator, fallback.fell_back) == ("trial-0000-last", True)
    description = sweep.client.get_model_version("older-g", fallback.version).description
    assert "the run has no best generator" in description
    last = logged_model(sweep, run_id, AT_LAST)
    sweep2 = toy_sweep(stores, "newer")
    run2 = sweep2.add_trial(0.3)
    done = promote(sweep2.study, sweep2.tracking_uri, "newer-g", at="last")
    version = sweep2.client.get_model_version("newer-g", done.version)
    assert (done.generator, done.fell_back) == ("trial-0000-last", False)
    assert version_model_id(version) == logged_model(sweep2, run2, AT_LAST).model_id
    assert version_model_id(sweep.client.get_model_version("older-g", "1")) == last.model_id


def test_a_version_registered_before_gets_its_link_and_no_twin(stores):
    sweep = toy_sweep(stores, "mend")
    run_id = sweep.add_trial(0.5)
    best = logged_model(sweep, run_id, AT_BEST)
    sweep.client.create_registered_model("mend-g")
    sweep.client.create_model_version("mend-g", best.model_uri, run_id, model_id=best.model_id)
    done = promote(sweep.study, sweep.tracking_uri, "mend-g")  # as the old promote left it
    assert (done.version, done.created) == ("1", False)
    tags = sweep.client.get_logged_model(best.model_id).tags
    assert json.loads(tags["mlflow.modelVersions"]) == [{"name": "mend-g", "version": "1"}]


def test_cli_promote_says_the_rule_and_what_changed(stores):
    sweep = toy_sweep(stores, "cli")
    sweep.add_trial(0.6, best=False)
    args = ["promote", "cli", "--model-name", "cli-g", "--storage", sweep.storage,
            "--tracking-uri", sweep.tracking_uri]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert f"chosen by best {METRIC} (maximize): trial 0, {METRIC} = 0.6" in first.stdout
    assert "has no best generator" in first.stdout  # fell back, and says so
    assert "registered new cli-g version 1 from trial 0 " in first.stdout
    sweep.add_trial(0.8)
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert "alias champion -> version 2 (was version 1: trial 0, eval/score = 0.6)" in (
        second.stdout)
    third = CliRunner().invoke(main, args + ["--at", "best"])
    assert "already registered: cli-g version 2" in third.stdout
    assert "alias champion -> version 2 (unchanged)" in third.stdout


def test_a_pareto_pick_names_its_rule(tmp_path):
    study = optuna.create_study(directions=["minimize", "maximize"])
    study.set_metric_names(["eval/fd", "eval/coverage"])
    for values, run in [((1.0, 0.2), "a"), ((2.0, 0.9), "b")]:
        study.add_trial(optuna.trial.create_trial(values=values, params={}, distributions={},
                                                  user_attrs={"mlflow_run_id": run}))
    choice = champion(study, None, "eval/coverage")
    assert (choice.trial, choice.run_id, choice.value) == (1, "b", 0.9)
    assert choice.rule == ("--pick eval/coverage: the Pareto point with the best eval/coverage "
                           "(maximize)")


def test_a_run_logged_before_generators_were_named_after_their_trial_still_promotes(stores):
    """Runs of older versions hold `generator` and `generator_best`, untagged."""
    sweep = toy_sweep(stores, "legacy")
    run_id = sweep.add_trial(0.5, best=False)
    sweep.client.delete_logged_model(logged_model(sweep, run_id, AT_LAST).model_id)
    mlflow.set_tracking_uri(sweep.tracking_uri)
    with mlflow.start_run(run_id=run_id):  # as the older actor logged them
        last = mlflow.pytorch.log_model(name=MODEL_NAME,
                                        **log_model_kwargs(points_generator(1), Z_DIM))
        mlflow.pytorch.log_model(name=BEST_MODEL_NAME,
                                 **log_model_kwargs(points_generator(2), Z_DIM))
    done = promote(sweep.study, sweep.tracking_uri, "legacy-g")
    assert (done.generator, done.fell_back) == (BEST_MODEL_NAME, False)
    done = promote(sweep.study, sweep.tracking_uri, "legacy-g", at="last")
    assert done.generator == MODEL_NAME and version_model_id(
        sweep.client.get_model_version("legacy-g", done.version)) == last.model_id


def test_the_registered_model_says_what_its_versions_are_and_which_is_champion(stores):
    sweep = toy_sweep(stores, "said")
    sweep.add_trial(0.4)
    first = promote(sweep.study, sweep.tracking_uri, "said-g")
    said = sweep.client.get_registered_model("said-g").description
    assert f"Alias `champion`: version {first.version}, sweep said, trial 0" in said
    assert "models:/said-g@champion" in said
    sweep.add_trial(0.9)
    moved = promote(sweep.study, sweep.tracking_uri, "said-g")
    said = sweep.client.get_registered_model("said-g").description
    assert f"version {moved.version}, sweep said, trial 1, {METRIC} = 0.9" in said
