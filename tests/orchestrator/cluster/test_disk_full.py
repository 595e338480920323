"""A disk that fills up during a sweep: the sweep stops in one line (exit 1) with every trial in
flight at its last complete checkpoint, and `gansweep resume` finishes it once there is space,
with one run per trial, each closed, and no step logged twice.

The disk is a real one of 3 MB (a tmpfs mounted for the test, holding every store: the
checkpoints, mlflow.db, mlartifacts and optuna.db) where this machine lets the test mount one;
elsewhere a plug-in trainer's checkpoint fails with the OS's ENOSPC until the test frees the
"space" (a flag file), which exercises the same path from the actor's failed write on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from tests.conftest import RING8_TINY, SYNTHETIC

GANSWEEP = str(Path(sys.executable).parent / "gansweep")

PLUGIN = '''\
import errno
import os

from trainers.synthetic import SyntheticTrainer

FULL = {flag!r}


class FullDisk(SyntheticTrainer):
    """Its checkpoints fail as on a full disk while FULL exists."""

    def state_dict(self):
        if os.path.exists(FULL):
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().state_dict()
'''


def _mount(folder: Path, size: str) -> bool:
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(folder)], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _gansweep(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own Ray, as a user's
    return subprocess.run([GANSWEEP, *args], cwd=folder, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture
def full_disk(tmp_path):
    """(folder, spec text, free): a folder whose disk fills up during the spec's sweep, and
    how to free space there."""
    disk = tmp_path / "disk"
    if _mount(disk, "3m"):
        def free():
            subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
        try:
            yield disk, RING8_TINY.replace("trials: 4", "trials: 6"), free
        finally:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
        return
    flag = tmp_path / "FULL"
    flag.touch()
    (disk / "disk_gans.py").write_text(PLUGIN.format(flag=str(flag)))
    yield disk, SYNTHETIC.replace("trainer: synthetic", "trainer: disk_gans:FullDisk"), \
        flag.unlink


@pytest.mark.cluster  # two whole CLI sweeps (~40 s): make test-cluster
def test_a_full_disk_stops_the_sweep_in_one_line_and_resume_finishes_it_once_freed(full_disk):
    folder, text, free = full_disk
    (folder / "spec.yaml").write_text(text)
    name = text.split("\n", 1)[0].removeprefix("name: ")

    stopped = _gansweep(folder, "launch", "spec.yaml")
    assert stopped.returncode == 1, stopped.stderr[-3000:]
    lines = [line for line in stopped.stderr.splitlines()  # not the progress bar, nor the
             if "━" not in line and not line.startswith("the stores are in")]  # first launch's
    assert lines[-1].startswith(f"gansweep: error: {name}: stopped, no space left on device ("), \
        stopped.stderr[-3000:]
    assert lines[-1].endswith(f"free space, then `gansweep resume {name}`")
    assert "Traceback" not in stopped.stderr and len(lines) <= 4, stopped.stderr[-3000:]
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder}/optuna.db")
    assert TrialState.FAIL not in {t.state for t in study.trials}  # none failed for it
    assert TrialState.RUNNING in {t.state for t in study.trials}

    free()
    resumed = _gansweep(folder, "resume", name)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder}/optuna.db")
    budget = 6 if "ring8" in name else 4
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * budget
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    experiment = client.get_experiment_by_name(name).experiment_id
    runs = client.search_runs([experiment], "tags.`gansweep.role` = 'trial'")
    assert sorted(int(r.data.tags["gansweep.trial"]) for r in runs) == list(range(budget))
    assert {r.info.status for r in runs} == {"FINISHED"}  # each closed, none left RUNNING
    objective = "eval/reverse_kl" if "ring8" in name else "eval/loss"
    for run in runs:  # every eval once: nothing lost, nothing logged twice
        steps = [m.step for m in client.get_metric_history(run.info.run_id, objective)]
        assert steps and sorted(steps) == sorted(set(steps)), (run.data.tags, steps)
