"""Checkpoints through pyarrow.fs: atomic names, keep the newest N, fall back past a corrupt one."""

import torch

from orchestrator.actor.checkpoints import TrialCheckpoints


def _payload(step):
    return {"step": step, "weights": torch.full((3,), float(step)), "run_id": "abc"}


def test_keeps_the_newest_and_never_leaves_temp_files(tmp_path):
    ckpts = TrialCheckpoints(str(tmp_path), "sweep", 7, keep=2)
    for step in (10, 20, 30):
        ckpts.save(_payload(step), step)
    folder = tmp_path / "sweep" / "trial-0007"
    assert sorted(p.name for p in folder.iterdir()) == ["step-00000020.pt", "step-00000030.pt"]
    latest = ckpts.load_latest()
    assert latest["step"] == 30 and torch.equal(latest["weights"], torch.full((3,), 30.0))


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    ckpts = TrialCheckpoints(f"file://{tmp_path}", "sweep", 1)
    ckpts.save(_payload(10), 10)
    path = ckpts.save(_payload(20), 20)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])  # truncated mid-write by a dying node
    assert ckpts.load_latest()["step"] == 10


def test_no_checkpoint_yet(tmp_path):
    assert TrialCheckpoints(str(tmp_path), "sweep", 3).load_latest() is None
