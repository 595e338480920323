"""What an image GAN trainer receives: a dataset plus the means to score generated images.

The driver builds one `ImageTask` per sweep and shares it through Ray's object store: the uint8
arrays travel zero-copy to every actor on a node, and the feature network travels as a state dict.
Each process builds its evaluator (the network and the held-out statistics) once, on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainers.feature_net import ImageEvaluator
from trainers.image_data import ImageDataset


class ImageTask:
    """What an image trainer trains on: `.train` (N, C, S, S) uint8, `.train_labels`,
    `.channels`, `.size`, `.n_classes`, and `.n_eval`, the images to return per evaluation."""

    def __init__(self, dataset: ImageDataset, feature_state: dict[str, Any],
                 extractor: bytes | None = None, n_eval: int = 1000):
        self.dataset, self.feature_state = dataset, feature_state
        self.extractor, self.n_eval = extractor, n_eval
        self._evaluator: ImageEvaluator | None = None  # built on first use, on its device

    @property
    def train(self) -> np.ndarray:  # (N, C, H, W) uint8
        return self.dataset.train

    @property
    def train_labels(self) -> np.ndarray | None:  # (N,) int64, or None when unlabeled
        return self.dataset.train_labels

    @property
    def n_classes(self) -> int:  # 0 when unlabeled
        return self.dataset.n_classes

    @property
    def channels(self) -> int:
        return self.dataset.channels

    @property
    def size(self) -> int:
        return self.dataset.size

    def evaluator(self, device: str | torch.device = "cpu") -> ImageEvaluator:
        """The evaluator (feature network, user extractor, held-out statistics) on `device`:
        a trial on a GPU scores on its GPU. Built once per process and device."""
        device = torch.device(device)
        if self._evaluator is None or self._evaluator.device != device:
            d = self.dataset
            self._evaluator = ImageEvaluator(self.feature_state, d.test, d.test_labels,
                                             d.n_classes, self.extractor, self.n_eval, device)
        return self._evaluator

    def evaluate_images(self, fake: torch.Tensor,
                        device: str | torch.device = "cpu") -> dict[str, float]:
        """Metrics of generated images (N, C, H, W) in [-1, 1] against the held-out split,
        computed on `device`."""
        return self.evaluator(device).evaluate_images(fake)

    def floor(self) -> dict[str, float]:
        """The same metrics for real training images: the best a generator can hope for."""
        return self.evaluator().floor(self.dataset.train)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_evaluator"] = None  # rebuilt where it is used, never pickled
        return state
