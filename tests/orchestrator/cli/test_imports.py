"""What each entry point imports: `--help` none of the heavy libraries, the read-only `status`
and `best` Optuna only (no Ray, no torch, no MLflow), parsing a spec and the progress display no
Optuna and no Ray. Each runs in a fresh interpreter, which then lists what it imported."""

import json
import subprocess
import sys

from orchestrator.layout import RUN_ATTR, SEED_ATTR
from orchestrator.spec.sweep import SweepSpec
from orchestrator.study.studies import open_study
from tests.conftest import SYNTHETIC

HEAVY = ("torch", "ray", "optuna", "mlflow")
COMMANDS = ("init", "launch", "submit", "resume", "status", "best", "promote", "confirm",
            "sample", "ui", "check-trainer", "data", "data import")

# runs each `gansweep ARGS...` in-process, then prints the heavy modules they imported
RUN_CLI = (
    "import json, sys\n"
    "from orchestrator.cli import main\n"
    "for args in json.loads(sys.argv[1]):\n"
    "    try:\n"
    "        main(args, prog_name='gansweep')\n"
    "    except SystemExit as exc:\n"
    "        assert not exc.code, (args, exc.code)\n"
    f"print('imported:', *(m for m in {HEAVY!r} if m in sys.modules))\n"
)


def _gansweep(cwd, *commands: list[str]) -> tuple[str, set[str]]:
    """Run each command in one fresh interpreter: its output, and the heavy modules imported."""
    result = subprocess.run([sys.executable, "-c", RUN_CLI, json.dumps(commands)],
                            capture_output=True, text=True, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    output, _, imported = result.stdout.rpartition("imported:")
    return output, set(imported.split())


def test_help_of_every_command_imports_no_heavy_library(tmp_path):
    output, imported = _gansweep(tmp_path, ["--help"], *([*c.split(), "--help"] for c in COMMANDS))
    assert "Usage: gansweep status" in output
    assert imported == set()


def _study(tmp_path) -> None:
    """A real sweep study, as `launch` leaves it: two complete trials with their seed and run."""
    spec = SweepSpec.load(tmp_path / "synth.yaml")
    study = open_study(spec, "sqlite:///optuna.db")  # relative: cwd is tmp_path
    for number, value in enumerate((0.5, 0.25)):
        trial = study.ask()
        trial.suggest_float("x", -2.0, 2.0)
        trial.set_user_attr(SEED_ATTR, 100 + number)
        trial.set_user_attr(RUN_ATTR, f"run-{number}")
        trial.report(value * 2, 2)
        study.tell(trial, value)


def test_status_and_best_read_the_study_with_optuna_only(tmp_path, monkeypatch):
    (tmp_path / "synth.yaml").write_text(SYNTHETIC)
    monkeypatch.chdir(tmp_path)
    _study(tmp_path)
    storage = ["--storage", "sqlite:///optuna.db"]  # relative, as a user types it

    output, imported = _gansweep(tmp_path, ["status", "synth", "--json", *storage])
    rows = json.loads(output)["trials"]
    assert [(r["number"], r["state"], r["value"], r["seed"], r["run_id"]) for r in rows] == [
        (0, "COMPLETE", 0.5, 100, "run-0"), (1, "COMPLETE", 0.25, 101, "run-1")]
    assert imported == {"optuna"}

    output, imported = _gansweep(tmp_path, ["best", "synth", "--json", *storage])
    found = json.loads(output)
    assert (found["number"], found["value"], found["metric"], found["run_id"]) == (
        1, 0.25, "eval/loss", "run-1")
    assert imported == {"optuna"}

    _, imported = _gansweep(tmp_path, ["status", "synth", *storage], ["best", "synth", *storage])
    assert imported == {"optuna"}  # the tables too


def test_parsing_modules_and_the_progress_display_import_neither_optuna_nor_ray():
    code = ("import sys\n"
            "import orchestrator.errors, orchestrator.spec.sweep, orchestrator.spec.search, "
            "orchestrator.spec.space, orchestrator.driver.stats, orchestrator.cli.progress\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
