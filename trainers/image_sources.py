"""Sources of images decoded one at a time: sklearn's digits, MNIST IDX files, image folders.

A `Source` lists its items (stable keys, labels, class names) and opens one on demand; the
loaders and `import_to_parquet` decode it the same way, item by item.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from trainers.data_limits import DatasetError, require_file
from trainers.folder_walk import image_files, refuse_root
from trainers.idx import IMAGES_MAGIC, LABELS_MAGIC, label_paths, read_idx
from trainers.image_codec import GRAY_MODES, image_header, open_image, read_image, square_side


@dataclass(frozen=True)
class Source:
    """Items decoded one at a time: shared by the loaders and by import_to_parquet."""

    path: str
    keys: list[str]  # one stable name per item: what the held-out split hashes
    labels: np.ndarray | None  # (N,) int64
    classes: tuple[str, ...]  # class names, index = label
    open: Callable[[int], Image.Image]  # may raise one of image_codec.UNREADABLE
    channels: int  # natural channel count
    size: int  # natural square side
    skipped: int = 0  # items already found unreadable while listing


def path_source(kind: str, path: str) -> Source:
    """The source of folder:PATH or idx:PATH; `~` is expanded."""
    path = os.path.expanduser(path)
    return folder_source(path) if kind == "folder" else idx_source(path)


def decode(source: Source, size: int, channels: int) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, (C, S, S) uint8) per item, or (index, None) when it cannot be read."""
    for i in range(len(source.keys)):
        yield i, read_image(source.open, i, size, channels)


def digits_source() -> Source:
    """sklearn's 1,797 bundled 8x8 digits, read from its CSV without importing sklearn:
    trainers/ must not depend on it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("digits: scikit-learn is not installed (its digits.csv.gz is the data)")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    require_file(path)
    data = np.loadtxt(path, delimiter=",", dtype=np.float64)  # (1797, 65): 64 pixels, label
    images = (data[:, :64] * (255 / 16)).round().astype(np.uint8).reshape(-1, 8, 8)
    labels = data[:, 64].astype(np.int64)
    return _array_source(path, images, labels, tuple(str(d) for d in range(10)))


def idx_source(path: str) -> Source:
    """An IDX images file, with the labels file beside it where there is one."""
    images = read_idx(path, IMAGES_MAGIC)  # (N, H, W)
    labels = None
    for candidate in label_paths(path):
        if os.path.isfile(candidate):
            labels = read_idx(candidate, LABELS_MAGIC).astype(np.int64)  # (N,)
            if len(labels) != len(images):
                raise DatasetError(f"{candidate}: {len(labels)} labels for {len(images)} images")
            break
    n_classes = int(labels.max()) + 1 if labels is not None and len(labels) else 0
    classes = tuple(str(k) for k in range(n_classes))
    return _array_source(path, images, labels, classes)


def _array_source(path: str, images: np.ndarray, labels, classes) -> Source:
    """Grayscale (N, H, W) uint8 images held in memory; keys are row indices."""
    return Source(path, [str(i) for i in range(len(images))], labels, classes,
                  lambda i: Image.fromarray(images[i], mode="L"), 1,
                  square_side(*images.shape[1:]))


def folder_source(path: str) -> Source:
    """PNG/JPEG files under `path`, sorted; the first sub-folder of each file names its class."""
    if not os.path.isdir(path):
        require_file(path)  # says "no such file"; an existing file is the wrong kind
        raise DatasetError(f"{path}: not a directory")
    refuse_root(path)  # before walking: folder:/ would decode every PNG on the machine
    root = Path(path)
    found = image_files(root)  # (R,) relative posix names, sorted
    if not found:
        raise DatasetError(f"{path}: no PNG or JPEG images")
    classes = tuple(sorted({r.split("/")[0] for r in found if "/" in r}))
    # Files lying beside class folders belong to no class: they are left out and counted.
    rels = [r for r in found if "/" in r] if classes else found
    # A header pass (cheap: no pixel decoding) finds the majority channel count and the side.
    keys, gray, first = [], 0, None
    for rel in rels:
        if (header := image_header(open_image, root / rel)) is None:
            continue
        keys.append(rel)
        gray += header[0] in GRAY_MODES
        first = first or header[1:]
    if not keys:
        raise DatasetError(f"{path}: none of {len(rels)} images could be read as PNG or JPEG")
    index = {c: k for k, c in enumerate(classes)}
    labels = np.array([index[k.split("/")[0]] for k in keys], np.int64) if classes else None
    channels = 1 if gray > len(keys) - gray else 3  # a tie keeps color
    return Source(path, keys, labels, classes, lambda i: open_image(root / keys[i]),
                  channels, square_side(*first), skipped=len(found) - len(keys))
