"""Image datasets as uint8 arrays: sklearn's bundled digits, Parquet, image folders, MNIST IDX.

Every loader ends in the same `ImageDataset`: (N, C, H, W) uint8, C in {1, 3}, H == W, a
train split and a held-out split. Sources without a split get a deterministic one, hashed from
each item's stable key (row index or relative file name), so the same input always splits the same.

`import_to_parquet` turns a folder or IDX file into one Parquet file (PNG bytes, labels, split)
that `load_image_dataset("parquet:" + out)` reads back pixel for pixel.

Parquet layout read here: an `image` column of encoded PNG/JPEG bytes (binary), or of raw uint8
lists of C*H*W values with the schema metadata key `shape` = JSON [C, H, W]; an optional integer
`label` column; an optional `split` column of "train"/"test". Optional schema metadata `size`,
`channels` and `classes` (JSON list of names), as written by `import_to_parquet`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import itertools
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

IMAGE_PREFIXES = ("parquet:", "folder:", "idx:")
DIGITS_SIZES = {"digits": 8, "digits16": 16, "digits32": 32}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
ROW_GROUP = 1024
HELD_OUT = 0.1
DIGITS_HELD_OUT = 0.2  # digits has only 1,797 images: a bigger held-out split steadies its FD floor
# What Pillow raises on a corrupt or truncated file: such items are skipped, not fatal.
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message is one line naming the path and the problem."""


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


def load_image_dataset(name: str) -> ImageDataset:
    """The dataset `name`: digits, digits16, digits32, or parquet:/folder:/idx: + PATH."""
    if name in DIGITS_SIZES:
        return _load_source(name, _digits_source(), DIGITS_SIZES[name], DIGITS_HELD_OUT)
    kind, _, path = name.partition(":")
    if kind in ("parquet", "folder", "idx") and not path:
        raise DatasetError(f"{name}: needs a path after the prefix")
    if kind == "parquet":
        return _load_parquet(name, os.path.expanduser(path))
    if kind in ("folder", "idx"):
        source = _path_source(kind, path)
        return _load_source(name, source, source.size, HELD_OUT)
    raise DatasetError(f"unknown image dataset {name!r}: expected one of "
                       f"{', '.join(DIGITS_SIZES)} or a path after {', '.join(IMAGE_PREFIXES)}")


def import_to_parquet(src: str, out: str, size: int, channels: int, held_out: float = HELD_OUT,
                      progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Write `src` (folder:/idx: or a bare path) as Parquet: PNG `image`, `label`, `split`."""
    if size < 1 or channels not in (1, 3) or not 0 <= held_out < 1:
        raise DatasetError(f"{out}: need size >= 1, channels 1 or 3, 0 <= held_out < 1")
    kind, _, path = src.partition(":")
    if kind not in ("folder", "idx"):  # a bare path: a directory is a folder, a file IDX
        kind, path = ("folder" if os.path.isdir(os.path.expanduser(src)) else "idx"), src
    source = _path_source(kind, path)
    test = _held_out_mask(source.keys, held_out)
    schema = _import_schema(size, channels, source)
    total, done, written, skipped, n_test = len(source.keys), 0, 0, source.skipped, 0
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    part = out + ".part"  # renamed when complete: a failed import leaves no half-written file
    decoded = _decode(source, size, channels)
    try:
        with pq.ParquetWriter(part, schema) as writer:
            while batch := list(itertools.islice(decoded, ROW_GROUP)):  # one row group at a time
                rows = [(i, arr) for i, arr in batch if arr is not None]
                skipped += len(batch) - len(rows)
                if rows:
                    writer.write_table(_rows_table(rows, source.labels, test, schema))
                    written += len(rows)
                    n_test += int(test[[i for i, _ in rows]].sum())
                done += len(batch)
                if progress:
                    progress(done, total)
        os.replace(part, out)
    finally:
        if os.path.exists(part):
            os.remove(part)
    return ImportSummary(out, written, skipped, written - n_test, n_test, len(source.classes))


@dataclass(frozen=True)
class _Source:
    """Items decoded one at a time: shared by the loaders and by import_to_parquet."""

    path: str
    keys: list[str]  # one stable name per item: what the held-out split hashes
    labels: np.ndarray | None  # (N,) int64
    classes: tuple[str, ...]  # class names, index = label
    open: Callable[[int], Image.Image]  # may raise one of _UNREADABLE
    channels: int  # natural channel count
    size: int  # natural square side
    skipped: int = 0  # items already found unreadable while listing


def _digits_source() -> _Source:
    # Read sklearn's bundled CSV without importing sklearn: trainers/ must not depend on it.
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("digits: scikit-learn is not installed (its digits.csv.gz is the data)")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    _require_file(path)
    data = np.loadtxt(path, delimiter=",", dtype=np.float64)  # (1797, 65): 64 pixels, label
    images = (data[:, :64] * (255 / 16)).round().astype(np.uint8).reshape(-1, 8, 8)
    labels = data[:, 64].astype(np.int64)
    return _array_source(path, images, labels, tuple(str(d) for d in range(10)))


def _idx_source(path: str) -> _Source:
    images = _read_idx(path, 2051)  # (N, H, W)
    labels = None
    for candidate in _idx_label_paths(path):
        if os.path.isfile(candidate):
            labels = _read_idx(candidate, 2049).astype(np.int64)  # (N,)
            if len(labels) != len(images):
                raise DatasetError(f"{candidate}: {len(labels)} labels for {len(images)} images")
            break
    n_classes = int(labels.max()) + 1 if labels is not None and len(labels) else 0
    classes = tuple(str(k) for k in range(n_classes))
    return _array_source(path, images, labels, classes)


def _array_source(path: str, images: np.ndarray, labels, classes) -> _Source:
    """Grayscale (N, H, W) uint8 images held in memory; keys are row indices."""
    return _Source(path, [str(i) for i in range(len(images))], labels, classes,
                   lambda i: Image.fromarray(images[i], mode="L"), 1, _side(*images.shape[1:]))


def _folder_source(path: str) -> _Source:
    """PNG/JPEG files under `path`, sorted; the first sub-folder of each file names its class."""
    if not os.path.isdir(path):
        _require_file(path)  # says "no such file"; an existing file is the wrong kind
        raise DatasetError(f"{path}: not a directory")
    root = Path(path)
    found = _image_files(root)  # (R,) relative posix names, sorted
    if not found:
        raise DatasetError(f"{path}: no PNG or JPEG images")
    classes = tuple(sorted({r.split("/")[0] for r in found if "/" in r}))
    # Files lying beside class folders belong to no class: they are left out and counted.
    rels = [r for r in found if "/" in r] if classes else found
    # A header pass (cheap: no pixel decoding) finds the majority channel count and the side.
    keys, gray, first = [], 0, None
    for rel in rels:
        try:
            with Image.open(root / rel) as im:
                mode, (w, h) = im.mode, im.size
        except _UNREADABLE:
            continue
        keys.append(rel)
        gray += mode in _GRAY_MODES
        first = first or (h, w)
    if not keys:
        raise DatasetError(f"{path}: none of {len(rels)} images could be read")
    index = {c: k for k, c in enumerate(classes)}
    labels = np.array([index[k.split("/")[0]] for k in keys], np.int64) if classes else None
    channels = 1 if gray > len(keys) - gray else 3  # a tie keeps color
    return _Source(path, keys, labels, classes, lambda i: Image.open(root / keys[i]), channels,
                   _side(*first), skipped=len(found) - len(keys))


def _image_files(root: Path) -> list[str]:
    """PNG/JPEG files under root as sorted posix names; hidden ones (.cache/...) are not data."""
    rels = (p.relative_to(root) for p in root.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    return sorted(r.as_posix() for r in rels if not any(x.startswith(".") for x in r.parts))


def _path_source(kind: str, path: str) -> _Source:
    path = os.path.expanduser(path)
    return _folder_source(path) if kind == "folder" else _idx_source(path)


def _decode(source: _Source, size: int, channels: int) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, (C, S, S) uint8) per item, or (index, None) when it cannot be read."""
    for i in range(len(source.keys)):
        try:
            with source.open(i) as im:
                yield i, _to_chw(im, size, channels)
        except _UNREADABLE:
            yield i, None


def _to_chw(im: Image.Image, size: int, channels: int) -> np.ndarray:
    """Any Pillow image -> (channels, size, size) uint8; non-square images are stretched."""
    im = im.convert("L" if channels == 1 else "RGB")  # before resizing: palettes can't be filtered
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    a = np.asarray(im)  # (S, S) or (S, S, 3)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def _load_source(name: str, source: _Source, size: int, held_out: float) -> ImageDataset:
    n = len(source.keys)
    images, keep = np.empty((n, source.channels, size, size), np.uint8), np.ones(n, bool)
    for i, arr in _decode(source, size, source.channels):
        keep[i] = arr is not None
        if keep[i]:
            images[i] = arr
    test = _held_out_mask(source.keys, held_out)
    return _assemble(name, source.path, images, source.labels, keep, test, len(source.classes),
                     source.skipped + int((~keep).sum()))


def _load_parquet(name: str, path: str) -> ImageDataset:
    _require_file(path)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: not a Parquet file ({str(e).splitlines()[0]})") from None
    schema = pf.schema_arrow
    meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    if "image" not in schema.names:
        raise DatasetError(f"{path}: no 'image' column (columns: {', '.join(schema.names)})")
    n = pf.metadata.num_rows
    images, keep = None, np.ones(n, bool)
    labels, label_nulls = np.zeros(n, np.int64), 0
    # Without a split column, hold out rows by the hash of their index.
    has_split = "split" in schema.names
    test = np.zeros(n, bool) if has_split else _held_out_mask(map(str, range(n)), HELD_OUT)
    columns = [c for c in ("image", "label", "split") if c in schema.names]
    start = 0
    for g in range(pf.num_row_groups):  # one row group in memory at a time
        table = pf.read_row_group(g, columns=columns)
        stop = start + table.num_rows
        images = _parquet_images(path, table["image"], meta, images, n, start, keep)
        if "label" in columns:
            column = table["label"]
            if not pa.types.is_integer(column.type):
                raise DatasetError(f"{path}: 'label' must be integers, not {column.type}")
            label_nulls += column.null_count
            labels[start:stop] = column.fill_null(-1).to_numpy()
        if has_split:
            values = table["split"].to_pylist()
            if bad := sorted({str(v) for v in values} - {"train", "test"}):
                raise DatasetError(f"{path}: 'split' must be 'train' or 'test', found {bad}")
            test[start:stop] = [v == "test" for v in values]
        start = stop
    if images is None:
        raise DatasetError(f"{path}: no readable images")
    if "label" not in columns or label_nulls == n:
        labels, n_classes = None, 0
    elif label_nulls or labels.min() < 0:
        raise DatasetError(f"{path}: 'label' has missing or negative values")
    else:
        n_classes = len(json.loads(meta["classes"])) if "classes" in meta else int(labels.max()) + 1
    return _assemble(name, path, images, labels, keep, test, n_classes, int((~keep).sum()))


def _parquet_images(path, column, meta, images, n, start, keep) -> np.ndarray | None:
    """Decode one row group's `image` column into rows start.. of `images` (allocated once)."""
    t = column.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _parquet_encoded(column, meta, images, n, start, keep)
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if not (is_list and pa.types.is_uint8(t.value_type)):
        raise DatasetError(f"{path}: 'image' must be PNG/JPEG bytes or uint8 lists, not {t}")
    if "shape" not in meta:
        raise DatasetError(f"{path}: raw 'image' arrays need schema metadata 'shape' [C, H, W]")
    c, h, w = json.loads(meta["shape"])
    if c not in (1, 3) or h != w:
        raise DatasetError(f"{path}: shape {[c, h, w]} must be [1 or 3, S, S]")
    flat = column.combine_chunks().flatten().to_numpy()  # (rows * C * H * W,) uint8
    if flat.size != len(column) * c * h * w:
        raise DatasetError(f"{path}: raw 'image' rows must each hold {c * h * w} values")
    images = np.empty((n, c, h, w), np.uint8) if images is None else images
    images[start:start + len(column)] = flat.reshape(-1, c, h, w)
    return images


def _parquet_encoded(column, meta, images, n, start, keep) -> np.ndarray | None:
    """PNG/JPEG rows -> images[start:]; unreadable rows (nulls included) are marked in keep."""
    for i, data in enumerate(column.to_pylist(), start):
        try:
            with Image.open(io.BytesIO(data)) as im:
                if images is None:  # the first image fixes channels and side unless metadata does
                    c = int(meta.get("channels", 1 if im.mode in _GRAY_MODES else 3))
                    s = int(meta.get("size", _side(im.height, im.width)))
                    images = np.empty((n, c, s, s), np.uint8)
                images[i] = _to_chw(im, images.shape[2], images.shape[1])
        except _UNREADABLE:  # a null row is empty bytes: unreadable too
            keep[i] = False
    return images


def _import_schema(size: int, channels: int, source: _Source) -> pa.Schema:
    meta = {"size": str(size), "channels": str(channels), "classes": json.dumps(source.classes),
            "source": source.path}
    return pa.schema([("image", pa.binary()), ("label", pa.int64()), ("split", pa.string())],
                     metadata=meta)


def _rows_table(rows: list, labels: np.ndarray | None, test: np.ndarray, schema) -> pa.Table:
    index = [i for i, _ in rows]
    return pa.table({
        "image": [_png(arr) for _, arr in rows],
        "label": [None] * len(rows) if labels is None else labels[index],
        "split": ["test" if test[i] else "train" for i in index],
    }, schema=schema)


def _png(arr: np.ndarray) -> bytes:
    """(C, S, S) uint8 -> PNG bytes; lossless, so a load gives back these exact pixels."""
    buf = io.BytesIO()
    Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)).save(buf, "PNG")
    return buf.getvalue()


def _read_idx(path: str, magic: int) -> np.ndarray:
    """An MNIST IDX file of unsigned bytes, gzipped or not -> (N, ...) uint8."""
    _require_file(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip's magic: decide by content, not by file name
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DatasetError(f"{path}: corrupt gzip data ({e})") from None
    found = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if found != magic:
        raise DatasetError(f"{path}: bad IDX magic number {found} (expected {magic})")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetError(f"{path}: {data.size} data bytes for dimensions {list(dims)}")
    return data.reshape(dims)


def _idx_label_paths(path: str) -> list[str]:
    """The labels file beside an images file: MNIST names differ in one word, gzipped or not."""
    if "images-idx3-ubyte" not in path:
        return []
    base = path.replace("images-idx3-ubyte", "labels-idx1-ubyte").removesuffix(".gz")
    return [base + ".gz", base] if path.endswith(".gz") else [base, base + ".gz"]


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


def _side(h: int, w: int) -> int:
    """Smallest power of two >= max(h, w), within [8, 64]: what the conv nets are built for."""
    return min(64, max(8, 1 << (max(h, w) - 1).bit_length()))


def _content_hash(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(b"none;" if a is None else f"{a.dtype.str}{a.shape};".encode())
        if a is not None:
            h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _require_file(path: str) -> None:
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: {'not a file' if os.path.exists(path) else 'no such file'}")
