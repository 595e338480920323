"""`gansweep data import`: a folder of images to Parquet, unreadable files skipped, a missing
source refused in one line."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from PIL import Image

from orchestrator.cli import main


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
