"""`gansweep check-trainer` refuses what it cannot import, in one line."""

from __future__ import annotations

from click.testing import CliRunner

from orchestrator.cli import main


def test_check_trainer_refuses_what_it_cannot_import_in_one_line(project):
    result = CliRunner().invoke(main, ["check-trainer", "my_gan.nowhere:Trainer"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "gansweep: error: cannot import my_gan.nowhere (for my_gan.nowhere:Trainer): "
        "ModuleNotFoundError: No module named 'my_gan.nowhere'"]
