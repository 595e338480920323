"""Self-describing trial checkpoints written through pyarrow.fs (local folder, S3, GCS, HDFS).

Layout: `<root>/<sweep>/trial-0007/step-00000250.pt`. Each file holds the trainer's state
(models, optimizers, RNG states, step), the trial's params, seed and MLflow run id. A file is
written under a temporary name and renamed, so a reader never sees half a checkpoint under its
final name; only the newest `keep` files are kept.

S3-compatible stores (MinIO, Ceph, moto): an `s3://` root without `?endpoint_override=` goes to
the endpoint in $AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else $MLFLOW_S3_ENDPOINT_URL
(pyarrow alone reads only the first two, and so sent checkpoints to AWS when only MLflow's was
set). The driver writes that endpoint into the root once (`pinned_root`), because actors run
with their raylet's environment, not the driver's; an explicit `?endpoint_override=` wins.
Credentials never go into a root: each node reads them from its own environment.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow.fs as pafs
import torch

from orchestrator.stores.redact import mask_secrets, redact_uri

STEP_RE = re.compile(r"step-(\d+)\.pt$")
ENDPOINT_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")
REGION_VARS = ("AWS_DEFAULT_REGION", "AWS_REGION")  # the AWS C++ SDK's order


def pinned_root(uri: str, environ: Mapping[str, str] | None = None) -> str:
    """`uri` with the S3 endpoint of this process's environment written into it, so that every
    actor, whatever its node's environment, and a later `gansweep resume` use the same store.

    `s3://b/ckpt` with AWS_ENDPOINT_URL=http://minio:9000 becomes
    `s3://b/ckpt?endpoint_override=minio:9000&scheme=http&region=us-east-1`: the region (the
    URI's, else $AWS_DEFAULT_REGION, $AWS_REGION, else us-east-1) keeps pyarrow from asking
    AWS where the bucket is. Addressing stays path-style, pyarrow's default, as S3-compatible
    stores need. Any other URI, or one with `endpoint_override`, is returned unchanged."""
    environ = os.environ if environ is None else environ
    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if parts.scheme != "s3" or "endpoint_override" in query:
        return uri
    var = next((v for v in ENDPOINT_VARS if environ.get(v, "").strip()), None)
    if var is None:  # AWS itself
        return uri
    added = {k: v for k, v in _endpoint_params(environ[var].strip(), var).items()
             if k not in query}
    if "region" not in query:
        added["region"] = next((environ[v] for v in REGION_VARS if environ.get(v)), "us-east-1")
    pinned = "&".join(filter(None, [parts.query, urlencode(added, safe=":[]")]))
    return urlunsplit(parts._replace(query=pinned))


def _endpoint_params(endpoint: str, var: str) -> dict[str, str]:
    """pyarrow's `endpoint_override` (HOST[:PORT]) and `scheme` for an endpoint URL."""
    if "://" not in endpoint:  # HOST[:PORT]: pyarrow's default scheme, https
        return {"endpoint_override": endpoint}
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
        raise ValueError(f"${var}: expected http(s)://HOST[:PORT] for an S3 endpoint, got "
                         f"{redact_uri(endpoint)}")
    return {"endpoint_override": parts.netloc.rpartition("@")[2], "scheme": parts.scheme}


def resolve_root(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and a base path for a local path or any URI pyarrow opens; an `s3://`
    URI takes its endpoint from the environment (`pinned_root`). Errors never show a secret."""
    if "://" not in uri:
        path = Path(uri).expanduser().resolve()
        return pafs.LocalFileSystem(), str(path)
    try:
        fs, path = pafs.FileSystem.from_uri(pinned_root(uri))
    except Exception as exc:
        raise ValueError(mask_secrets(str(exc), uri)) from None
    return fs, path.rstrip("/")


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
