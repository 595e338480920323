"""The project file: commands run anywhere inside a project see its stores; flags and
environment variables still win; a project file gansweep cannot read is one line naming it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.stores.project import PROJECT_FILE, write_project
from orchestrator.stores.settings import Settings
from tests.conftest import SYNTHETIC


def test_a_subfolder_of_a_project_uses_the_projects_stores(tmp_path, monkeypatch):
    write_project(tmp_path)
    deep = tmp_path / "examples" / "mine"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    settings = Settings.resolve()
    assert settings.storage == f"sqlite:///{tmp_path}/optuna.db"
    assert settings.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert settings.checkpoint_root == str(tmp_path / "checkpoints")
    monkeypatch.setenv("GANSWEEP_STORAGE", str(tmp_path / "other.journal"))  # still wins
    assert Settings.resolve(checkpoint_root="ck").storage == str(tmp_path / "other.journal")
    assert Settings.resolve(checkpoint_root="ck").checkpoint_root == str(deep / "ck")


def test_status_in_a_subfolder_lists_and_shows_the_projects_sweeps(tmp_path, monkeypatch):
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.study.studies import open_study

    write_project(tmp_path)
    (tmp_path / "spec.yaml").write_text(SYNTHETIC)
    study = open_study(SweepSpec.load(tmp_path / "spec.yaml"), f"sqlite:///{tmp_path}/optuna.db")
    study.tell(study.ask(), 1.5)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    listed = CliRunner().invoke(main, ["status"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[1].split() == ["synth", "1", "trials", "best",
                                                     "eval/loss=1.5"]
    shown = CliRunner().invoke(main, ["status", "synth"])
    assert shown.exit_code == 0 and "*0" in shown.output


@pytest.mark.parametrize("text, message", [
    ("[stores]\nstorage = 'sqlite:///o.db'\nbucket = 'x'\n",
     "stores.bucket: unknown key (known: storage, tracking_uri, checkpoints)"),
    ("[store]\n", "store: unknown table (known: stores)"),
    ("[stores]\nstorage = 3\n", "stores.storage: must be a non-empty string"),
    ("[stores\n", "cannot read it: "),
])
def test_a_project_file_gansweep_cannot_read_is_one_line_naming_it(tmp_path, monkeypatch, text,
                                                                   message):
    (tmp_path / PROJECT_FILE).write_text(text)
    (tmp_path / "spec.yaml").write_text(SYNTHETIC)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["launch", "spec.yaml"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"gansweep: error: {tmp_path / PROJECT_FILE}: {message}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [PROJECT_FILE, "spec.yaml"]
