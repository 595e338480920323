"""Self-describing trial checkpoints written through pyarrow.fs (local folder, S3, GCS, HDFS).

Layout: `<root>/<sweep>/trial-0007/step-00000250.pt`. Each file holds the trainer's state
(models, optimizers, RNG states, step), the trial's params, seed and MLflow run id. A file is
written under a temporary name and renamed, so a reader never sees half a checkpoint under its
final name; only the newest `keep` files are kept.

The root is resolved by orchestrator/stores/roots.py (S3 endpoints, credentials).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs
import torch

from orchestrator.stores.roots import resolve_root

STEP_RE = re.compile(r"step-(\d+)\.pt$")


@dataclass(frozen=True)
class TrialCheckpoints:
    """Checkpoints of one trial under `root_uri/sweep/trial-NNNN`."""

    root_uri: str
    sweep: str
    number: int
    keep: int = 2

    def _dir(self) -> tuple[pafs.FileSystem, str]:
        fs, base = resolve_root(self.root_uri)
        return fs, f"{base}/{self.sweep}/trial-{self.number:04d}"

    def save(self, payload: dict[str, Any], step: int) -> str:
        fs, folder = self._dir()
        fs.create_dir(folder, recursive=True)
        buf = io.BytesIO()
        torch.save(payload, buf)
        final, tmp = f"{folder}/step-{step:08d}.pt", f"{folder}/.step-{step:08d}.pt.tmp"
        with fs.open_output_stream(tmp) as out:
            out.write(buf.getbuffer())
        fs.move(tmp, final)
        for old in self.steps()[:-self.keep]:
            fs.delete_file(f"{folder}/step-{old:08d}.pt")
        return final

    def steps(self) -> list[int]:
        fs, folder = self._dir()
        infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        found = (STEP_RE.search(info.base_name) for info in infos)
        return sorted(int(m.group(1)) for m in found if m)

    def load_latest(self, run_id: str | None = None) -> dict[str, Any] | None:
        """The newest readable checkpoint (of MLflow run `run_id`, when given); a corrupt newest
        one falls back to the one before."""
        fs, folder = self._dir()
        for step in reversed(self.steps()):
            try:
                with fs.open_input_file(f"{folder}/step-{step:08d}.pt") as src:
                    payload = torch.load(io.BytesIO(src.read()), weights_only=True)
            except Exception:  # truncated or corrupt: try the previous one
                continue
            if run_id is None or payload.get("run_id") == run_id:
                return payload
        return None

    def load(self, step: int) -> dict[str, Any]:
        """The checkpoint at `step` (FileNotFoundError when there is none)."""
        fs, folder = self._dir()
        with fs.open_input_file(f"{folder}/step-{step:08d}.pt") as src:
            return torch.load(io.BytesIO(src.read()), weights_only=True)

    def drop_after(self, step: int) -> None:
        """Remove the checkpoints newer than `step` (PBT: a recipient's own, past the state it
        copied, would otherwise be the newest)."""
        fs, folder = self._dir()
        for newer in (s for s in self.steps() if s > step):
            fs.delete_file(f"{folder}/step-{newer:08d}.pt")

    def clear(self) -> None:
        """Remove what an earlier sweep of the same name left for this trial number."""
        fs, folder = self._dir()
        if fs.get_file_info(folder).type != pafs.FileType.NotFound:
            fs.delete_dir_contents(folder, missing_dir_ok=True)

    def latest_bytes(self) -> bytes | None:
        fs, folder = self._dir()
        steps = self.steps()
        if not steps:
            return None
        with fs.open_input_file(f"{folder}/step-{steps[-1]:08d}.pt") as src:
            return src.read()
