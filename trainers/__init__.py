"""GAN trainers: stateful objects without I/O, importable anywhere (torch, numpy, Pillow only)."""

from trainers.mixtures import Mixture, mixture_metrics
from trainers.mlp_gan import MLPGANConfig, MLPGANTrainer
from trainers.registry import DATASETS, TRAINERS, build_trainer, dataset_kind, load_dataset
from trainers.synthetic import SyntheticConfig, SyntheticTrainer

__all__ = [
    "DATASETS",
    "TRAINERS",
    "MLPGANConfig",
    "MLPGANTrainer",
    "Mixture",
    "SyntheticConfig",
    "SyntheticTrainer",
    "build_trainer",
    "dataset_kind",
    "load_dataset",
    "mixture_metrics",
]
