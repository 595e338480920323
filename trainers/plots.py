"""Scatter plots as PNG bytes with Pillow and numpy only (no matplotlib in trainers/)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

REAL_RGB = (170, 170, 170)
FAKE_RGB = (220, 30, 30)
FRAME_RGB = (210, 210, 210)
GRID_RGB = (236, 236, 236)
AXIS_RGB = (150, 150, 150)
MODE_RGB = (20, 90, 200)
TEXT_RGB = (90, 90, 90)
MARGIN = 26  # pixels left of and below the plot, for the tick labels


def scatter_png(real: np.ndarray, fake: np.ndarray, extent: float, size: int = 320,
                modes: np.ndarray | None = None) -> bytes:
    """PNG of real (grey) then fake (red, on top) points (n, 2), with the data's modes (blue
    crosses, when given), axes through 0, a light grid and tick labels at whole numbers.

    The view spans [-extent, extent] on both axes, fixed so images compare across steps and trials;
    points outside it or not finite are dropped. `size`: the side of the picture.
    """
    from PIL import ImageDraw

    side, size = size, size - MARGIN  # the picture; the plot inside it
    plot = np.full((size, size, 3), 255, dtype=np.uint8)  # (H, W, RGB)
    ticks = _ticks(extent)
    for t in ticks:  # the grid, then the axes through 0
        at = _pixel(np.array([t]), extent, size)[0]
        plot[:, at] = AXIS_RGB if t == 0 else GRID_RGB
        plot[size - 1 - at, :] = AXIS_RGB if t == 0 else GRID_RGB
    plot[[0, -1], :] = FRAME_RGB
    plot[:, [0, -1]] = FRAME_RGB
    _draw_points(plot, np.asarray(real, dtype=np.float64), extent, REAL_RGB)
    _draw_points(plot, np.asarray(fake, dtype=np.float64), extent, FAKE_RGB)
    if modes is not None:
        _draw_crosses(plot, np.asarray(modes, dtype=np.float64), extent)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(Image.fromarray(plot), (MARGIN, 0))
    draw = ImageDraw.Draw(canvas)
    for t in ticks:
        at, label = _pixel(np.array([t]), extent, size)[0], f"{t:g}"
        draw.text((MARGIN + at - 3 * len(label), size + 6), label, fill=TEXT_RGB)  # x
        draw.text((MARGIN - 6 * len(label) - 6, size - 1 - at - 5), label, fill=TEXT_RGB)  # y
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def _ticks(extent: float) -> list[float]:
    """Whole-number ticks inside the view (halves for a view under 1.5 wide)."""
    step = 1.0 if extent >= 1.5 else 0.5
    last = int(np.floor(extent / step))
    return [i * step for i in range(-last, last + 1)]


def _pixel(values: np.ndarray, extent: float, size: int) -> np.ndarray:
    return np.rint((values + extent) / (2.0 * extent) * (size - 1)).astype(np.int64)


def _draw_crosses(canvas: np.ndarray, modes: np.ndarray, extent: float) -> None:
    """An 11-pixel blue cross, 2 pixels thick, at each mode, drawn over the points."""
    size = canvas.shape[0]
    modes = modes.reshape(-1, 2)
    modes = modes[(np.abs(modes) <= extent).all(axis=1)]
    cols, rows = _pixel(modes[:, 0], extent, size), size - 1 - _pixel(modes[:, 1], extent, size)
    for d in range(-5, 6):
        for w in (0, 1):
            canvas[np.clip(rows + w, 0, size - 1), np.clip(cols + d, 0, size - 1)] = MODE_RGB
            canvas[np.clip(rows + d, 0, size - 1), np.clip(cols + w, 0, size - 1)] = MODE_RGB


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
