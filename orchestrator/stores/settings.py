"""A sweep's `Settings`: where its stores live (study storage, tracking server, Ray cluster,
checkpoints, caches), from flags, else the environment, else the embedded defaults.

`resume` and `confirm` rebuild them from a sweep's launch record (orchestrator/study/record.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SpecError
from orchestrator.stores.redact import ROOT_SECRET, redact_uri
from orchestrator.stores.roots import pinned_root, resolve_root
from orchestrator.stores.uris import (
    absolute_sqlite,
    absolute_storage,
    resolve_checkpoint_root,
    resolve_storage,
    resolve_tracking_uri,
)

JOB_ENV_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray for a submitted job's driver
DEFAULT_CHECKPOINT_ROOT = "checkpoints"


def default_cache_dir() -> str:
    return os.environ.get("GANSWEEP_CACHE") or str(Path.home() / ".cache" / "gansweep")


@dataclass(frozen=True)
class Settings:
    """Where things live: study storage, tracking server, Ray cluster, checkpoints."""

    storage: str
    tracking_uri: str
    address: str | None = None
    checkpoint_root: str = DEFAULT_CHECKPOINT_ROOT
    cache_dir: str = ""  # feature networks, by dataset content hash
    feature_extractor: str | None = None  # a user's TorchScript file: eval/fid in its space
    require_gpu: bool = False  # refuse to fall back to CPU when the cluster has no GPU

    @classmethod
    def resolve(cls, storage: str | None = None, tracking_uri: str | None = None,
                address: str | None = None, checkpoint_root: str | None = None,
                cache_dir: str | None = None, feature_extractor: str | None = None,
                require_gpu: bool = False) -> Settings:
        """Flags, else environment, else the embedded defaults; local paths made absolute
        because Ray workers do not share the driver's working directory."""
        return cls(storage=absolute_storage(resolve_storage(storage)),
                   tracking_uri=absolute_sqlite(resolve_tracking_uri(tracking_uri)),
                   address=address or os.environ.get("RAY_ADDRESS") or None,
                   checkpoint_root=_absolute_root(resolve_checkpoint_root(
                       checkpoint_root, DEFAULT_CHECKPOINT_ROOT)),
                   cache_dir=str(Path(cache_dir or default_cache_dir()).expanduser().resolve()),
                   feature_extractor=(str(Path(feature_extractor).expanduser().resolve())
                                      if feature_extractor else None),
                   require_gpu=require_gpu)


JOB_STORE_VARS = {"--storage": "GANSWEEP_STORAGE", "--tracking-uri": "MLFLOW_TRACKING_URI"}


def check_job_store(flag: str, value: str | None) -> None:
    """A sweep's driver running as a Ray Job (`submit`, a KubeRay RayJob) gets no default
    store: a file on the head would vanish with it, and a re-run would start the sweep over.
    `value`: the store given to the driver (a flag, or what a launch record holds), None when
    none was; its environment variable then must be set (an empty value is refused later, as
    an unset shell variable)."""
    var = JOB_STORE_VARS[flag]
    if value is None and os.environ.get(JOB_ENV_VAR) and not os.environ.get(var):
        raise SpecError(f"{flag}: this sweep runs as a Ray Job, and {var} is not set on "
                        f"the cluster: give the shared store (for KubeRay, in the secret "
                        f"the head's envFrom reads)")


def check_job_stores(storage: str | None, tracking_uri: str | None) -> None:
    """Both stores of a driver running as a Ray Job (`check_job_store`)."""
    check_job_store("--storage", storage)
    check_job_store("--tracking-uri", tracking_uri)


def _absolute_root(uri: str) -> str:
    if redact_uri(uri) != uri:
        raise SpecError(f"--checkpoint-root: {redact_uri(uri)}: {ROOT_SECRET}")
    try:
        fs_root = resolve_root(uri)[1]  # refuses here a URI that pyarrow.fs cannot open
    except Exception as exc:
        raise SpecError(f"--checkpoint-root: cannot open {redact_uri(uri)}: {exc}") from None
    return pinned_root(uri) if "://" in uri else fs_root  # every actor: the same S3 endpoint
