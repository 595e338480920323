"""What a data file may claim, and how a refusal reads: the lowest module of the image loaders.

Every size a file claims (an IDX header, Parquet metadata, a folder's contents) is checked
against these limits before anything is allocated, inflated or walked, and refused in one line
naming the path. Loaders read the limits as `data_limits.MAX_BYTES` at call time, so that a
test can lower one for all of them.
"""

from __future__ import annotations

import os
import reprlib

import numpy as np

MAX_BYTES = 2**32  # pixel bytes held at once (ray.put copies them once more)
MAX_ROWS = 2**24  # images in one dataset (ImageNet-1k has 1.3 M)
MAX_SIDE = 1024  # pixels, metadata `size` / `shape` and IDX rows and columns
MAX_CLASSES = 10_000  # the feature network has one output per class
MAX_ENTRIES = 2_000_000  # files and folders walked under folder:PATH (ImageNet-1k: 1.3 M)
MAX_DEPTH = 32  # folders below folder:PATH; deeper is a loop (a bind mount) or not a dataset


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message is one line naming the path and the problem."""


def require_file(path: str) -> None:
    """Refuse `path` unless it is a regular file (or a link to one)."""
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: {'not a file' if os.path.exists(path) else 'no such file'}")


def allocate(path: str, n: int, channels: int, size: int) -> np.ndarray:
    """An empty (n, channels, size, size) uint8 array, refused past MAX_BYTES."""
    need = n * channels * size * size
    if need > MAX_BYTES:
        raise DatasetError(f"{path}: {n} images of {channels}x{size}x{size} need {need} bytes, "
                           f"more than the limit of {MAX_BYTES}")
    return np.empty((n, channels, size, size), np.uint8)


_SHORT = reprlib.Repr()  # a hostile value is shown cut, so the error stays one short line
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist = 60, 60, 5


def shown(value) -> str:
    """repr(value), cut to a few dozen characters."""
    return _SHORT.repr(value)


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, cut to `limit` characters."""
    line = (str(exc).splitlines() or [type(exc).__name__])[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."
