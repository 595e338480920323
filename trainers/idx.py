"""MNIST IDX files of unsigned bytes, gzipped or not, read as uint8 arrays.

The header is read first, through a streaming gzip reader where the file is gzipped, and the
size it claims is checked against the limits and the file before anything is allocated or
inflated: a gzip bomb is refused from its header alone.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from trainers import data_limits
from trainers.data_limits import DatasetError, require_file

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # uint8 data; the low byte is the number of dimensions
_KINDS = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
_GZIP_MAX_RATIO = 1032  # deflate expands a byte to at most ~1032: a header claiming more lies


def read_idx(path: str, magic: int) -> np.ndarray:
    """An IDX file -> (N, H, W) uint8 for images, (N,) for labels. The header is read and
    checked first, then exactly the bytes it claims."""
    require_file(path)
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"  # gzip's magic: decide by content, not by file name
        raw.seek(0)
        try:
            with (gzip.GzipFile(fileobj=raw) if gz else raw) as f:  # streams: inflates as read
                dims = _header(path, f, magic)
                n = _claim(path, dims, os.fstat(raw.fileno()).st_size, gz)
                data = np.empty(n, np.uint8)
                got = _read_into(f, memoryview(data))
                if got < n or f.read(1):
                    held = f"{got}" if got < n else "more"
                    raise DatasetError(f"{path}: the header claims {n} data bytes ({list(dims)}), "
                                       f"the file holds {held}")
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetError(f"{path}: {'corrupt gzip data' if gz else 'cannot read'} "
                               f"({e})") from None
    return data.reshape(dims)


def label_paths(path: str) -> list[str]:
    """The labels file beside an images file: MNIST names differ in one word, gzipped or not."""
    if "images-idx3-ubyte" not in path:
        return []
    base = path.replace("images-idx3-ubyte", "labels-idx1-ubyte").removesuffix(".gz")
    return [base + ".gz", base] if path.endswith(".gz") else [base, base + ".gz"]


def _header(path: str, f, magic: int) -> tuple[int, ...]:
    """The magic number and dimensions, checked: (N, H, W) for images, (N,) for labels."""
    head = f.read(4)
    if len(head) < 4:
        raise DatasetError(f"{path}: not an IDX file: {len(head)} bytes, shorter than its "
                           f"4-byte magic number")
    found = struct.unpack(">I", head)[0]
    if found != magic:
        raise DatasetError(f"{path}: not an IDX file of {_KINDS[magic]}: magic number "
                           f"{found}, expected {magic}")
    ndim = magic & 0xFF
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DatasetError(f"{path}: not an IDX file: its header ends after "
                           f"{4 + len(raw_dims)} of {4 + 4 * ndim} bytes")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    if min(dims) < 1:
        raise DatasetError(f"{path}: dimensions {list(dims)}: each must be at least 1")
    side = data_limits.MAX_SIDE
    if max(dims[1:], default=1) > side:
        raise DatasetError(f"{path}: dimensions {list(dims)}: images of at most {side} x "
                           f"{side} pixels")
    return dims


def _claim(path: str, dims: tuple[int, ...], file_size: int, gz: bool) -> int:
    """The data bytes the header claims, refused when more than the limits or the file allow."""
    n = int(np.prod(dims, dtype=object))  # Python ints: uint32 dims overflow int64
    claims = f"{path}: the header claims {n} data bytes ({list(dims)})"
    if n > data_limits.MAX_BYTES:
        raise DatasetError(f"{claims}, more than the limit of {data_limits.MAX_BYTES}")
    if dims[0] > data_limits.MAX_ROWS:
        raise DatasetError(f"{claims}: {dims[0]} items, more than the limit of "
                           f"{data_limits.MAX_ROWS}")
    if gz and n > file_size * _GZIP_MAX_RATIO:  # a gzip bomb, or a lie: refused uninflated
        raise DatasetError(f"{claims}, more than gzip can expand this {file_size}-byte file to")
    held = file_size - 4 - 4 * len(dims)
    if not gz and n != held:
        raise DatasetError(f"{claims}, the file holds {held}")
    return n


def _read_into(f, buffer: memoryview) -> int:
    """Fill `buffer` from `f`; the bytes read, fewer only at the end of the file."""
    got = 0
    while got < len(buffer) and (k := f.readinto(buffer[got:])):
        got += k
    return got
