"""Name -> trainer and name -> dataset: the strings a sweep spec uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainers.mixtures import Mixture, grid25, ring8
from trainers.mlp_gan import MLPGANTrainer
from trainers.synthetic import SyntheticTrainer

TRAINERS: dict[str, type] = {
    "mlp_gan": MLPGANTrainer,
    "synthetic": SyntheticTrainer,
}

DATASETS: dict[str, Callable[[], Mixture | None]] = {
    "ring8": ring8,
    "grid25": grid25,
    "none": lambda: None,
}


def load_dataset(name: str) -> Mixture | None:
    """The dataset called `name`; "none" is None, for trainers that need no data."""
    return _lookup(DATASETS, name, "dataset")()


def build_trainer(name: str, params: dict, data: Any, seed: int, device: str = "cpu") -> Any:
    """A fresh trainer `name` on `data`; params are validated by its Config.from_params."""
    return _lookup(TRAINERS, name, "trainer")(params, data, seed, device)


def _lookup(registry: dict, name: str, kind: str) -> Any:
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(registry)}") from None
