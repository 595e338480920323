"""Scatter plots as PNG bytes with Pillow and numpy only (no matplotlib in trainers/)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

REAL_RGB = (170, 170, 170)
FAKE_RGB = (220, 30, 30)
FRAME_RGB = (210, 210, 210)


def scatter_png(real: np.ndarray, fake: np.ndarray, extent: float, size: int = 320) -> bytes:
    """PNG of real (grey) then fake (red, on top) points (n, 2) on a white square.

    The view spans [-extent, extent] on both axes, fixed so images compare across steps and trials;
    points outside it or not finite are dropped.
    """
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)  # (H, W, RGB)
    canvas[[0, -1], :] = FRAME_RGB
    canvas[:, [0, -1]] = FRAME_RGB
    _draw_points(canvas, np.asarray(real, dtype=np.float64), extent, REAL_RGB)
    _draw_points(canvas, np.asarray(fake, dtype=np.float64), extent, FAKE_RGB)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    return buf.getvalue()


def _draw_points(canvas: np.ndarray, points: np.ndarray, extent: float, rgb: tuple) -> None:
    """Paint each point as a 3x3 pixel dot; y grows upwards as in a plot, unlike image rows."""
    size = canvas.shape[0]
    points = points.reshape(-1, 2)
    # Filtering before the int cast keeps huge values (a diverging G) from overflowing it.
    points = points[(np.abs(points) <= extent).all(axis=1)]  # NaN compares False: dropped too
    scaled = (points + extent) / (2.0 * extent) * (size - 1)  # (n, 2) in pixel units
    cols = np.rint(scaled[:, 0]).astype(np.int64)
    rows = np.rint(size - 1 - scaled[:, 1]).astype(np.int64)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            canvas[np.clip(rows + dr, 0, size - 1), np.clip(cols + dc, 0, size - 1)] = rgb
