"""PNG and JPEG only: opening, decoding to (C, S, S) uint8, encoding back to PNG.

Pillow's other plug-ins are attack surface no dataset needs, so nothing else is decoded. Its
pixel-bomb limit stays on, and a bomb is one more unreadable image: skipped, not fatal.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
IMAGE_FORMATS = ("PNG", "JPEG")  # the only Pillow decoders used: anything else is unreadable
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
# What Pillow raises on a corrupt or truncated file, or a pixel bomb (its warning made an error):
# such items are skipped, not fatal. DatasetError is a ValueError: never raise it inside these.
UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
              Image.DecompressionBombWarning)


def open_image(file: Path | bytes | None) -> Image.Image:
    """A PNG or JPEG file or bytes, opened lazily (header read only); a null row is unreadable."""
    return Image.open(file if isinstance(file, Path) else io.BytesIO(file or b""),
                      formats=IMAGE_FORMATS)


def read_image(open_item: Callable, item, size: int, channels: int) -> np.ndarray | None:
    """open_item(item) as (channels, size, size) uint8, or None: unreadable or a pixel bomb."""
    try:
        with _bombs_unreadable(), open_item(item) as im:
            return to_chw(im, size, channels)
    except UNREADABLE:
        return None


def image_header(open_item: Callable, item) -> tuple[str, int, int] | None:
    """(mode, height, width) without decoding pixels, or None where read_image gives None."""
    try:
        with _bombs_unreadable(), open_item(item) as im:
            return im.mode, im.height, im.width
    except UNREADABLE:
        return None


@contextlib.contextmanager
def _bombs_unreadable() -> Iterator[None]:
    """Over Image.MAX_IMAGE_PIXELS is a pixel bomb, skipped like a corrupt file: Pillow's
    warning becomes an error (over twice that, Pillow raises one itself). The warnings filter is
    process-wide: loaders run once, on the driver, not in threads beside other work."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def to_chw(im: Image.Image, size: int, channels: int) -> np.ndarray:
    """Any Pillow image -> (channels, size, size) uint8; non-square images are stretched."""
    im = im.convert("L" if channels == 1 else "RGB")  # before resizing: palettes can't be filtered
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    a = np.asarray(im)  # (S, S) or (S, S, 3)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def png(arr: np.ndarray) -> bytes:
    """(C, S, S) uint8 -> PNG bytes; lossless, so a load gives back these exact pixels."""
    buf = io.BytesIO()
    Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)).save(buf, "PNG")
    return buf.getvalue()


def square_side(h: int, w: int) -> int:
    """Smallest power of two >= max(h, w), within [8, 64]: what the conv nets are built for."""
    return min(64, max(8, 1 << (max(h, w) - 1).bit_length()))
