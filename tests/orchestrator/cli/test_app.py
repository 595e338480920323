"""The `gansweep` process's exit: the interpreter's exit steps without its teardown (the private
functions it calls: tests/orchestrator/test_private_apis.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from tests.orchestrator.test_import_graph import ROOT


def test_the_command_exits_after_its_threads_and_atexit_handlers_with_its_code():
    code = ("import atexit, sys, threading, time\n"
            "from orchestrator.cli import app\n"
            "def later():\n"
            "    time.sleep(0.3); print('thread done', flush=True)\n"
            "threading.Thread(target=later).start()\n"
            "atexit.register(lambda: print('atexit ran', flush=True))\n"
            "sys.argv = ['gansweep', '--version']\n"
            "app.run()\n"
            "print('never here')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert lines[-2:] == ["thread done", "atexit ran"] and "never here" not in lines


@pytest.mark.parametrize("args, line", [
    (["data", "import", "x", "-o", "y", "--size", "100"],
     "gansweep: error: gansweep data import: Invalid value for '--size': 100 is not in the "
     "range 8<=x<=64. (--help says more)"),
    (["launch", "x.yaml", "--trials", "abc"],
     "gansweep: error: gansweep launch: Invalid value for '--trials': 'abc' is not a valid "
     "integer. (--help says more)"),
    (["launch"], "gansweep: error: gansweep launch: Missing argument 'SPEC'. (--help says more)"),
    (["nosuch"], "gansweep: error: gansweep: No such command 'nosuch'. (--help says more)"),
])
def test_a_flag_click_refuses_is_one_line_and_exit_2(args, line):
    done = CliRunner().invoke(main, args, prog_name="gansweep")
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [line]


def test_ctrl_c_in_any_command_exits_130(monkeypatch):
    import orchestrator.study.results as results

    def interrupted(study):
        raise KeyboardInterrupt
    monkeypatch.setattr(results, "trial_rows", interrupted)
    monkeypatch.setattr("orchestrator.cli.results.load_sweep_study", lambda name, storage: None,
                        raising=False)
    done = CliRunner().invoke(main, ["status", "x", "--storage", "sqlite:///:memory:"],
                              prog_name="gansweep")
    assert done.exit_code == 130, done.output
