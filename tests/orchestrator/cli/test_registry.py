"""`gansweep promote`'s refusal of a model name MLflow's search filters cannot hold, before any
store is opened (promote, confirm and sample on real stores: tests/orchestrator/registry/)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from orchestrator.cli import main


@pytest.mark.parametrize("name, why", [("a'b", "must not contain \"'\""),
                                       ("a\nb", "must not contain '\\n'"),
                                       ("", "must be 1 to 200 printable characters")])
def test_promote_refuses_a_model_name_a_filter_cannot_hold(tmp_path, monkeypatch, name, why):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["promote", "synth", "--model-name", name])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gansweep: error: --model-name: {why}"), result.stderr
    assert list(tmp_path.iterdir()) == []
