"""Checkpoint roots: a local folder or any URI pyarrow.fs opens (S3, GCS, HDFS), resolved to a
filesystem; an S3 endpoint pinned into the root once, on the driver.

S3-compatible stores (MinIO, Ceph, moto): an `s3://` root without `?endpoint_override=` goes to
the endpoint in $AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else $MLFLOW_S3_ENDPOINT_URL
(pyarrow alone reads only the first two, and so sent checkpoints to AWS when only MLflow's was
set). The driver writes that endpoint into the root once (`pinned_root`), because actors run
with their raylet's environment, not the driver's; an explicit `?endpoint_override=` wins.
Credentials never go into a root: each node reads them from its own environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from orchestrator.stores.redact import mask_secrets, redact_uri

if TYPE_CHECKING:
    import pyarrow.fs as pafs

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
    import pyarrow.fs as pafs

    if "://" not in uri:
        path = Path(uri).expanduser().resolve()
        return pafs.LocalFileSystem(), str(path)
    try:
        fs, path = pafs.FileSystem.from_uri(pinned_root(uri))
    except Exception as exc:
        raise ValueError(mask_secrets(str(exc), uri)) from None
    return fs, path.rstrip("/")
