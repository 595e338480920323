"""Free GAN metrics: the samples an `Evaluation` carries, scored for the data they imitate.

Any trainer, built-in or a user's, gets these without writing them:
- 2D points on a `Mixture`: the PacGAN metrics (eval/modes, eval/high_quality, eval/reverse_kl,
  eval/score, eval/coverage) and a scatter plot of real (grey) and generated (red) points;
- images on an `ImageTask`: eval/fd in the dataset's classifier features, and in the same space
  eval/kid (and eval/kid_std), eval/precision, eval/recall, eval/density and eval/coverage
  (trainers/image_metrics.py; each one's floor is on the sweep's parent run), eval/class_coverage
  and eval/class_kl with labels, eval/fid with a user feature extractor, and an 8x8 grid of the
  first 64 images.
Metrics the trainer returns itself are kept as they are and win over a scored one of the same name.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import torch

from trainers.base import Evaluation
from trainers.grids import image_grid_png
from trainers.image_data import ImageDataset
from trainers.image_metrics import SAMPLE_METRICS
from trainers.image_task import ImageTask
from trainers.mixtures import Mixture, mixture_metrics
from trainers.plots import scatter_png

GRID_N = 64  # images in the sample grid, 8 per row
N_REAL_PLOT = 2_500  # real points drawn under the generated ones
REAL_PLOT_SEED = 0  # the same real points in every plot of every trial
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RANGE_SLACK = 1e-3  # images past [-1, 1] by more than this are in another range ([0, 1], [0, 255])


MIXTURE_METRICS = ("eval/modes", "eval/high_quality", "eval/reverse_kl", "eval/score",
                   "eval/coverage")
IMAGE_METRICS = ("eval/fd", *SAMPLE_METRICS, "eval/class_coverage", "eval/class_kl", "eval/fid")


def scored_metrics(kind: str) -> tuple[str, ...]:
    """The eval/ metrics gansweep scores from the samples of a trainer whose DATA_KIND is
    `kind` (class_* need labels, eval/fid a --feature-extractor)."""
    return {"mixture": MIXTURE_METRICS, "image": IMAGE_METRICS,
            "any": MIXTURE_METRICS + IMAGE_METRICS}.get(kind, ())


@dataclass(frozen=True)
class Scored:
    metrics: dict[str, float]  # the trainer's own metrics and the scored ones
    image: bytes | None  # PNG for the run's image slider, or None


def data_kind(data: Any) -> str:
    """The DATA_KIND (trainers.base.DATA_KINDS) of a dataset object: an ImageDataset is image
    data (the driver wraps it in an ImageTask), anything unknown is custom."""
    if data is None:
        return "none"
    if isinstance(data, Mixture):
        return "mixture"
    if isinstance(data, (ImageTask, ImageDataset)):
        return "image"
    return "custom"


def score(evaluation: Evaluation, data: Any, device: str = "cpu") -> Scored:
    """Metrics and image of one evaluation on `data` (as a trainer receives it), image metrics
    computed on `device` (the trial's: feature network and a user's FID extractor); raises
    ValueError, naming what is wrong, for samples that do not fit the data, a metric that is not
    a number, or an image that is not a PNG."""
    metrics: dict[str, float] = {}
    image = evaluation.image
    if image is not None and not (isinstance(image, bytes) and image.startswith(PNG_MAGIC)):
        raise ValueError("evaluate(): Evaluation.image must be the bytes of a PNG file")
    if evaluation.samples is not None:
        samples = _cpu_float(evaluation.samples)
        if isinstance(data, Mixture):
            metrics, drawn = _score_points(samples, data)
        elif isinstance(data, ImageTask):
            metrics, drawn = _score_images(samples, data, device)
        else:
            raise ValueError(f"evaluate() returned samples, which gansweep scores on mixture or "
                             f"image data only; this data is {data_kind(data)} "
                             f"({type(data).__name__}): return metrics instead")
        image = drawn if image is None else image
    metrics.update({key: _number(key, value) for key, value in evaluation.metrics.items()})
    return Scored(metrics, image)


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"evaluate(): metric {key} must be a number, got "
                         f"{type(value).__name__}")
    return float(value)


def sample_shape(data: Any) -> tuple[int, ...] | None:
    """The shape of one sample gansweep scores on `data`: (2,) points for a mixture,
    (C, S, S) images for image data; None for data it does not score."""
    if isinstance(data, Mixture):
        return (2,)
    if isinstance(data, (ImageTask, ImageDataset)):
        return (data.channels, data.size, data.size)
    return None


def _score_points(points: torch.Tensor, mixture: Mixture) -> tuple[dict[str, float], bytes]:
    if tuple(points.shape[1:]) != sample_shape(mixture) or len(points) < 1:
        raise ValueError(f"evaluate(): samples on {mixture.name} must be points (n, 2), got "
                         f"{tuple(points.shape)}")
    scores = mixture_metrics(points, mixture)
    metrics = {f"eval/{key}": float(value) for key, value in scores.items()}
    real = mixture.sample(N_REAL_PLOT, torch.Generator().manual_seed(REAL_PLOT_SEED))
    extent = 1.25 * mixture.extent + 0.25  # a margin around the outermost modes
    return metrics, scatter_png(real.numpy(), points.numpy(), extent, modes=mixture.means)


def _score_images(images: torch.Tensor, task: ImageTask,
                  device: str) -> tuple[dict[str, float], bytes]:
    expected = sample_shape(task)
    if tuple(images.shape[1:]) != expected or len(images) < 2:
        raise ValueError(f"evaluate(): samples on this dataset must be images (n >= 2, "
                         f"{', '.join(map(str, expected))}) in [-1, 1], got "
                         f"{tuple(images.shape)}")
    low, high = float(images.min()), float(images.max())  # NaN (a diverged G) passes: scored NaN
    if low < -1 - RANGE_SLACK or high > 1 + RANGE_SLACK:
        raise ValueError(f"evaluate(): samples on this dataset must be images in [-1, 1], as "
                         f"the data is given to the trainer, got values in "
                         f"[{low:.3g}, {high:.3g}]")
    return task.evaluate_images(images, device), image_grid_png(images[:GRID_N], nrow=8)


def _cpu_float(samples: Any) -> torch.Tensor:
    if not isinstance(samples, torch.Tensor):
        raise ValueError(f"evaluate(): samples must be a torch.Tensor, got "
                         f"{type(samples).__name__}")
    return samples.detach().cpu().float()
