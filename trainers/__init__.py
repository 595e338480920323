"""GAN trainers: stateful objects without I/O, importable anywhere (torch, numpy, Pillow only).

The contract a trainer follows, built-in or your own, is `trainers.base.GANTrainer`.
"""

from trainers.base import DATA_KINDS, Evaluation, GANTrainer, build_config
from trainers.image_data import ImageDataset
from trainers.image_task import ImageTask
from trainers.mixtures import Mixture, mixture_metrics
from trainers.mlp_gan import MLPGANConfig, MLPGANTrainer
from trainers.noise import eval_noise
from trainers.registry import (
    DATASETS,
    TRAINERS,
    PluginError,
    build_trainer,
    dataset_kind,
    load_dataset,
    trainer_class,
)
from trainers.scoring import Scored, data_kind, score
from trainers.synthetic import SyntheticConfig, SyntheticTrainer

__all__ = [
    "DATASETS",
    "DATA_KINDS",
    "TRAINERS",
    "Evaluation",
    "GANTrainer",
    "ImageDataset",
    "ImageTask",
    "MLPGANConfig",
    "MLPGANTrainer",
    "Mixture",
    "PluginError",
    "Scored",
    "SyntheticConfig",
    "SyntheticTrainer",
    "build_config",
    "build_trainer",
    "data_kind",
    "eval_noise",
    "dataset_kind",
    "load_dataset",
    "mixture_metrics",
    "score",
    "trainer_class",
]
