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

Every file is hostile until checked: only PNG and JPEG are decoded (Pillow's other plug-ins are
attack surface no dataset needs), Pillow's pixel-bomb limit stays on and a bomb is an unreadable
image, and sizes claimed by an IDX header or Parquet metadata are checked against the file and
against MAX_BYTES / MAX_ROWS / MAX_SIDE / MAX_CLASSES before anything is allocated or inflated.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import io
import itertools
import json
import os
import re
import reprlib
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from PIL import Image

IMAGE_PREFIXES = ("parquet:", "folder:", "idx:")
DIGITS_SIZES = {"digits": 8, "digits16": 16, "digits32": 32}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
ROW_GROUP = 1024
HELD_OUT = 0.1
DIGITS_HELD_OUT = 0.2  # digits has only 1,797 images: a bigger held-out split steadies its FD floor
IMAGE_FORMATS = ("PNG", "JPEG")  # the only Pillow decoders used: anything else is unreadable
# Limits on what a file may claim, checked before allocating: a hostile header is refused in one
# line rather than met with a MemoryError (or a 3.6 TiB np.empty) or a gzip bomb.
MAX_BYTES = 2**32  # pixel bytes held at once (ray.put copies them once more)
MAX_ROWS = 2**24  # images in one dataset (ImageNet-1k has 1.3 M)
MAX_SIDE = 1024  # pixels, metadata `size` / `shape` and IDX rows and columns
MAX_CLASSES = 10_000  # the feature network has one output per class
_GZIP_MAX_RATIO = 1032  # deflate expands a byte to at most ~1032: a header claiming more lies
_IDX_KINDS = {2051: "images", 2049: "labels"}  # magic number (uint8, ndim in the low byte)
# What Pillow raises on a corrupt or truncated file, or a pixel bomb (its warning made an error):
# such items are skipped, not fatal. DatasetError is a ValueError: never raise it inside these.
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
               Image.DecompressionBombWarning)
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
    part = out + ".part"  # renamed when complete: a failed import leaves no half-written file
    made = _claim_output(out, part)  # before SRC is read: a bad -o fails before any decoding
    try:
        kind, _, path = src.partition(":")
        if kind not in ("folder", "idx"):  # a bare path: a directory is a folder, a file IDX
            kind, path = ("folder" if os.path.isdir(os.path.expanduser(src)) else "idx"), src
        source = _path_source(kind, path)
        test = _held_out_mask(source.keys, held_out)
        schema = _import_schema(size, channels, source)
        total, done, written, skipped, n_test = len(source.keys), 0, 0, source.skipped, 0
        decoded = _decode(source, size, channels)
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
    except OSError as e:  # the disk filled, the folder went away: name the file the OS did
        raise DatasetError(f"{e.filename or out}: {e.strerror or _first_line(e)}") from None
    finally:
        if os.path.exists(part):
            os.remove(part)
            _remove_folders(made)
    return ImportSummary(out, written, skipped, written - n_test, n_test, len(source.classes))


def _claim_output(out: str, part: str) -> list[Path]:
    """Make out's missing folders and an empty `part` file, or say in one line why not; returns
    the folders made, outermost first, for a failed import to remove. It asks the OS by doing,
    not the mode bits: root may write in a 0o500 folder, and nobody in /proc."""
    if os.path.isdir(out) or not os.path.basename(out):
        raise DatasetError(f"{out or repr(out)}: must name a file, not a folder")
    parent = Path(out).parent
    missing = []
    for folder in (parent, *parent.parents):
        if folder.is_dir():
            break
        if os.path.lexists(folder):  # a file (or a dangling link) where a folder must be
            raise DatasetError(f"{out}: {folder} is not a folder")
        missing.append(folder)
    made: list[Path] = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            made.append(folder)
        os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    except OSError as e:
        _remove_folders(made)
        where = Path(e.filename).parent if isinstance(e.filename, str) else parent
        raise DatasetError(f"{out}: cannot write in {where} ({e.strerror or e})") from None
    return made


def _remove_folders(made: list[Path]) -> None:
    """Remove the folders an import made, innermost first, where they are still empty."""
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()


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
        if (header := _image_header(_open_image, root / rel)) is None:
            continue
        keys.append(rel)
        gray += header[0] in _GRAY_MODES
        first = first or header[1:]
    if not keys:
        raise DatasetError(f"{path}: none of {len(rels)} images could be read as PNG or JPEG")
    index = {c: k for k, c in enumerate(classes)}
    labels = np.array([index[k.split("/")[0]] for k in keys], np.int64) if classes else None
    channels = 1 if gray > len(keys) - gray else 3  # a tie keeps color
    return _Source(path, keys, labels, classes, lambda i: _open_image(root / keys[i]),
                   channels, _side(*first), skipped=len(found) - len(keys))


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
        yield i, _read_image(source.open, i, size, channels)


def _open_image(file: Path | bytes | None) -> Image.Image:
    """A PNG or JPEG file or bytes, opened lazily (header read only); a null row is unreadable."""
    return Image.open(file if isinstance(file, Path) else io.BytesIO(file or b""),
                      formats=IMAGE_FORMATS)


def _read_image(open_image: Callable, item, size: int, channels: int) -> np.ndarray | None:
    """open_image(item) as (channels, size, size) uint8, or None: unreadable or a pixel bomb."""
    try:
        with _bombs_unreadable(), open_image(item) as im:
            return _to_chw(im, size, channels)
    except _UNREADABLE:
        return None


def _image_header(open_image: Callable, item) -> tuple[str, int, int] | None:
    """(mode, height, width) without decoding pixels, or None where _read_image gives None."""
    try:
        with _bombs_unreadable(), open_image(item) as im:
            return im.mode, im.height, im.width
    except _UNREADABLE:
        return None


@contextlib.contextmanager
def _bombs_unreadable() -> Iterator[None]:
    """Over Image.MAX_IMAGE_PIXELS is a pixel bomb, skipped like a corrupt file: Pillow's
    warning becomes an error (over twice that, Pillow raises one itself). The warnings filter is
    process-wide: loaders run once, on the driver, not in threads beside other work."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _to_chw(im: Image.Image, size: int, channels: int) -> np.ndarray:
    """Any Pillow image -> (channels, size, size) uint8; non-square images are stretched."""
    im = im.convert("L" if channels == 1 else "RGB")  # before resizing: palettes can't be filtered
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    a = np.asarray(im)  # (S, S) or (S, S, 3)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def _load_source(name: str, source: _Source, size: int, held_out: float) -> ImageDataset:
    n = len(source.keys)
    images, keep = _allocate(source.path, n, source.channels, size), np.ones(n, bool)
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
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: not a Parquet file ({_first_line(e)})") from None
    if "image" not in schema.names:
        raise DatasetError(f"{path}: no 'image' column (columns: {', '.join(schema.names)})")
    meta = _parquet_meta(path, schema.metadata or {})
    n = pf.metadata.num_rows
    if n < 1 or n > MAX_ROWS:
        raise DatasetError(f"{path}: no rows" if n < 1 else
                           f"{path}: {n} rows, more than the limit of {MAX_ROWS}")
    try:
        images, labels, keep, test = _parquet_rows(path, pf, meta, n)
    except (pa.ArrowException, OSError) as e:  # a corrupt page, a bad encoding
        raise DatasetError(f"{path}: unreadable Parquet data ({_first_line(e)})") from None
    if images is None:
        raise DatasetError(f"{path}: none of {n} images could be read as PNG or JPEG")
    nulls = 0 if labels is None else int((labels < 0).sum())  # -1 marks a null
    if labels is None or nulls == n:
        return _assemble(name, path, images, None, keep, test, 0, int((~keep).sum()))
    if nulls:
        raise DatasetError(f"{path}: 'label' has {nulls} missing values")
    top, n_classes = int(labels.max()), len(meta.get("classes", ())) or int(labels.max()) + 1
    if top >= n_classes:
        raise DatasetError(f"{path}: 'label' goes up to {top}, and metadata 'classes' names "
                           f"{n_classes}: one name per label")
    return _assemble(name, path, images, labels, keep, test, n_classes, int((~keep).sum()))


def _parquet_rows(path: str, pf: pq.ParquetFile, meta: dict, n: int):
    """(images or None, labels (-1 where null) or None, keep, test), a row group at a time."""
    names = pf.schema_arrow.names
    columns = [c for c in ("image", "label", "split") if c in names]
    images, keep = None, np.ones(n, bool)
    labels = np.zeros(n, np.int64) if "label" in columns else None
    # Without a split column, hold out rows by the hash of their index.
    has_split = "split" in columns
    test = np.zeros(n, bool) if has_split else _held_out_mask(map(str, range(n)), HELD_OUT)
    start = 0
    for g in range(pf.num_row_groups):  # one row group in memory at a time
        table = pf.read_row_group(g, columns=columns)
        stop = start + table.num_rows
        images = _parquet_images(path, table["image"], meta, images, n, start, keep)
        if labels is not None:
            labels[start:stop] = _parquet_labels(path, table["label"])
        if has_split:
            values = table["split"].to_pylist()
            if bad := sorted({str(v) for v in values} - {"train", "test"}):
                raise DatasetError(f"{path}: 'split' must be 'train' or 'test', found "
                                   f"{_shown(bad)}")
            test[start:stop] = [v == "test" for v in values]
        start = stop
    return images, labels, keep, test


def _parquet_labels(path: str, column: pa.ChunkedArray) -> np.ndarray:
    """An integer `label` column as int64, -1 where null; checked before the cast, since a
    uint64 need not fit an int64 and a label of 10**12 would make a 10**12-way classifier."""
    if not pa.types.is_integer(column.type):
        raise DatasetError(f"{path}: 'label' must be integers, not {column.type}")
    bounds = pc.min_max(column)  # None and None when every row is null
    if (low := bounds["min"].as_py()) is not None and low < 0:
        raise DatasetError(f"{path}: 'label' has negative values, down to {low}")
    if (top := bounds["max"].as_py()) is not None and top >= MAX_CLASSES:
        raise DatasetError(f"{path}: 'label' goes up to {top}: at most {MAX_CLASSES} classes")
    return column.cast(pa.int64()).fill_null(-1).to_numpy()


def _parquet_meta(path: str, raw: dict[bytes, bytes]) -> dict:
    """The schema metadata this loader reads, checked: `size` and `channels` ints, `shape`
    (C, S, S), `classes` a tuple of names. A bad value is refused naming its key."""
    meta = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in raw.items()}
    found = {}

    def bad(key: str, want: str) -> DatasetError:
        return DatasetError(f"{path}: metadata {key!r}: must be {want}, got {_shown(meta[key])}")

    if "size" in meta:
        if not re.fullmatch(r"[0-9]{1,4}", meta["size"]) or not 1 <= int(meta["size"]) <= MAX_SIDE:
            raise bad("size", f"an integer from 1 to {MAX_SIDE}")
        found["size"] = int(meta["size"])
    if "channels" in meta:
        if meta["channels"] not in ("1", "3"):
            raise bad("channels", "1 or 3")
        found["channels"] = int(meta["channels"])
    if "shape" in meta:
        shape = _json(meta["shape"])
        if not (isinstance(shape, list) and len(shape) == 3
                and all(type(x) is int for x in shape) and shape[0] in (1, 3)
                and shape[1] == shape[2] and 1 <= shape[1] <= MAX_SIDE):
            raise bad("shape", f"[C, S, S] with C 1 or 3 and S from 1 to {MAX_SIDE}")
        found["shape"] = tuple(shape)
    if "classes" in meta:
        classes = _json(meta["classes"])
        if not (isinstance(classes, list) and len(classes) <= MAX_CLASSES
                and all(isinstance(c, str) for c in classes)):
            raise bad("classes", f"a JSON list of names, at most {MAX_CLASSES}")
        found["classes"] = tuple(classes)
    return found


def _parquet_images(path, column, meta, images, n, start, keep) -> np.ndarray | None:
    """Decode one row group's `image` column into rows start.. of `images` (allocated once)."""
    t = column.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _parquet_encoded(path, column, meta, images, n, start, keep)
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if not (is_list and pa.types.is_uint8(t.value_type)):
        raise DatasetError(f"{path}: 'image' must be PNG/JPEG bytes or uint8 lists, not {t}")
    if "shape" not in meta:
        raise DatasetError(f"{path}: raw 'image' arrays need schema metadata 'shape' [C, S, S]")
    c, h, w = meta["shape"]
    flat = column.combine_chunks().flatten().to_numpy()  # (rows * C * H * W,) uint8
    if flat.size != len(column) * c * h * w:
        raise DatasetError(f"{path}: raw 'image' rows must each hold {c * h * w} values")
    images = _allocate(path, n, c, h) if images is None else images
    images[start:start + len(column)] = flat.reshape(-1, c, h, w)
    return images


def _parquet_encoded(path, column, meta, images, n, start, keep) -> np.ndarray | None:
    """PNG/JPEG rows -> images[start:]; unreadable rows (nulls included) are marked in keep."""
    rows = column.to_pylist()
    if images is None:  # the first readable image fixes channels and side unless metadata does
        first = next(filter(None, (_image_header(_open_image, r) for r in rows)), None)
        if first is None:
            keep[start:start + len(rows)] = False
            return None
        mode, h, w = first
        images = _allocate(path, n, meta.get("channels", 1 if mode in _GRAY_MODES else 3),
                           meta.get("size", _side(h, w)))
    c, s = images.shape[1:3]
    for i, data in enumerate(rows, start):
        arr = _read_image(_open_image, data, s, c)
        keep[i] = arr is not None
        if keep[i]:
            images[i] = arr
    return images


def _allocate(path: str, n: int, channels: int, size: int) -> np.ndarray:
    """An empty (n, channels, size, size) uint8 array, refused past MAX_BYTES."""
    need = n * channels * size * size
    if need > MAX_BYTES:
        raise DatasetError(f"{path}: {n} images of {channels}x{size}x{size} need {need} bytes, "
                           f"more than the limit of {MAX_BYTES}")
    return np.empty((n, channels, size, size), np.uint8)


def _json(text: str):
    """Parsed JSON, or None for what is not (too deep a nesting included)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


_SHORT = reprlib.Repr()  # a hostile value is shown cut, so the error stays one short line
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist = 60, 60, 5


def _shown(value) -> str:
    return _SHORT.repr(value)


def _first_line(exc: BaseException, limit: int = 160) -> str:
    line = (str(exc).splitlines() or [type(exc).__name__])[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."


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
    """An MNIST IDX file of unsigned bytes, gzipped or not -> (N, ...) uint8. The header is read
    first, through a streaming gzip reader, and checked; then exactly the bytes it claims."""
    _require_file(path)
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"  # gzip's magic: decide by content, not by file name
        raw.seek(0)
        try:
            with (gzip.GzipFile(fileobj=raw) if gz else raw) as f:  # streams: inflates as read
                dims = _idx_header(path, f, magic)
                n = _idx_claim(path, dims, os.fstat(raw.fileno()).st_size, gz)
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


def _idx_header(path: str, f, magic: int) -> tuple[int, ...]:
    """The magic number and dimensions, checked: (N, H, W) for images, (N,) for labels."""
    head = f.read(4)
    if len(head) < 4:
        raise DatasetError(f"{path}: not an IDX file: {len(head)} bytes, shorter than its "
                           f"4-byte magic number")
    found = struct.unpack(">I", head)[0]
    if found != magic:
        raise DatasetError(f"{path}: not an IDX file of {_IDX_KINDS[magic]}: magic number "
                           f"{found}, expected {magic}")
    ndim = magic & 0xFF
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DatasetError(f"{path}: not an IDX file: its header ends after "
                           f"{4 + len(raw_dims)} of {4 + 4 * ndim} bytes")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    if min(dims) < 1:
        raise DatasetError(f"{path}: dimensions {list(dims)}: each must be at least 1")
    if max(dims[1:], default=1) > MAX_SIDE:
        raise DatasetError(f"{path}: dimensions {list(dims)}: images of at most {MAX_SIDE} x "
                           f"{MAX_SIDE} pixels")
    return dims


def _idx_claim(path: str, dims: tuple[int, ...], file_size: int, gz: bool) -> int:
    """The data bytes the header claims, refused when more than the limits or the file allow."""
    n = int(np.prod(dims, dtype=object))  # Python ints: uint32 dims overflow int64
    claims = f"{path}: the header claims {n} data bytes ({list(dims)})"
    if n > MAX_BYTES:
        raise DatasetError(f"{claims}, more than the limit of {MAX_BYTES}")
    if dims[0] > MAX_ROWS:
        raise DatasetError(f"{claims}: {dims[0]} items, more than the limit of {MAX_ROWS}")
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
