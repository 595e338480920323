"""Image grids as PNG bytes with Pillow and numpy only (no torchvision in trainers/)."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

MIN_WIDTH = 256  # small images are upscaled until the grid is at least this many pixels wide
PAD_VALUE = 255  # white gaps: they stand out against the dark backgrounds of digit-like data


def image_grid_png(
    images: np.ndarray | torch.Tensor, nrow: int = 8, pad: int = 2, scale: int | None = None
) -> bytes:
    """PNG of `images` (N, C, H, W) in [-1, 1], `nrow` per row, `pad` px between and around them.

    Grey for C=1, RGB for C=3, the channel mean as grey for other channel counts. Each image is
    upscaled `scale` times (nearest); by default the least integer that makes the grid at least
    MIN_WIDTH px wide. Grid size: cols * (W * scale + pad) + pad wide with cols = min(nrow, N),
    rows * (H * scale + pad) + pad high with rows = ceil(N / nrow). Non-finite pixels are grey.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images, dtype=np.float32)
    n, c, h, w = images.shape
    if c not in (1, 3):
        images, c = images.mean(axis=1, keepdims=True), 1
    cols, rows = min(nrow, n), math.ceil(n / nrow)
    if scale is None:
        scale = max(1, math.ceil(MIN_WIDTH / (cols * w)))
    pixels = np.nan_to_num(images, nan=0.0, posinf=1.0, neginf=-1.0).clip(-1.0, 1.0)
    pixels = np.rint((pixels + 1.0) * 127.5).astype(np.uint8)  # (N, C, H, W)
    pixels = pixels.repeat(scale, axis=2).repeat(scale, axis=3)  # (N, C, H*s, W*s)
    hs, ws = h * scale, w * scale
    grid = np.full((rows * (hs + pad) + pad, cols * (ws + pad) + pad, c), PAD_VALUE, np.uint8)
    for i, image in enumerate(pixels):
        top, left = pad + (i // nrow) * (hs + pad), pad + (i % nrow) * (ws + pad)
        grid[top : top + hs, left : left + ws] = image.transpose(1, 2, 0)  # (H*s, W*s, C)
    buf = io.BytesIO()
    Image.fromarray(grid[:, :, 0] if c == 1 else grid).save(buf, format="PNG")
    return buf.getvalue()


TITLE_PAD = 6  # px around the title line


def titled_png(png: bytes, title: str) -> bytes:
    """`png` with a white band on top holding `title` (one line, black, Pillow's default font),
    e.g. "trial 7 · step 400 · eval/score=0.93": a picture that says what it shows wherever it
    ends up (the run's image slider, a contact sheet, a download)."""
    from PIL import ImageDraw, ImageFont

    image = Image.open(io.BytesIO(png)).convert("RGB")
    font = ImageFont.load_default(size=max(11, min(18, image.width // 28)))
    left, top, right, bottom = ImageDraw.Draw(image).textbbox((0, 0), title, font=font)
    band = bottom - top + 2 * TITLE_PAD
    out = Image.new("RGB", (max(image.width, right - left + 2 * TITLE_PAD), image.height + band),
                    "white")
    out.paste(image, (0, band))
    ImageDraw.Draw(out).text((TITLE_PAD, TITLE_PAD - top), title, fill="black", font=font)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()
