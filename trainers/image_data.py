"""Image datasets as uint8 arrays: sklearn's bundled digits, Parquet, image folders, MNIST IDX.

Every loader ends in the same `ImageDataset`: (N, C, H, W) uint8, C in {1, 3}, H == W, a
train split and a held-out split. Sources without a split get a deterministic one, hashed from
each item's stable key (row index or relative file name), so the same input always splits the same.

`import_to_parquet` turns a folder or IDX file into one Parquet file (PNG bytes, labels, split)
that `load_image_dataset("parquet:" + out)` reads back pixel for pixel.

This module is the public entry; the formats live beside it, each checking a hostile file
before anything is allocated, inflated or walked: `idx` (MNIST IDX files), `parquet_images`
(the Parquet layout), `folder_walk` (folder:PATH), `image_codec` (PNG/JPEG only, pixel bombs),
`image_sources` (items decoded one at a time), `data_limits` (DatasetError and the limits).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow.parquet as pq
import torch

from trainers.data_limits import MAX_SIDE, DatasetError, allocate, first_line
from trainers.image_sources import Source, decode, digits_source, path_source
from trainers.parquet_images import (
    claim_output,
    import_schema,
    read_parquet,
    remove_folders,
    rows_table,
)

IMAGE_PREFIXES = ("parquet:", "folder:", "idx:")
DIGITS_SIZES = {"digits": 8, "digits16": 16, "digits32": 32}
ROW_GROUP = 1024
HELD_OUT = 0.1
DIGITS_HELD_OUT = 0.2  # digits has only 1,797 images: a bigger held-out split steadies its FD floor


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Train and held-out images of one dataset; `content_hash` is computed, a cache key."""

    name: str
    train: np.ndarray  # (N, C, H, W) uint8, C in {1, 3}, H == W
    train_labels: np.ndarray | None  # (N,) int64, or None when unlabeled
    test: np.ndarray  # (M, C, H, W) uint8: the held-out split
    test_labels: np.ndarray | None  # (M,) int64, or None
    n_classes: int  # 0 when unlabeled
    skipped: int = 0  # source items left out because they could not be read
    content_hash: str = field(init=False)  # sha256 over arrays, labels and shapes

    def __post_init__(self) -> None:
        n, c, h, w = self.train.shape
        if self.train.dtype != np.uint8 or c not in (1, 3) or h != w:
            raise ValueError(f"{self.name}: train must be (N, C, S, S) uint8, C in 1/3")
        if self.test.dtype != np.uint8 or self.test.shape[1:] != self.train.shape[1:]:
            raise ValueError(f"{self.name}: test must be uint8 shaped like train")
        arrays = (self.train, self.train_labels, self.test, self.test_labels)
        object.__setattr__(self, "content_hash", _content_hash(arrays))

    @property
    def channels(self) -> int:
        return self.train.shape[1]

    @property
    def size(self) -> int:
        return self.train.shape[2]


@dataclass(frozen=True)
class ImportSummary:
    path: str
    written: int
    skipped: int
    train: int
    test: int
    classes: int


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1], the range a tanh generator produces."""
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # shared read-only from Ray's object store; torch wants to own it
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images, got {x.dtype}")
    return x.to(torch.float32).div_(127.5).sub_(1.0)


def stored_size(name: str) -> int | None:
    """The side of the images dataset `name` holds, when known without reading them: a digits
    name's, or a Parquet file's `size` metadata (as `gansweep data import` writes it)."""
    if name in DIGITS_SIZES:
        return DIGITS_SIZES[name]
    kind, _, path = name.partition(":")
    if kind != "parquet" or not path:
        return None
    try:
        meta = pq.read_schema(os.path.expanduser(path)).metadata or {}
    except Exception:  # unreadable here: the loader says why, in one line, when it reads it
        return None
    size = meta.get(b"size", b"")  # a size past the loader's limits: the loader says so
    return int(size) if size.isdigit() and 1 <= int(size) <= MAX_SIDE else None


def load_image_dataset(name: str) -> ImageDataset:
    """The dataset `name`: digits, digits16, digits32, or parquet:/folder:/idx: + PATH."""
    if name in DIGITS_SIZES:
        return _load_source(name, digits_source(), DIGITS_SIZES[name], DIGITS_HELD_OUT)
    kind, _, path = name.partition(":")
    if kind in ("parquet", "folder", "idx") and not path:
        raise DatasetError(f"{name}: needs a path after the prefix")
    if kind == "parquet":
        return _load_parquet(name, os.path.expanduser(path))
    if kind in ("folder", "idx"):
        source = path_source(kind, path)
        return _load_source(name, source, source.size, HELD_OUT)
    raise DatasetError(f"unknown image dataset {name!r}: expected one of "
                       f"{', '.join(DIGITS_SIZES)} or a path after {', '.join(IMAGE_PREFIXES)}")


def import_to_parquet(src: str, out: str, size: int, channels: int, held_out: float = HELD_OUT,
                      progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Write `src` (folder:/idx: or a bare path) as Parquet: PNG `image`, `label`, `split`."""
    if size < 1 or channels not in (1, 3) or not 0 <= held_out < 1:
        raise DatasetError(f"{out}: need size >= 1, channels 1 or 3, 0 <= held_out < 1")
    part = out + ".part"  # renamed when complete: a failed import leaves no half-written file
    made = claim_output(out, part)  # before SRC is read: a bad -o fails before any decoding
    try:
        kind, _, path = src.partition(":")
        if kind not in ("folder", "idx"):  # a bare path: a directory is a folder, a file IDX
            kind, path = ("folder" if os.path.isdir(os.path.expanduser(src)) else "idx"), src
        source = path_source(kind, path)
        test = _held_out_mask(source.keys, held_out)
        schema = import_schema(size, channels, source.classes, source.path)
        total, done, written, skipped, n_test = len(source.keys), 0, 0, source.skipped, 0
        decoded = decode(source, size, channels)
        with pq.ParquetWriter(part, schema) as writer:
            while batch := list(itertools.islice(decoded, ROW_GROUP)):  # one row group at a time
                rows = [(i, arr) for i, arr in batch if arr is not None]
                skipped += len(batch) - len(rows)
                if rows:
                    writer.write_table(rows_table(rows, source.labels, test, schema))
                    written += len(rows)
                    n_test += int(test[[i for i, _ in rows]].sum())
                done += len(batch)
                if progress:
                    progress(done, total)
        os.replace(part, out)
    except OSError as e:  # the disk filled, the folder went away: name the file the OS did
        raise DatasetError(f"{e.filename or out}: {e.strerror or first_line(e)}") from None
    finally:
        if os.path.exists(part):
            os.remove(part)
            remove_folders(made)
    return ImportSummary(out, written, skipped, written - n_test, n_test, len(source.classes))


def _load_source(name: str, source: Source, size: int, held_out: float) -> ImageDataset:
    n = len(source.keys)
    images, keep = allocate(source.path, n, source.channels, size), np.ones(n, bool)
    for i, arr in decode(source, size, source.channels):
        keep[i] = arr is not None
        if keep[i]:
            images[i] = arr
    test = _held_out_mask(source.keys, held_out)
    return _assemble(name, source.path, images, source.labels, keep, test, len(source.classes),
                     source.skipped + int((~keep).sum()))


def _load_parquet(name: str, path: str) -> ImageDataset:
    """A Parquet file; without a `split` column, rows are held out by the hash of their index."""
    images, labels, keep, test, n_classes = read_parquet(path)
    if test is None:
        test = _held_out_mask(map(str, range(len(keep))), HELD_OUT)
    return _assemble(name, path, images, labels, keep, test, n_classes, int((~keep).sum()))


def _assemble(name, path, images, labels, keep, test, n_classes, skipped) -> ImageDataset:
    if not keep.any():
        raise DatasetError(f"{path}: no readable images")
    train_rows, test_rows = np.flatnonzero(keep & ~test), np.flatnonzero(keep & test)
    pick = (lambda rows: None) if labels is None else (lambda rows: labels[rows])
    return ImageDataset(name, images[train_rows], pick(train_rows), images[test_rows],
                        pick(test_rows), n_classes, skipped)


def _held_out_mask(keys, held_out: float) -> np.ndarray:
    """True where an item is held out: sha1(key) mod 1000 < held_out * 1000, stable everywhere."""
    cut = round(held_out * 1000)
    return np.array([int(hashlib.sha1(k.encode()).hexdigest(), 16) % 1000 < cut for k in keys],
                    dtype=bool)


def _content_hash(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(b"none;" if a is None else f"{a.dtype.str}{a.shape};".encode())
        if a is not None:
            h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()
