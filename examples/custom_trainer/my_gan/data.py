"""The user's data loader: scikit-learn's bundled 8x8 digits, with labels and a held-out split.

gansweep calls `load_digits()` once, on the driver. Returning a `trainers.ImageDataset` makes it
image data: gansweep trains a feature network on it once (cached by content hash) and scores
every evaluation's images with FD, class coverage and class KL, for free.
"""

from __future__ import annotations

import numpy as np

from trainers import ImageDataset


def load_digits(held_out: float = 0.2, seed: int = 0) -> ImageDataset:
    from sklearn.datasets import load_digits as sklearn_digits  # bundled: no download

    digits = sklearn_digits()
    images = np.rint(digits.images / 16.0 * 255.0).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    labels = digits.target.astype(np.int64)  # (N,) in 0..9
    test = np.random.default_rng(seed).random(len(images)) < held_out  # a fixed split
    return ImageDataset("my-digits", images[~test], labels[~test], images[test], labels[test],
                        n_classes=10)
