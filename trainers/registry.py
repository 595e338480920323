"""Name -> trainer and name -> dataset: the strings a sweep spec uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainers.dcgan import DCGANTrainer
from trainers.image_data import IMAGE_PREFIXES, load_image_dataset
from trainers.mixtures import grid25, ring8
from trainers.mlp_gan import MLPGANTrainer
from trainers.synthetic import SyntheticTrainer

TRAINERS: dict[str, type] = {
    "mlp_gan": MLPGANTrainer,
    "dcgan": DCGANTrainer,
    "synthetic": SyntheticTrainer,
}

# Datasets with a fixed name; files come in as parquet:PATH, folder:PATH or idx:PATH.
DATASETS: dict[str, Callable[[], Any]] = {
    "ring8": ring8,
    "grid25": grid25,
    "digits": lambda: load_image_dataset("digits"),
    "digits16": lambda: load_image_dataset("digits16"),
    "digits32": lambda: load_image_dataset("digits32"),
    "none": lambda: None,
}
KINDS = {"ring8": "mixture", "grid25": "mixture", "none": "none"}


def dataset_kind(name: str) -> str:
    """"mixture", "image" or "none": which trainers can take the dataset `name`."""
    if name in DATASETS:
        return KINDS.get(name, "image")
    if name.startswith(IMAGE_PREFIXES):
        return "image"
    raise KeyError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)}, or "
                   f"{', '.join(p + 'PATH' for p in IMAGE_PREFIXES)})")


def load_dataset(name: str) -> Any:
    """The dataset called `name`: a Mixture, an ImageDataset, or None for "none"."""
    if name in DATASETS:
        return DATASETS[name]()
    dataset_kind(name)  # unknown names fail with the list of known ones
    return load_image_dataset(name)


def build_trainer(name: str, params: dict, data: Any, seed: int, device: str = "cpu") -> Any:
    """A fresh trainer `name` on `data`; params are validated by its Config.from_params."""
    return _lookup(TRAINERS, name, "trainer")(params, data, seed, device)


def _lookup(registry: dict, name: str, kind: str) -> Any:
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(registry)}") from None
