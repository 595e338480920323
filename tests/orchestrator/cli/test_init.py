"""Your own images in three commands: `gansweep data import FOLDER`, `gansweep init --dataset
parquet:FILE` (a starting spec from the measured digits space), `gansweep launch`; and the bad
input on the way (a size dcgan does not train on, a spec that exists), each one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from orchestrator.cli import main


def _shapes(folder: Path, n: int = 24) -> Path:
    """A user's image folder: two classes (sub-folders) of 24x24 grey PNGs."""
    rng = np.random.default_rng(0)
    for cls in ("circles", "bars"):
        (folder / cls).mkdir(parents=True)
        for i in range(n):
            image = np.zeros((24, 24), np.uint8)
            if cls == "bars":
                start = int(rng.integers(2, 18))
                image[:, start:start + 4] = 255
            else:
                y, x = np.ogrid[:24, :24]
                cy, cx = rng.integers(8, 16, 2)
                image[(y - cy) ** 2 + (x - cx) ** 2 < 30] = 255
            Image.fromarray(image).save(folder / cls / f"{i}.png")
    return folder


def _import(tmp_path: Path, size: int) -> str:
    result = CliRunner().invoke(main, ["data", "import", str(_shapes(tmp_path / f"shapes{size}")),
                                       "-o", str(tmp_path / f"shapes{size}.parquet"),
                                       "--size", str(size)])
    assert result.exit_code == 0, result.output
    return f"parquet:{tmp_path / f'shapes{size}.parquet'}"


def test_init_writes_a_spec_for_imported_images_that_launch_accepts(tmp_path, monkeypatch):
    from orchestrator.spec.sweep import SweepSpec

    monkeypatch.chdir(tmp_path)
    dataset = _import(tmp_path, 16)
    result = CliRunner().invoke(main, ["init", "--dataset", dataset])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"wrote shapes16.yaml: sweep shapes16 on {dataset} (the DCGAN family, the digits space)",
        "run it:  gansweep launch shapes16.yaml"]
    spec = SweepSpec.load("shapes16.yaml")
    digits = SweepSpec.load(Path(__file__).parents[3] / "search_spaces" / "digits-dcgan.yaml")
    assert (spec.name, spec.dataset, spec.trainer) == ("shapes16", dataset, "dcgan")
    assert spec.space == digits.space and spec.fixed == digits.fixed  # the measured space

    again = CliRunner().invoke(main, ["init", "--dataset", dataset])
    assert again.exit_code == 2
    assert again.stderr == ("gansweep: error: shapes16.yaml: exists: give another -o, or "
                            "--force to overwrite it\n")
    Path("shapes16.yaml").write_text("my edits\n")
    forced = CliRunner().invoke(main, ["init", "--dataset", dataset, "--force"])
    assert forced.exit_code == 0 and SweepSpec.load("shapes16.yaml").name == "shapes16"


@pytest.mark.parametrize("command", ["init", "launch"])
def test_a_size_dcgan_does_not_train_on_is_refused_with_the_spec(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    dataset = _import(tmp_path, 20)
    (tmp_path / "spec.yaml").write_text(
        (Path(__file__).parents[3] / "search_spaces" / "digits-dcgan.yaml").read_text()
        .replace("dataset: digits16", f"dataset: {dataset}"))
    args = ["init", "--dataset", dataset, "-o", "new.yaml"] if command == "init" else \
        ["launch", "spec.yaml"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    name = "new.yaml" if command == "init" else "spec.yaml"
    assert result.stderr == (
        f"gansweep: error: {name}: dataset: '{dataset}' holds 20x20 images, and trainer dcgan "
        f"trains on 8, 16, 32, 64 px squares: import it again with `gansweep data import ... "
        f"--size N`\n")
    assert not (tmp_path / "new.yaml").exists() and not (tmp_path / "optuna.db").exists()


@pytest.mark.cluster  # a whole sweep of a user's images (~60 s): make test-cluster
def test_own_images_in_three_commands_end_to_end(tmp_path, monkeypatch):
    """import, init, launch, as the README's recipe: the sweep runs on the user's images and
    `best` names a trial (the budget cut to seconds, as a user tries it first)."""
    import json

    monkeypatch.chdir(tmp_path)
    dataset = _import(tmp_path, 16)
    assert CliRunner().invoke(main, ["init", "--dataset", dataset]).exit_code == 0
    spec = Path("shapes16.yaml")
    spec.write_text(spec.read_text().replace("trials: 8", "trials: 2")
                    .replace("steps: 4000", "steps: 200")
                    .replace("eval_every: 500", "eval_every: 100")
                    .replace("min_resource: 1000", "min_resource: 100"))
    launched = CliRunner().invoke(main, ["launch", "shapes16.yaml"])
    assert launched.exit_code == 0, launched.output[-3000:]
    found = json.loads(CliRunner().invoke(main, ["best", "shapes16", "--json"]).output)
    assert found["metric"] == "eval/fd" and found["value"] > 0 and found["run_id"]
