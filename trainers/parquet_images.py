"""Images in Parquet: reading a file with its metadata checked, and the pieces of a write.

Layout read: an `image` column of encoded PNG/JPEG bytes (binary), or of raw uint8 lists of
C*H*W values with the schema metadata key `shape` = JSON [C, H, W]; an optional integer `label`
column; an optional `split` column of "train"/"test". Optional schema metadata `size`,
`channels` and `classes` (JSON list of names), as `import_to_parquet` writes them.

The metadata, the row count and the labels are checked against the limits before anything is
allocated, and one row group is held in memory at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trainers import data_limits
from trainers.data_limits import DatasetError, allocate, first_line, require_file, shown
from trainers.image_codec import GRAY_MODES, image_header, open_image, png, read_image, square_side


class ParquetImages(NamedTuple):
    """What a Parquet file holds, row for row."""

    images: np.ndarray  # (N, C, S, S) uint8; rows where `keep` is False are not set
    labels: np.ndarray | None  # (N,) int64, or None when unlabeled
    keep: np.ndarray  # (N,) bool: the row's image could be read
    test: np.ndarray | None  # (N,) bool from the `split` column, or None when it has none
    n_classes: int  # 0 when unlabeled


def read_parquet(path: str) -> ParquetImages:
    """The images, labels and split of a Parquet file, each checked; one line names a problem."""
    require_file(path)
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: not a Parquet file ({first_line(e)})") from None
    if "image" not in schema.names:
        raise DatasetError(f"{path}: no 'image' column (columns: {', '.join(schema.names)})")
    meta = _metadata(path, schema.metadata or {})
    n, max_rows = pf.metadata.num_rows, data_limits.MAX_ROWS
    if n < 1 or n > max_rows:
        raise DatasetError(f"{path}: no rows" if n < 1 else
                           f"{path}: {n} rows, more than the limit of {max_rows}")
    try:
        images, labels, keep, test = _rows(path, pf, meta, n)
    except (pa.ArrowException, OSError) as e:  # a corrupt page, a bad encoding
        raise DatasetError(f"{path}: unreadable Parquet data ({first_line(e)})") from None
    if images is None:
        raise DatasetError(f"{path}: none of {n} images could be read as PNG or JPEG")
    nulls = 0 if labels is None else int((labels < 0).sum())  # -1 marks a null
    if labels is None or nulls == n:
        return ParquetImages(images, None, keep, test, 0)
    if nulls:
        raise DatasetError(f"{path}: 'label' has {nulls} missing values")
    top, n_classes = int(labels.max()), len(meta.get("classes", ())) or int(labels.max()) + 1
    if top >= n_classes:
        raise DatasetError(f"{path}: 'label' goes up to {top}, and metadata 'classes' names "
                           f"{n_classes}: one name per label")
    return ParquetImages(images, labels, keep, test, n_classes)


def _rows(path: str, pf: pq.ParquetFile, meta: dict, n: int):
    """(images or None, labels (-1 where null) or None, keep, test or None), a row group at a
    time."""
    names = pf.schema_arrow.names
    columns = [c for c in ("image", "label", "split") if c in names]
    images, keep = None, np.ones(n, bool)
    labels = np.zeros(n, np.int64) if "label" in columns else None
    test = np.zeros(n, bool) if "split" in columns else None
    start = 0
    for g in range(pf.num_row_groups):  # one row group in memory at a time
        table = pf.read_row_group(g, columns=columns)
        stop = start + table.num_rows
        images = _images(path, table["image"], meta, images, n, start, keep)
        if labels is not None:
            labels[start:stop] = _labels(path, table["label"])
        if test is not None:
            values = table["split"].to_pylist()
            if bad := sorted({str(v) for v in values} - {"train", "test"}):
                raise DatasetError(f"{path}: 'split' must be 'train' or 'test', found "
                                   f"{shown(bad)}")
            test[start:stop] = [v == "test" for v in values]
        start = stop
    return images, labels, keep, test


def _labels(path: str, column: pa.ChunkedArray) -> np.ndarray:
    """An integer `label` column as int64, -1 where null; checked before the cast, since a
    uint64 need not fit an int64 and a label of 10**12 would make a 10**12-way classifier."""
    if not pa.types.is_integer(column.type):
        raise DatasetError(f"{path}: 'label' must be integers, not {column.type}")
    bounds = pc.min_max(column)  # None and None when every row is null
    if (low := bounds["min"].as_py()) is not None and low < 0:
        raise DatasetError(f"{path}: 'label' has negative values, down to {low}")
    max_classes = data_limits.MAX_CLASSES
    if (top := bounds["max"].as_py()) is not None and top >= max_classes:
        raise DatasetError(f"{path}: 'label' goes up to {top}: at most {max_classes} classes")
    return column.cast(pa.int64()).fill_null(-1).to_numpy()


def _metadata(path: str, raw: dict[bytes, bytes]) -> dict:
    """The schema metadata this loader reads, checked: `size` and `channels` ints, `shape`
    (C, S, S), `classes` a tuple of names. A bad value is refused naming its key."""
    meta = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in raw.items()}
    found = {}
    max_side, max_classes = data_limits.MAX_SIDE, data_limits.MAX_CLASSES

    def bad(key: str, want: str) -> DatasetError:
        return DatasetError(f"{path}: metadata {key!r}: must be {want}, got {shown(meta[key])}")

    if "size" in meta:
        if not re.fullmatch(r"[0-9]{1,4}", meta["size"]) or not 1 <= int(meta["size"]) <= max_side:
            raise bad("size", f"an integer from 1 to {max_side}")
        found["size"] = int(meta["size"])
    if "channels" in meta:
        if meta["channels"] not in ("1", "3"):
            raise bad("channels", "1 or 3")
        found["channels"] = int(meta["channels"])
    if "shape" in meta:
        shape = _json(meta["shape"])
        if not (isinstance(shape, list) and len(shape) == 3
                and all(type(x) is int for x in shape) and shape[0] in (1, 3)
                and shape[1] == shape[2] and 1 <= shape[1] <= max_side):
            raise bad("shape", f"[C, S, S] with C 1 or 3 and S from 1 to {max_side}")
        found["shape"] = tuple(shape)
    if "classes" in meta:
        classes = _json(meta["classes"])
        if not (isinstance(classes, list) and len(classes) <= max_classes
                and all(isinstance(c, str) for c in classes)):
            raise bad("classes", f"a JSON list of names, at most {max_classes}")
        found["classes"] = tuple(classes)
    return found


def _images(path, column, meta, images, n, start, keep) -> np.ndarray | None:
    """Decode one row group's `image` column into rows start.. of `images` (allocated once)."""
    t = column.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _encoded(path, column, meta, images, n, start, keep)
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if not (is_list and pa.types.is_uint8(t.value_type)):
        raise DatasetError(f"{path}: 'image' must be PNG/JPEG bytes or uint8 lists, not {t}")
    if "shape" not in meta:
        raise DatasetError(f"{path}: raw 'image' arrays need schema metadata 'shape' [C, S, S]")
    c, h, w = meta["shape"]
    flat = column.combine_chunks().flatten().to_numpy()  # (rows * C * H * W,) uint8
    if flat.size != len(column) * c * h * w:
        raise DatasetError(f"{path}: raw 'image' rows must each hold {c * h * w} values")
    images = allocate(path, n, c, h) if images is None else images
    images[start:start + len(column)] = flat.reshape(-1, c, h, w)
    return images


def _encoded(path, column, meta, images, n, start, keep) -> np.ndarray | None:
    """PNG/JPEG rows -> images[start:]; unreadable rows (nulls included) are marked in keep."""
    rows = column.to_pylist()
    if images is None:  # the first readable image fixes channels and side unless metadata does
        first = next(filter(None, (image_header(open_image, r) for r in rows)), None)
        if first is None:
            keep[start:start + len(rows)] = False
            return None
        mode, h, w = first
        images = allocate(path, n, meta.get("channels", 1 if mode in GRAY_MODES else 3),
                          meta.get("size", square_side(h, w)))
    c, s = images.shape[1:3]
    for i, data in enumerate(rows, start):
        arr = read_image(open_image, data, s, c)
        keep[i] = arr is not None
        if keep[i]:
            images[i] = arr
    return images


def _json(text: str):
    """Parsed JSON, or None for what is not (too deep a nesting included)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


# --- writing: import_to_parquet claims its output first, then writes row groups of these ----

def claim_output(out: str, part: str) -> list[Path]:
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
        remove_folders(made)
        where = Path(e.filename).parent if isinstance(e.filename, str) else parent
        raise DatasetError(f"{out}: cannot write in {where} ({e.strerror or e})") from None
    return made


def remove_folders(made: list[Path]) -> None:
    """Remove the folders an import made, innermost first, where they are still empty."""
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()


def import_schema(size: int, channels: int, classes: tuple[str, ...], source: str) -> pa.Schema:
    """PNG `image`, `label`, `split`, with the metadata read_parquet checks."""
    meta = {"size": str(size), "channels": str(channels), "classes": json.dumps(classes),
            "source": source}
    return pa.schema([("image", pa.binary()), ("label", pa.int64()), ("split", pa.string())],
                     metadata=meta)


def rows_table(rows: list, labels: np.ndarray | None, test: np.ndarray, schema) -> pa.Table:
    """(index, (C, S, S) uint8) rows as a table of `schema`: PNG bytes, label, split."""
    index = [i for i, _ in rows]
    return pa.table({
        "image": [png(arr) for _, arr in rows],
        "label": [None] * len(rows) if labels is None else labels[index],
        "split": ["test" if test[i] else "train" for i in index],
    }, schema=schema)
