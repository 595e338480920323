"""Image GANs through the whole sweep path: digits, DCGAN, sample grids, FD and its floor."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from PIL import Image

from orchestrator.cli import main
from orchestrator.launch import Settings, launch
from orchestrator.spec import SweepSpec

DIGITS = """\
name: digits-tiny
dataset: digits
trainer: dcgan
objective: {metric: eval/fd, direction: minimize}
budget: {trials: 2, steps: 20, eval_every: 10, log_every: 10, eval_samples: 200}
sampler: {name: random, seed: 0}
resources: {cpus_per_trial: 1}
fixed: {base_width: 16, batch_size: 32, z_dim: 16, n_blocks: 2}
space:
  lr_g: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}
"""


@pytest.fixture(scope="module")
def digits_sweep(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    spec_path = root / "digits-tiny.yaml"
    spec_path.write_text(DIGITS)
    settings = Settings.resolve(f"sqlite:///{root}/optuna.db", f"sqlite:///{root}/mlflow.db",
                                checkpoint_root=str(root / "checkpoints"),
                                cache_dir=str(root / "cache"))
    stats = launch(SweepSpec.load(spec_path), settings, notice=lambda m: None)
    client = MlflowClient(settings.tracking_uri)
    exp = client.get_experiment_by_name("digits-tiny")
    runs = client.search_runs([exp.experiment_id])
    return stats, client, root, runs


def test_every_trial_completes_with_fd_at_every_eval(digits_sweep):
    stats, client, _, runs = digits_sweep
    assert stats.done == 2
    trials = [r for r in runs if r.data.tags["gansweep.role"] == "trial"]
    assert len(trials) == 2
    for run in trials:
        fd = client.get_metric_history(run.info.run_id, "eval/fd")
        assert sorted(m.step for m in fd) == [10, 20] and all(m.value > 0 for m in fd)
        for key in ("eval/class_coverage", "eval/class_kl"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)]


def test_sample_grids_are_logged_at_every_eval_and_at_the_end(digits_sweep):
    _, client, _, runs = digits_sweep
    from trainers.grids import image_grid_png

    expected = Image.open(io.BytesIO(image_grid_png(np.zeros((64, 1, 8, 8), np.float32)))).size
    for run in (r for r in runs if r.data.tags["gansweep.role"] == "trial"):
        pngs = [a.path for a in client.list_artifacts(run.info.run_id, "images")
                if a.path.endswith(".png")]
        assert len(pngs) == 2  # steps 10 and 20, for the MLflow UI's image slider
        final = client.download_artifacts(run.info.run_id, "samples/final.png")
        assert Image.open(final).size == expected


def test_parent_run_records_the_floor_and_every_run_names_the_feature_net(digits_sweep):
    _, _, root, runs = digits_sweep
    [parent] = [r for r in runs if r.data.tags["gansweep.role"] == "sweep"]
    assert parent.data.metrics["floor/fd"] > 0
    assert parent.data.metrics["floor/class_coverage"] == 1.0
    net = parent.data.tags["gansweep.feature_net"]
    assert net and all(r.data.tags["gansweep.feature_net"] == net for r in runs)
    assert list((root / "cache" / "feature_nets").iterdir())  # trained once, cached on disk


def test_data_import_cli_writes_parquet_and_refuses_a_missing_source(tmp_path):
    folder = tmp_path / "imgs" / "cats"
    folder.mkdir(parents=True)
    for i in range(5):
        Image.fromarray(np.full((12, 12), i * 40, np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "cats.parquet"
    runner = CliRunner()
    result = runner.invoke(main, ["data", "import", str(tmp_path / "imgs"), "-o", str(out),
                                  "--size", "16"])
    assert result.exit_code == 0, result.output
    assert "5 images" in result.stdout and "skipped 1" in result.stdout and out.exists()
    missing = runner.invoke(main, ["data", "import", str(tmp_path / "nope"), "-o", str(out)])
    assert missing.exit_code == 2 and "nope" in missing.stderr
