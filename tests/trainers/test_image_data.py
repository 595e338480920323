import gzip
import io
import json
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from trainers import data_limits
from trainers.idx import read_idx
from trainers.image_data import (
    DatasetError,
    ImageDataset,
    import_to_parquet,
    load_image_dataset,
    to_float,
)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def all_images(data: ImageDataset) -> np.ndarray:
    return np.concatenate([data.train, data.test])


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_image_dataset("digits")


@pytest.fixture
def image_folder(tmp_path):
    """cat/ and dog/ with 6 gray 12x10 images each (one RGB), plus one corrupt .png."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pets"
    for name in ("dog", "cat"):
        (root / name).mkdir(parents=True)
        for k in range(6):
            Image.fromarray(rng.integers(0, 256, (10, 12), np.uint8)).save(root / name / f"{k}.png")
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), np.uint8)).save(root / "dog" / "rgb.png")
    (root / "cat" / "broken.png").write_bytes(rng.integers(0, 256, 200, np.uint8).tobytes())
    (root / "notes.txt").write_text("not an image")
    return root


def write_idx(path, magic: int, array: np.ndarray) -> None:
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_images(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, 2051, rng.integers(0, 256, (30, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", 2049, np.arange(30) % 10)
    return path


def test_digits_has_1797_gray_8px_images_with_a_fifth_held_out(digits):
    assert digits.train.dtype == np.uint8 and digits.train.shape[1:] == (1, 8, 8)
    assert len(digits.train) + len(digits.test) == 1797
    assert 0.15 < len(digits.test) / 1797 < 0.25
    assert digits.n_classes == 10 and set(digits.train_labels) == set(range(10))
    assert digits.train.min() == 0 and digits.train.max() == 255
    assert (digits.channels, digits.size) == (1, 8)


def test_digits16_and_digits32_are_resized_and_hash_differently(digits):
    d16, d32 = load_image_dataset("digits16"), load_image_dataset("digits32")
    assert d16.train.shape[1:] == (1, 16, 16) and d32.train.shape[1:] == (1, 32, 32)
    assert len({digits.content_hash, d16.content_hash, d32.content_hash}) == 3


def test_loading_twice_gives_the_same_split_and_hash(digits):
    again = load_image_dataset("digits")
    assert again.content_hash == digits.content_hash
    np.testing.assert_array_equal(again.test_labels, digits.test_labels)


def test_digits_needs_sklearn_installed_but_never_imports_it(monkeypatch):
    code = ("import sys; from trainers.image_data import load_image_dataset as load; "
            "load('digits'); assert 'sklearn' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    monkeypatch.setitem(sys.modules, "sklearn", None)  # find_spec then reports it missing
    with pytest.raises(DatasetError, match="scikit-learn is not installed"):
        load_image_dataset("digits")


def test_to_float_maps_uint8_to_minus_one_one():
    x = to_float(np.array([[[[0, 255]]]], np.uint8))
    assert x.dtype == torch.float32 and x.flatten().tolist() == [-1.0, 1.0]
    with pytest.raises(TypeError):
        to_float(np.zeros((1, 1, 2, 2), np.float32))


def test_parquet_of_png_bytes_loads_with_labels(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (40, 16, 16, 3), np.uint8)  # (N, H, W, C)
    table = pa.table({"image": [png_bytes(a) for a in images], "label": np.arange(40) % 4})
    pq.write_table(table, tmp_path / "rgb.parquet", row_group_size=16)
    data = load_image_dataset(f"parquet:{tmp_path}/rgb.parquet")
    assert data.train.shape[1:] == (3, 16, 16) and len(data.train) + len(data.test) == 40
    assert data.n_classes == 4
    # Each row maps back to its source image and label, in order.
    by_pixels = {a.transpose(2, 0, 1).tobytes(): k % 4 for k, a in enumerate(images)}
    assert [by_pixels[a.tobytes()] for a in data.train] == data.train_labels.tolist()


def test_parquet_of_raw_arrays_uses_shape_metadata_and_split_column(tmp_path):
    images = np.arange(6 * 64, dtype=np.uint8).reshape(6, 1, 8, 8)
    table = pa.table({"image": list(images.reshape(6, -1)),
                      "split": ["train", "test"] * 3})
    table = table.replace_schema_metadata({"shape": json.dumps([1, 8, 8])})
    pq.write_table(table, tmp_path / "raw.parquet")
    data = load_image_dataset(f"parquet:{tmp_path}/raw.parquet")
    np.testing.assert_array_equal(data.train, images[0::2])
    np.testing.assert_array_equal(data.test, images[1::2])
    assert data.train_labels is None and data.n_classes == 0


def test_folder_classes_are_sorted_subfolders_and_corrupt_files_are_skipped(image_folder):
    data = load_image_dataset(f"folder:{image_folder}")
    assert data.skipped == 1 and len(data.train) + len(data.test) == 13
    assert data.train.shape[1:] == (1, 16, 16)  # majority gray; side 12 -> 16
    assert data.n_classes == 2
    labels = np.concatenate([data.train_labels, data.test_labels])
    assert (labels == 0).sum() == 6 and (labels == 1).sum() == 7  # cat = 0, dog = 1 (+ rgb)


def test_folder_import_skips_the_corrupt_file_and_round_trips(image_folder, tmp_path):
    calls = []
    out = str(tmp_path / "out" / "pets.parquet")
    summary = import_to_parquet(str(image_folder), out, size=16, channels=1,
                                progress=lambda done, total: calls.append((done, total)))
    assert (summary.written, summary.skipped, summary.classes) == (13, 1, 2)
    assert summary.train + summary.test == 13 and calls[-1] == (13, 13)  # readable ones
    source = load_image_dataset(f"folder:{image_folder}")
    loaded = load_image_dataset("parquet:" + out)
    np.testing.assert_array_equal(loaded.train, source.train)
    np.testing.assert_array_equal(loaded.test, source.test)
    np.testing.assert_array_equal(loaded.train_labels, source.train_labels)
    assert loaded.content_hash == source.content_hash
    meta = pq.read_schema(out).metadata
    assert json.loads(meta[b"classes"]) == ["cat", "dog"] and meta[b"size"] == b"16"


def test_unlabeled_folder_imports_with_null_labels(tmp_path):
    for k in range(5):
        Image.new("RGB", (8, 8), (k, 2 * k, 3 * k)).save(tmp_path / f"{k}.png")
    out = str(tmp_path / "plain.parquet")
    summary = import_to_parquet(f"folder:{tmp_path}", out, size=8, channels=3)
    data = load_image_dataset("parquet:" + out)
    assert summary.classes == 0 and data.train_labels is None and data.n_classes == 0
    assert len(data.train) + len(data.test) == 5 and data.channels == 3


def test_gzipped_idx_loads_with_labels_at_32px_and_round_trips(idx_images, tmp_path):
    data = load_image_dataset(f"idx:{idx_images}")
    assert data.train.shape[1:] == (1, 32, 32) and data.n_classes == 10
    assert len(data.train) + len(data.test) == 30
    out = str(tmp_path / "mnist.parquet")
    summary = import_to_parquet(f"idx:{idx_images}", out, size=32, channels=1)
    assert (summary.written, summary.skipped) == (30, 0)
    loaded = load_image_dataset("parquet:" + out)
    assert loaded.content_hash == data.content_hash


def test_idx_without_a_labels_file_is_unlabeled(tmp_path):
    path = tmp_path / "images.raw"
    write_idx(path, 2051, np.zeros((3, 8, 8)))
    data = load_image_dataset(f"idx:{path}")
    assert data.train_labels is None and data.size == 8


@pytest.mark.parametrize("prefix", ["parquet:", "folder:", "idx:"])
def test_a_missing_path_is_named_in_the_error(prefix, tmp_path):
    path = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=f"{path}: no such file"):
        load_image_dataset(prefix + str(path))


def test_an_unknown_name_lists_what_is_accepted():
    with pytest.raises(DatasetError, match="digits16.*parquet:, folder:, idx:"):
        load_image_dataset("cifar")


def test_a_parquet_without_an_image_column_is_an_error(tmp_path):
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"label": [1, 2]}), path)
    with pytest.raises(DatasetError, match=f"{path}: no 'image' column"):
        load_image_dataset(f"parquet:{path}")


def test_idx_with_a_bad_magic_number_is_an_error(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, 2049, np.zeros(4))
    with pytest.raises(DatasetError, match=f"{path}: not an IDX file of images: magic number "
                                           f"2049, expected 2051"):
        load_image_dataset(f"idx:{path}")


def png_header_claiming(width: int, height: int) -> bytes:
    """A gray PNG whose header claims width x height, with one tiny IDAT: a pixel bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def encoded(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


def test_only_png_and_jpeg_are_decoded_other_formats_are_skipped(tmp_path):
    tile = np.full((8, 8), 7, np.uint8)
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF"):  # each named .png, as a hostile folder may
        (tmp_path / f"{fmt}.png").write_bytes(encoded(tile, fmt))
    data = load_image_dataset(f"folder:{tmp_path}")
    assert data.skipped == 3 and len(data.train) + len(data.test) == 2
    table = pa.table({"image": [encoded(tile, f) for f in ("PNG", "GIF", "BMP", "TIFF")]})
    pq.write_table(table, tmp_path / "mixed.parquet")
    assert load_image_dataset(f"parquet:{tmp_path}/mixed.parquet").skipped == 3


def test_pixel_bombs_are_skipped_without_a_warning_and_the_limit_stays_on(tmp_path):
    tile = np.zeros((8, 8), np.uint8)
    (tmp_path / "ok.png").write_bytes(png_bytes(tile))
    (tmp_path / "ok2.png").write_bytes(png_bytes(tile))
    (tmp_path / "warns.png").write_bytes(png_header_claiming(10_000, 10_000))  # 1x to 2x limit
    (tmp_path / "raises.png").write_bytes(png_header_claiming(100_000, 100_000))  # over 2x
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_image_dataset(f"folder:{tmp_path}")
    assert data.skipped == 2 and len(data.train) + len(data.test) == 2
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's default: the protection stays on


def test_a_failed_import_leaves_neither_its_file_nor_the_folders_it_made(tmp_path):
    src = tmp_path / "train-images-idx3-ubyte"
    src.write_bytes(struct.pack(">I", 2051))  # a magic number and nothing else
    out = tmp_path / "new" / "deeper" / "out.parquet"
    with pytest.raises(DatasetError, match="its header ends after 4 of 16 bytes"):
        import_to_parquet(f"idx:{src}", str(out), size=8, channels=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_an_import_checks_its_output_before_reading_the_source(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match=f"{tmp_path}/file is not a folder"):
        import_to_parquet(f"idx:{tmp_path}/missing", str(tmp_path / "file" / "o.parquet"), 8, 1)
    with pytest.raises(DatasetError, match=f"{tmp_path}: must name a file, not a folder"):
        import_to_parquet(f"idx:{tmp_path}/missing", str(tmp_path), 8, 1)


def test_gzipped_idx_data_is_streamed_into_one_array(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (50, 28, 28)).astype(np.uint8)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_idx(path, 2051, images)
    np.testing.assert_array_equal(read_idx(str(path), 2051), images)


def test_parquet_claims_past_the_limits_are_refused_before_allocating(tmp_path, monkeypatch):
    table = pa.table({"image": [png_bytes(np.zeros((8, 8), np.uint8))] * 4})
    pq.write_table(table, tmp_path / "four.parquet")
    monkeypatch.setattr(data_limits, "MAX_BYTES", 255)
    with pytest.raises(DatasetError, match="4 images of 1x8x8 need 256 bytes, more than the "
                                           "limit of 255"):
        load_image_dataset(f"parquet:{tmp_path}/four.parquet")
    monkeypatch.setattr(data_limits, "MAX_ROWS", 3)
    with pytest.raises(DatasetError, match="four.parquet: 4 rows, more than the limit of 3"):
        load_image_dataset(f"parquet:{tmp_path}/four.parquet")


@pytest.mark.parametrize("labels, says", [
    ([0, None, 1, 1], "'label' has 1 missing values"),
    ([0, -1, 1, 1], "'label' has negative values, down to -1"),
])
def test_parquet_labels_that_are_missing_or_negative_are_refused(tmp_path, labels, says):
    table = pa.table({"image": [png_bytes(np.zeros((8, 8), np.uint8))] * 4, "label": labels})
    pq.write_table(table, tmp_path / "labels.parquet")
    with pytest.raises(DatasetError, match=f"labels.parquet: {says}"):
        load_image_dataset(f"parquet:{tmp_path}/labels.parquet")


def test_a_link_to_a_parent_folder_is_not_followed_each_png_loads_once(tmp_path):
    root = tmp_path / "pets"
    (root / "cat").mkdir(parents=True)
    for k in range(3):
        (root / "cat" / f"{k}.png").write_bytes(png_bytes(np.full((8, 8), k, np.uint8)))
    (root / "cat" / "up").symlink_to(root)  # cat/up/cat/up/... would never end
    (root / "loop").symlink_to(".")
    data = load_image_dataset(f"folder:{root}")
    assert len(data.train) + len(data.test) == 3 and data.skipped == 0
    assert data.n_classes == 1 and sorted(all_images(data)[:, 0, 0, 0]) == [0, 1, 2]


def test_a_linked_png_counts_and_a_folder_32_deep_loads(tmp_path):
    deep = tmp_path.joinpath("cat", *["d"] * 31)  # cat is 1 deep: the PNG's folder is 32 deep
    deep.mkdir(parents=True)
    (deep / "a.png").write_bytes(png_bytes(np.zeros((8, 8), np.uint8)))
    (tmp_path / "cat" / "b.png").symlink_to(deep / "a.png")
    data = load_image_dataset(f"folder:{tmp_path}")
    assert len(data.train) + len(data.test) == 2 and data.n_classes == 1


def test_a_walk_past_max_entries_is_refused(tmp_path, monkeypatch):
    for k in range(6):
        (tmp_path / f"{k}.png").write_bytes(png_bytes(np.zeros((8, 8), np.uint8)))
    monkeypatch.setattr(data_limits, "MAX_ENTRIES", 5)
    with pytest.raises(DatasetError, match=f"{tmp_path}: more than 5 files and folders under it: "
                                           f"point folder: at the folder that holds the images"):
        load_image_dataset(f"folder:{tmp_path}")
    monkeypatch.setattr(data_limits, "MAX_ENTRIES", 6)
    assert len(all_images(load_image_dataset(f"folder:{tmp_path}"))) == 6
