"""The sweep's data, prepared once on the driver and shared with every actor.

For image datasets the driver also makes sure the dataset's feature network exists (trained once
per dataset and cached on disk by the dataset's content hash: `cached_feature_net`), measures the
floor FD(train, held-out) for the parent run, and names the network so that every run says which
one scored it.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.layout import TAG_DATA_HASH, TAG_FEATURE_NET, floor_metric
from orchestrator.spec.sweep import SweepSpec


@dataclass
class PreparedData:
    payload: Any  # what actors get through ray.put: a Mixture, an ImageTask or None
    sweep_metrics: dict[str, float] = field(default_factory=dict)  # the parent run's floor
    tags: dict[str, str] = field(default_factory=dict)  # on the parent and every trial run


def read_extractor(path: str | None) -> bytes | None:
    """A user's TorchScript feature extractor (e.g. their Inception export), checked up front."""
    if path is None:
        return None
    import io

    import torch

    try:
        data = Path(path).read_bytes()
        torch.jit.load(io.BytesIO(data))
    except FileNotFoundError:
        raise SpecError(f"--feature-extractor: {path}: no such file") from None
    except Exception as exc:
        raise SpecError(f"--feature-extractor: {path}: not a TorchScript module "
                        f"({type(exc).__name__})") from None
    return data


def prepare_data(spec: SweepSpec, cache_dir: str, extractor: bytes | None = None,
                 notice=print) -> PreparedData:
    """The spec's dataset, loaded and checked against its trainer before anything is created."""
    from trainers.mixtures import Mixture

    where = f"{Path(spec.path).name or spec.name}: dataset"
    scale = spec.budget.eval_scale
    prepared = prepare_dataset(spec.dataset_target, spec.trainer_target, cache_dir,
                               spec.budget.eval_samples * scale, extractor, notice, where,
                               f"{Path(spec.path).name or spec.name}: budget.eval_samples")
    if scale > 1 and isinstance(prepared.payload, Mixture):
        return dataclasses.replace(prepared, payload=scaled_payload(prepared.payload, scale))
    return prepared


def scaled_payload(payload: Any, scale: int) -> Any:
    """The actors' data with `scale` times the samples per evaluation: a sweep's confirm phase
    (its trials evaluate on more samples) hands it to the actors the search phase used. A
    plug-in's data has no sample count: as it is."""
    from trainers.image_task import ImageTask
    from trainers.mixtures import Mixture

    if scale == 1:
        return payload
    if isinstance(payload, Mixture):
        return dataclasses.replace(payload, n_eval=payload.n_eval * scale)
    if isinstance(payload, ImageTask):
        return ImageTask(payload.dataset, payload.feature_state, payload.extractor,
                         payload.n_eval * scale)
    return payload


def prepare_dataset(dataset: str, trainer: str, cache_dir: str, eval_samples: int = 1000,
                    extractor: bytes | None = None, notice=print,
                    where: str = "--dataset",
                    eval_where: str = "budget.eval_samples") -> PreparedData:
    """Load dataset target `dataset` for trainer target `trainer`: a plug-in's data is checked
    against the trainer's DATA_KIND; image data gets its feature network and FD floor."""
    from orchestrator.errors import describe
    from trainers.base import accepts
    from trainers.image_data import DatasetError
    from trainers.image_metrics import DC_K, KID_SUBSET, MIN_SAMPLES
    from trainers.image_task import ImageTask
    from trainers.registry import PluginError, load_dataset, trainer_class
    from trainers.scoring import data_kind

    try:
        raw = load_dataset(dataset)
    except (DatasetError, PluginError) as exc:
        raise SpecError(f"{where}: {exc}") from None
    except Exception as exc:  # a plug-in's loader failed
        raise SpecError(f"{where}: {dataset} raised {describe(exc)}") from None
    kind, trainer_cls = data_kind(raw), trainer_class(trainer)
    if isinstance(raw, ImageTask):
        raise SpecError(f"{where}: {dataset} returned an ImageTask: return the ImageDataset, "
                        f"and gansweep makes the task (feature network, FD floor) from it")
    if not accepts(trainer_cls, kind):
        raise SpecError(f"{where}: {dataset} gave {kind} data ({type(raw).__name__}), and "
                        f"trainer {trainer} trains on {trainer_cls.DATA_KIND} data")
    if kind != "image":
        return PreparedData(raw)
    if min(len(raw.train), len(raw.test)) < MIN_SAMPLES:  # before a feature net is trained
        raise SpecError(f"{where}: {dataset}: {len(raw.train)} training and {len(raw.test)} "
                        f"held-out images: an image sweep needs {MIN_SAMPLES} of each (its "
                        f"floors compare them; density and coverage take {DC_K} neighbours)")
    if eval_samples < KID_SUBSET:
        raise SpecError(f"{eval_where}: must be >= {KID_SUBSET} on image data (KID averages "
                        f"over subsets of {KID_SUBSET} generated images), got {eval_samples}")
    state, net_id, trained = cached_feature_net(
        raw.train, raw.train_labels, raw.n_classes, raw.content_hash,
        Path(cache_dir) / "feature_nets")
    if trained:
        notice(f"trained the feature network {net_id} for {dataset} (cached in {cache_dir})")
    task = ImageTask(raw, state, extractor, eval_samples)
    floor = {floor_metric(k): v for k, v in task.floor().items()}
    tags = {TAG_FEATURE_NET: net_id, TAG_DATA_HASH: raw.content_hash[:16]}
    return PreparedData(task, floor, tags)


def cached_feature_net(train, labels, n_classes: int, content_hash: str, cache_dir: str | Path,
                       device: str = "cpu") -> tuple[dict, str, bool]:
    """(state, net_id, trained_now) of the feature network of uint8 images `train` (labels None:
    an autoencoder): featnet-<hash[:16]>-v1.pt loaded from `cache_dir`, or fitted and written
    there atomically (temp file + os.replace: a reader never sees a torn file).

    Train it once per sweep, before trials start: two racing writers each keep their own net
    (bitwise equal on CPU, not necessarily on GPU), and their net_ids then tell them apart."""
    import torch

    from trainers import feature_net

    cache_dir = Path(cache_dir)
    path = cache_dir / f"featnet-{content_hash[:16]}-{feature_net.RECIPE_VERSION}.pt"
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        return state, feature_net.net_id(state), False
    state = feature_net.feature_net_state(
        feature_net.fit_feature_net(train, labels, n_classes, device=device))
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return state, feature_net.net_id(state), True
