"""Each cluster file's install steps, run as written into a fresh venv with this machine's Python
(slow: `make test-cluster`). A pin that does not resolve on the Python floor, or a setup
command that no longer installs gansweep, fails here instead of on a cluster's first node."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "clusters"
PROJECT_ONLY = shutil.ignore_patterns(".venv", ".git", "mlartifacts", "mlruns", "checkpoints",
                                      "*.db", "__pycache__", "*.egg-info", ".*_cache")
CHECK = ("import importlib.metadata as m, orchestrator.cli, torch, optuna, mlflow, psycopg; "
         "print(m.version('torch').split('+')[0], m.version('optuna'), m.version('mlflow'))")
_installed: dict[tuple[str, ...], Path] = {}  # identical steps are run once


def _machine_env(home: Path) -> dict[str, str]:
    """This machine's shell without the project's venv: its own python3."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return {**env, "HOME": str(home), "PATH": path}


def _pins() -> tuple[str, str, str]:
    text = (ROOT / "constraints.txt").read_text()
    return tuple(re.search(rf"^{name}==(\S+)$", text, re.M).group(1)
                 for name in ("torch", "optuna", "mlflow"))


def _run(commands: list[str], home: Path, cwd: Path) -> None:
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=_machine_env(home),
                              capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_the_launchers_setup_commands_install_gansweep_with_its_pins(name, tmp_path_factory):
    cfg = yaml.safe_load((CLUSTERS / name).read_text())
    commands = tuple(cfg["setup_commands"])
    home = _installed.get(commands)
    if home is None:
        home = tmp_path_factory.mktemp("node")
        [(mount, src)] = [(d, s) for d, s in cfg["file_mounts"].items() if s == "."]
        shutil.copytree(ROOT, home / Path(mount).name, ignore=PROJECT_ONLY)  # ~/gansweep
        _run(list(commands), home, home)
        _installed[commands] = home
    python = home / "venv" / "bin" / "python"
    done = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True,
                          env=_machine_env(home), cwd=home)
    assert done.returncode == 0, done.stderr[-2000:]
    assert tuple(done.stdout.split()) == _pins()
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True).stdout.strip()
    assert version == "True"
    bashrc = (home / ".bashrc").read_text()
    assert bashrc.count("RAY_AUTH_MODE=token") == 1 and "$HOME/venv/bin" in bashrc


def test_the_dockerfile_install_step_installs_gansweep_with_its_pins(tmp_path):
    """The image's RUN step, run as written with a fresh venv's pip and python first on PATH
    (the image's are Ray's Python 3.11)."""
    text = (CLUSTERS / "Dockerfile").read_text().replace("\\\n", " ")
    [run] = [r for r in re.findall(r"^RUN (.+)$", text, re.M) if "pip install" in r]
    context = tmp_path / "context"
    shutil.copytree(ROOT, context, ignore=PROJECT_ONLY)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    env = _machine_env(tmp_path)
    env["PATH"] = f"{tmp_path / 'venv' / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["bash", "-c", run], cwd=context, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gansweep image ok" in done.stdout
    check = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c", CHECK],
                           capture_output=True, text=True, cwd=tmp_path)
    assert tuple(check.stdout.split()) == _pins(), check.stderr[-2000:]
