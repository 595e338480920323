"""`gansweep sample` on real logged and registered generators
(tests/orchestrator/registry/toy_registry.py): the picture, the raw samples, every model URI
form, and one-line errors for bad input."""

from __future__ import annotations

import io
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from orchestrator.cli.registry import sample
from orchestrator.registry.promote import promote
from orchestrator.registry.sample import view_extent
from tests.orchestrator.registry.toy_registry import (
    Z_DIM,
    ImageGenerator,
    points_generator,
    toy_sweep,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An image generator promoted as `img-g`, and a run that logged a points generator."""
    stores = tmp_path_factory.mktemp("stores")
    images = toy_sweep(stores, "images")
    images.add_trial(0.5, ImageGenerator(channels=1, size=4))
    promote(images.study, images.tracking_uri, "img-g")
    points = toy_sweep(stores, "points")
    run_id = points.add_trial(0.5, points_generator(3), best=False)
    return images, run_id


def run(models, *args):
    images, _ = models
    return CliRunner().invoke(sample, [*map(str, args), "--tracking-uri", images.tracking_uri])


def test_a_png_of_images_is_a_grid_about_square(models, tmp_path):
    out = tmp_path / "grid.png"
    result = run(models, "models:/img-g@champion", "-n", 10, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: an image grid of 10 samples (n, 1, 4, 4)" in result.stdout
    image = Image.open(io.BytesIO(out.read_bytes()))
    cols, rows, side = 4, 3, 4 * 16  # ceil(sqrt(10)) per row; 4 px upscaled to >= 256 px wide
    assert image.format == "PNG" and image.mode == "L"
    assert image.size == (cols * (side + 2) + 2, rows * (side + 2) + 2)


def test_the_raw_samples_are_the_generator_on_seeded_noise(models, tmp_path):
    first, again, other = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "c.npy"
    for out, seed in [(first, 5), (again, 5), (other, 6)]:
        assert run(models, "models:/img-g/1", "-n", 7, "-o", out, "--seed", seed).exit_code == 0
    samples = np.load(first)
    z = torch.randn(7, Z_DIM, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = ImageGenerator(channels=1, size=4)(z).numpy()
    assert samples.shape == (7, 1, 4, 4) and samples.dtype == np.float32
    np.testing.assert_allclose(samples, expected, rtol=1e-6)
    np.testing.assert_array_equal(np.load(again), samples)
    assert not np.array_equal(np.load(other), samples)


def test_parquet_has_a_row_per_sample(models, tmp_path):
    _, run_id = models
    images, points = tmp_path / "images.parquet", tmp_path / "points.parquet"
    assert run(models, "models:/img-g@champion", "-n", 9, "-o", images).exit_code == 0
    assert run(models, f"runs:/{run_id}/generator", "-n", 30, "-o", points).exit_code == 0
    table = pq.read_table(images)
    assert table.num_rows == 9 and table.schema.metadata[b"gansweep.sample_shape"] == b"[1, 4, 4]"
    assert np.asarray(table.column("sample").to_pylist()).shape == (9, 16)
    table = pq.read_table(points)
    assert table.num_rows == 30 and table.column_names == ["x", "y"]


def test_a_png_of_points_is_a_scatter_plot(models, tmp_path):
    _, run_id = models
    out = tmp_path / "points.png"
    result = run(models, f"runs:/{run_id}/generator", "-n", 500, "-o", out)
    assert result.exit_code == 0 and "a scatter plot of 500 samples (n, 2)" in result.stdout
    pixels = np.asarray(Image.open(out))
    assert pixels.shape == (320, 320, 3)
    assert ((pixels == (220, 30, 30)).all(axis=2)).sum() > 100  # red points were drawn


def test_a_logged_model_id_works_as_the_model_uri(models, tmp_path):
    images, _ = models
    version = images.client.get_model_version("img-g", "1")
    out = tmp_path / "s.npy"
    assert run(models, version.source, "-n", 3, "-o", out).exit_code == 0  # models:/m-...
    assert np.load(out).shape == (3, 1, 4, 4)


def test_the_view_of_points_ignores_a_few_far_outliers():
    points = np.concatenate([np.random.default_rng(0).uniform(-2, 2, (1000, 2)),
                             [[1e6, 1e6], [np.nan, 0.0]]])
    assert 2.5 < view_extent(points) < 3.0
    assert math.isclose(view_extent(np.full((3, 2), np.nan)), 1.0)


@pytest.mark.parametrize(("args", "flag"), [
    (["models:/nope@champion", "-o", "{tmp}/x.png"], "MODEL_URI: models:/nope@champion"),
    (["models:/img-g/9", "-o", "{tmp}/x.png"], "MODEL_URI: models:/img-g/9"),
    (["models:/img-g/1", "-o", "{tmp}/x.jpg"], "-o: "),
    (["models:/img-g/1", "-o", "{tmp}/x"], "-o: "),
    (["models:/img-g/1", "-o", "{tmp}/no/such/folder/x.png"], "-o: "),
    (["models:/img-g/1", "-o", "{tmp}/x.png", "-n", "0"], "-n: must be from 1 to 1,000,000, got 0"),
    (["models:/img-g/1", "-o", "{tmp}/x.npy", "-n", "1000000000"],
     "-n: must be from 1 to 1,000,000, got 1,000,000,000"),
    (["models:/img-g/1", "-o", "{tmp}/x.png", "--seed", "-1"], "--seed: "),
])
def test_bad_input_is_one_line_naming_the_flag(models, tmp_path, args, flag):
    result = run(models, *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"gansweep: error: {flag}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_tracking_store_is_refused_not_made(tmp_path):
    missing = tmp_path / "mlflow.db"
    result = CliRunner().invoke(sample, ["models:/g@champion", "-o", str(tmp_path / "x.npy"),
                                         "--tracking-uri", f"sqlite:///{missing}"])
    assert result.exit_code == 2 and result.stderr.startswith("gansweep: error: --tracking-uri")
    assert not missing.exists()
