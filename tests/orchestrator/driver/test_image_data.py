"""Image GANs through the whole sweep path: digits, DCGAN, sample grids, FD and its floor."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from mlflow import MlflowClient
from PIL import Image

from orchestrator.cli import main
from orchestrator.layout import SWEEP_BEST_VALUE

DIGITS = """\
name: digits-tiny
dataset: digits
trainer: dcgan
objective: {metric: eval/kid, direction: minimize}  # any image metric can rank
budget: {trials: 2, steps: 20, eval_every: 10, log_every: 10, eval_samples: 200}
sampler: {name: random, seed: 0}
resources: {cpus_per_trial: 1}
fixed: {base_width: 16, batch_size: 32, z_dim: 16, n_blocks: 2, loss: hinge, r1_weight: 0.1}
space:
  lr_g: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}
  augment: {type: categorical, choices: [translation_cutout, color_translation_cutout]}
"""
SAMPLE_METRICS = ("eval/kid", "eval/kid_std", "eval/precision", "eval/recall", "eval/density",
                  "eval/coverage")


@pytest.fixture(scope="module")
def digits_sweep(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    spec_path = root / "digits-tiny.yaml"
    spec_path.write_text(DIGITS)
    extractor = root / "extractor.pt"  # stands in for a user's own Inception export
    torch.jit.save(torch.jit.script(torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.Tanh())), str(extractor))
    tracking = f"sqlite:///{root}/mlflow.db"
    result = CliRunner(env={"GANSWEEP_CACHE": str(root / "cache")}).invoke(main, [
        "launch", str(spec_path), "--storage", f"sqlite:///{root}/optuna.db", "--tracking-uri",
        tracking, "--checkpoint-root", str(root / "checkpoints"), "--feature-extractor",
        str(extractor)])  # as a user runs it, augmented
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("digits-tiny")
    runs = client.search_runs([exp.experiment_id])
    return result, client, root, runs


def test_every_trial_completes_with_every_image_metric_at_every_eval(digits_sweep):
    result, client, _, runs = digits_sweep
    assert "done 2  running 0  pruned 0  failed 0" in result.output
    trials = [r for r in runs if r.data.tags["gansweep.role"] == "trial"]
    assert len(trials) == 2
    assert {r.data.params["augment"] for r in trials} <= {"translation_cutout",
                                                          "color_translation_cutout"}
    for run in trials:
        fd = client.get_metric_history(run.info.run_id, "eval/fd")
        assert sorted(m.step for m in fd) == [10, 20] and all(m.value > 0 for m in fd)
        for key in ("eval/class_coverage", "eval/class_kl", "eval/fid", *SAMPLE_METRICS):
            history = client.get_metric_history(run.info.run_id, key)
            assert sorted(m.step for m in history) == [10, 20], key


def test_the_sweep_ranks_its_trials_by_kid_when_kid_is_the_objective(digits_sweep):
    _, client, _, runs = digits_sweep
    [parent] = [r for r in runs if r.data.tags["gansweep.role"] == "sweep"]
    finals = [max(client.get_metric_history(r.info.run_id, "eval/kid"), key=lambda m: m.step)
              for r in runs if r.data.tags["gansweep.role"] == "trial"]
    assert parent.data.metrics[SWEEP_BEST_VALUE] == min(m.value for m in finals)


def test_sample_grids_are_logged_at_every_eval_and_at_the_end(digits_sweep):
    _, client, _, runs = digits_sweep
    from trainers.grids import image_grid_png

    expected = Image.open(io.BytesIO(image_grid_png(np.zeros((64, 1, 8, 8), np.float32)))).size
    for run in (r for r in runs if r.data.tags["gansweep.role"] == "trial"):
        pngs = [a.path for a in client.list_artifacts(run.info.run_id, "images")
                if a.path.endswith(".png")]
        assert len(pngs) == 3  # steps 10 and 20, and 10's at step 0, where the slider opens
        final = Image.open(client.download_artifacts(run.info.run_id, "samples/final.png"))
        assert final.width == expected[0] and final.height > expected[1]  # under its title


def test_parent_run_records_the_floor_and_every_run_names_the_feature_net(digits_sweep):
    _, _, root, runs = digits_sweep
    [parent] = [r for r in runs if r.data.tags["gansweep.role"] == "sweep"]
    assert parent.data.metrics["floor/fd"] > 0
    assert parent.data.metrics["floor/class_coverage"] == 1.0
    assert parent.data.metrics["floor/fid"] >= 0  # the same floor in the user's feature space
    floors = {key: parent.data.metrics[key.replace("eval/", "floor/")] for key in SAMPLE_METRICS}
    assert 0.5 < floors["eval/precision"] <= 1 and 0.5 < floors["eval/recall"] <= 1
    assert 0.5 < floors["eval/coverage"] <= 1 and floors["eval/density"] > 0.5
    assert abs(floors["eval/kid"]) < 3 * floors["eval/kid_std"]  # the data against itself: ~0
    net = parent.data.tags["gansweep.feature_net"]
    assert net and all(r.data.tags["gansweep.feature_net"] == net for r in runs)
    assert list((root / "cache" / "feature_nets").iterdir())  # trained once, cached on disk


@pytest.mark.cluster  # an image sweep resumed, then refused (~20 s): make test-cluster
def test_resume_scores_new_trials_with_the_launch_extractor_and_a_different_one_is_refused(
        digits_sweep, tmp_path):
    """The extractor is part of the launch record: `resume` (and so a resubmitted job) reads
    it, so a trial added later still reports eval/fid; another file would break comparisons."""
    _, client, root, _ = digits_sweep
    storage, tracking = f"sqlite:///{root}/optuna.db", f"sqlite:///{root}/mlflow.db"
    runner = CliRunner()
    result = runner.invoke(main, ["resume", "digits-tiny", "--trials", "3", "--storage", storage,
                                  "--tracking-uri", tracking])
    assert result.exit_code == 0, result.output
    exp = client.get_experiment_by_name("digits-tiny")
    trials = [r for r in client.search_runs([exp.experiment_id])
              if r.data.tags["gansweep.role"] == "trial"]
    assert len(trials) == 3 and all("eval/fid" in r.data.metrics for r in trials)
    other = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(),
                                                        torch.nn.Linear(64, 8))), str(other))
    refused = runner.invoke(main, ["launch", str(root / "digits-tiny.yaml"), "--trials", "4",
                                   "--feature-extractor", str(other), "--storage", storage,
                                   "--tracking-uri", tracking,
                                   "--checkpoint-root", str(root / "checkpoints")])
    assert refused.exit_code == 2
    assert refused.stderr.splitlines()[-1].startswith(
        "gansweep: error: --feature-extractor: sweep 'digits-tiny' was launched with "
        "--feature-extractor ")
    assert len(client.search_runs([exp.experiment_id])) == 4  # parent + 3: nothing added




def test_actors_read_the_shared_dataset_zero_copy(ray_local):
    """What the driver puts once is mapped read-only into each actor, not copied per actor."""
    import ray

    from trainers import load_dataset
    from trainers.image_task import ImageTask

    dataset = load_dataset("digits")
    ref = ray.put(ImageTask(dataset, feature_state={}, n_eval=10))

    @ray.remote(num_cpus=1)
    def inspect(task):
        return task.train.flags.writeable, task.train.shape, int(task.train.sum())

    writeable, shape, total = ray.get(inspect.remote(ref))
    assert not writeable  # backed by the object store's shared memory
    assert shape == dataset.train.shape and total == int(dataset.train.sum())


def test_a_feature_extractor_that_is_not_torchscript_is_refused(tmp_path, write_spec,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(DIGITS, "digits.yaml")
    (tmp_path / "inception.pt").write_bytes(b"not a model")
    result = CliRunner().invoke(main, ["launch", str(spec), "--feature-extractor",
                                       str(tmp_path / "inception.pt")])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(
        "gansweep: error: --feature-extractor: ") and "not a TorchScript module" in result.stderr
    assert not (tmp_path / "optuna.db").exists()
