"""`gansweep ui` on a store that is not there: one line, and no empty store made (the server and
its links: tests/orchestrator/tracking/test_ui.py)."""

from __future__ import annotations

from click.testing import CliRunner

from orchestrator.cli.ui import ui as ui_command


def test_ui_on_a_missing_store_fails_in_one_line_and_makes_none(tmp_path):
    result = CliRunner().invoke(ui_command, ["--tracking-uri",
                                             f"sqlite:///{tmp_path}/nothing.db"])
    assert result.exit_code == 2
    assert "no MLflow store at" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "nothing.db").exists()
