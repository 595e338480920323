"""Hostile data, as a table: each row writes a bad file (or names a bad output) and the command
that meets it, `gansweep data import` or a `gansweep launch` whose spec's dataset names it. Each
must be refused in one line naming the file (and the metadata key or column), exit code 2, with
nothing created: no half-written Parquet, no optuna.db / mlflow.db, no checkpoints, no Ray.
A new data bug gets a row."""

from __future__ import annotations

import gzip
import io
import os
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from orchestrator.cli import main

IMAGE_SPEC = """\
name: bad-data
dataset: {dataset}
trainer: dcgan
objective: {{metric: eval/fd, direction: minimize}}
budget: {{trials: 1, steps: 2, eval_every: 2, log_every: 1, eval_samples: 10}}
sampler: {{name: random, seed: 0}}
resources: {{cpus_per_trial: 1}}
fixed: {{base_width: 8, batch_size: 4, z_dim: 8, n_blocks: 2}}
space:
  lr_g: {{type: float, low: 1.0e-4, high: 1.0e-3, log: true}}
"""
IMAGES = "train-images-idx3-ubyte"  # the MNIST name: a labels file beside it is looked for
IMG, GZ = "{tmp}/" + IMAGES, "{tmp}/" + IMAGES + ".gz"  # as the one line names them
BOMB_DIMS = (10**6, 28, 28)  # 784,000,000 bytes claimed by a ~200 KB gzip file


# --- hostile files: each writer makes its file(s) under a folder and returns the path ---------

def idx(magic: int = 2051, dims: tuple[int, ...] = (3, 8, 8), data: bytes | None = None) -> bytes:
    data = bytes(int(np.prod(dims))) if data is None else data
    return struct.pack(f">I{len(dims)}I", magic, *dims) + data


def write(name: str, data: bytes | Callable[[], bytes]) -> Callable[[Path], Path]:
    def writer(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data() if callable(data) else data)
        return path
    return writer


def gzip_bomb() -> bytes:
    """A header claiming BOMB_DIMS, then 200 MB of zeros as 200 gzip members of 1 MB each."""
    member = gzip.compress(bytes(2**20), 9)  # ~1 KB
    return gzip.compress(struct.pack(">4I", 2051, *BOMB_DIMS)) + member * 200


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height gray pixels, with one tiny IDAT: a pixel bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def not_png_or_jpeg(folder: Path) -> Path:
    """A folder whose .png files hold a GIF, a BMP and a pixel bomb: none is PNG/JPEG data."""
    root = folder / "pets"
    (root / "cat").mkdir(parents=True)
    tile = np.zeros((8, 8), np.uint8)
    (root / "cat" / "a.png").write_bytes(png(tile, "GIF"))
    (root / "cat" / "b.png").write_bytes(png(tile, "BMP"))
    (root / "cat" / "c.png").write_bytes(png_claiming(100_000, 100_000))
    return root


def home_folder(folder: Path) -> Path:
    """`~`, with HOME (set by the Case) a folder of one class of PNGs."""
    (folder / "home" / "cat").mkdir(parents=True)
    (folder / "home" / "cat" / "a.png").write_bytes(png(np.zeros((8, 8), np.uint8)))
    return Path("~")


def link_to_root(folder: Path) -> Path:
    (folder / "root-link").symlink_to("/")
    return folder / "root-link"


def nested(depth: int) -> Callable[[Path], Path]:
    """A PNG at the bottom of `depth` nested folders."""
    def writer(folder: Path) -> Path:
        deep = folder.joinpath("deep", *["d"] * depth)
        deep.mkdir(parents=True)
        (deep / "a.png").write_bytes(png(np.zeros((8, 8), np.uint8)))
        return folder / "deep"
    return writer


def parquet(name: str, meta: dict | None = None, n: int = 4, **columns) -> Callable[[Path], Path]:
    """A Parquet file of n 8x8 gray PNG rows (or `columns`), with schema metadata `meta`."""
    def writer(folder: Path) -> Path:
        data = {"image": [png(np.full((8, 8), k, np.uint8)) for k in range(n)]} | columns
        table = pa.table(data)
        if meta:
            table = table.replace_schema_metadata(meta)
        path = folder / name
        pq.write_table(table, path)
        return path
    return writer


def raw_parquet(name: str, shape: str) -> Callable[[Path], Path]:
    """Raw uint8 list rows of 64 values, with the metadata `shape` given verbatim."""
    rows = pa.array([list(range(64))] * 3, pa.list_(pa.uint8()))
    return parquet(name, {"shape": shape}, image=rows)


@dataclass(frozen=True)
class Case:
    id: str
    write: Callable[[Path], Path]  # writes the hostile file(s) into tmp_path, returns the path
    command: str  # "import": `data import PATH -o out.parquet`; "launch": dataset: KIND:PATH
    says: str  # what the one line must contain, {tmp} for tmp_path: the file, the key, why
    code: int = 2
    home: str | None = None  # HOME for the run, {tmp} for tmp_path: `~` stays in the test


def both(id: str, kind: str, writer: Callable[[Path], Path], says: str,
         home: str | None = None) -> list[Case]:
    """The same hostile source met by `data import` and by a launch on `kind:PATH`."""
    return [Case(f"import {id}", writer, "import", says, home=home),
            Case(f"launch {id}", writer, f"launch {kind}", says, home=home)]


NOT_A_DATASET = ("not an image dataset: point folder: at the folder that holds the images (one "
                 "subfolder per class)")


CASES = [
    *both("idx: only the magic number", "idx", write(IMAGES, struct.pack(">I", 2051)),
          IMG + ": not an IDX file: its header ends after 4 of 16 bytes"),
    *both("idx: 3 bytes", "idx", write(IMAGES, b"\x00\x00\x08"),
          IMG + ": not an IDX file: 3 bytes, shorter than its 4-byte magic number"),
    *both("idx.gz: only the magic number", "idx", write(IMAGES + ".gz", gzip.compress(
        struct.pack(">I", 2051))),
          GZ + ": not an IDX file: its header ends after 4 of 16 bytes"),
    *both("idx: a labels file named as images", "idx", write(IMAGES, idx(2049, (3,))),
          IMG + ": not an IDX file of images: magic number 2049, expected 2051"),
    *both("idx: more data than the dims", "idx", write(IMAGES, idx(data=bytes(200))),
          IMG + ": the header claims 192 data bytes ([3, 8, 8]), the file holds 200"),
    *both("idx.gz: less data than the dims", "idx", write(IMAGES + ".gz", gzip.compress(
        idx(data=bytes(100)))),
          GZ + ": the header claims 192 data bytes ([3, 8, 8]), the file holds 100"),
    *both("idx.gz: more data than the dims", "idx", write(IMAGES + ".gz", gzip.compress(
        idx(data=bytes(200)))),
          GZ + ": the header claims 192 data bytes ([3, 8, 8]), the file holds more"),
    *both("idx: dims claim 784 MB in a small file", "idx",
          write(IMAGES, idx(dims=BOMB_DIMS, data=bytes(100))),
          IMG + ": the header claims 784000000 data bytes ([1000000, 28, 28]), the file "
          "holds 100"),
    *both("idx.gz: gzip bomb", "idx", write(IMAGES + ".gz", gzip_bomb),
          GZ + ": the header claims 784000000 data bytes ([1000000, 28, 28]), more than "
          "gzip can expand"),
    *both("idx.gz: dims over the size limit", "idx", write(IMAGES + ".gz", gzip.compress(
        idx(dims=(2**32 - 1, 1024, 1024), data=b""))),
          GZ + ": the header claims 4503599626321920 data bytes ([4294967295, 1024, 1024]), "
          "more than the limit of 4294967296"),
    *both("idx: dims over the row limit", "idx", write(IMAGES, idx(dims=(2**24 + 1, 1, 1),
                                                                   data=b"")),
          IMG + ": the header claims 16777217 data bytes ([16777217, 1, 1]): 16777217 items, "
          "more than the limit of 16777216"),
    *both("idx: images of 65536 x 65536", "idx", write(IMAGES, idx(dims=(1, 2**16, 2**16),
                                                                    data=b"")),
          IMG + ": dimensions [1, 65536, 65536]: images of at most 1024 x 1024 pixels"),
    *both("idx: no images", "idx", write(IMAGES, idx(dims=(0, 28, 28))),
          IMG + ": dimensions [0, 28, 28]: each must be at least 1"),
    *both("idx.gz: corrupt gzip", "idx", write(IMAGES + ".gz", gzip.compress(b"")[:10]
                                                + b"\xff" * 50), GZ + ": corrupt gzip data ("),
    *both("idx.gz: cut short", "idx", write(IMAGES + ".gz", gzip.compress(idx())[:25]),
          GZ + ": corrupt gzip data (Compressed file ended before the end-of-stream marker"),
    *both("idx: labels file only a magic number", "idx", lambda folder: (
        write("train-labels-idx1-ubyte", struct.pack(">I", 2049))(folder),
        write(IMAGES, idx())(folder))[1],
          "{tmp}/train-labels-idx1-ubyte: not an IDX file: its header ends after 4 of 8 bytes"),
    Case("launch idx: 3 images, none held out to score against", write(IMAGES, idx()),
         "launch idx", IMG + ": 3 training and 0 held-out images: an image sweep needs 6 of "
         "each"),
    *both("folder: GIF, BMP and a pixel bomb named .png", "folder", not_png_or_jpeg,
          "{tmp}/pets: none of 3 images could be read as PNG or JPEG"),
    # folder:PATH outside any sensible root is refused before walking (folder:/ took minutes).
    *both("folder: the filesystem root", "folder", lambda folder: Path("/"),
          "/: is the filesystem root, " + NOT_A_DATASET),
    *both("folder: /proc", "folder", lambda folder: Path("/proc"),
          "/proc: is a system folder, " + NOT_A_DATASET),
    *both("folder: under /sys", "folder", lambda folder: Path("/sys/class"),
          "/sys/class: is a system folder, " + NOT_A_DATASET),
    *both("folder: /usr", "folder", lambda folder: Path("/usr"),
          "/usr: is a system folder, " + NOT_A_DATASET),
    *both("folder: the home folder", "folder", home_folder,
          "{tmp}/home: is the home folder, " + NOT_A_DATASET, home="{tmp}/home"),
    *both("folder: a link to the root", "folder", link_to_root,
          "{tmp}/root-link: is the filesystem root (it links to /), " + NOT_A_DATASET),
    *both("folder: 33 folders deep", "folder", nested(33),
          "{tmp}/deep: folders nested more than 32 deep under it: point folder: at"),
    Case("parquet: metadata size of a terabyte", parquet(
        "big.parquet", {"size": "1000000", "channels": "3"}), "launch parquet",
        "{tmp}/big.parquet: metadata 'size': must be an integer from 1 to 1024, got '1000000'"),
    Case("parquet: metadata size not a number", parquet("nan.parquet", {"size": "abc"}),
         "launch parquet",
         "{tmp}/nan.parquet: metadata 'size': must be an integer from 1 to 1024, got 'abc'"),
    Case("parquet: metadata size negative", parquet("neg.parquet", {"size": "-3"}),
         "launch parquet",
         "{tmp}/neg.parquet: metadata 'size': must be an integer from 1 to 1024, got '-3'"),
    Case("parquet: metadata channels 5", parquet("c5.parquet", {"channels": "5"}),
         "launch parquet", "{tmp}/c5.parquet: metadata 'channels': must be 1 or 3, got '5'"),
    Case("parquet: metadata shape not JSON", raw_parquet("s1.parquet", "[1, 8"),
         "launch parquet", "{tmp}/s1.parquet: metadata 'shape': must be [C, S, S]"),
    Case("parquet: metadata shape of 2 numbers", raw_parquet("s2.parquet", "[1, 8]"),
         "launch parquet", "{tmp}/s2.parquet: metadata 'shape': must be [C, S, S]"),
    Case("parquet: metadata shape of a terabyte", raw_parquet("s3.parquet",
                                                              "[3, 1000000, 1000000]"),
         "launch parquet", "{tmp}/s3.parquet: metadata 'shape': must be [C, S, S]"),
    Case("parquet: metadata shape of floats", raw_parquet("s4.parquet", "[1, 8.0, 8.0]"),
         "launch parquet", "{tmp}/s4.parquet: metadata 'shape': must be [C, S, S]"),
    Case("parquet: metadata shape 0x0", raw_parquet("s5.parquet", "[1, 0, 0]"),
         "launch parquet", "{tmp}/s5.parquet: metadata 'shape': must be [C, S, S]"),
    Case("parquet: metadata classes not JSON", parquet("k1.parquet", {"classes": "cat, dog"},
                                                       label=[0, 1, 0, 1]),
         "launch parquet", "{tmp}/k1.parquet: metadata 'classes': must be a JSON list of names"),
    Case("parquet: metadata classes a number", parquet("k2.parquet", {"classes": "3"},
                                                       label=[0, 1, 2, 0]),
         "launch parquet", "{tmp}/k2.parquet: metadata 'classes': must be a JSON list of names"),
    Case("parquet: labels beyond the classes", parquet("k3.parquet", {"classes": '["cat"]'},
                                                       label=[0, 1, 2, 0]),
         "launch parquet", "{tmp}/k3.parquet: 'label' goes up to 2, and metadata 'classes' "
         "names 1"),
    Case("parquet: a label of 10**12", parquet("l1.parquet", label=[0, 1, 2, 10**12]),
         "launch parquet", "{tmp}/l1.parquet: 'label' goes up to 1000000000000: at most 10000 "
         "classes"),
    Case("parquet: labels as strings", parquet("l2.parquet", label=["a", "b", "c", "d"]),
         "launch parquet", "{tmp}/l2.parquet: 'label' must be integers, not string"),
    Case("parquet: uint64 labels with a null", parquet(
        "l3.parquet", label=pa.array([0, None, 2**64 - 1, 1], pa.uint64())), "launch parquet",
         "{tmp}/l3.parquet: 'label' goes up to 18446744073709551615: at most 10000 classes"),
    Case("parquet: image column of ints", parquet("i1.parquet", image=[1, 2, 3, 4]),
         "launch parquet",
         "{tmp}/i1.parquet: 'image' must be PNG/JPEG bytes or uint8 lists, not int64"),
    Case("parquet: zero rows", parquet("empty.parquet", n=0, image=pa.array([], pa.binary())),
         "launch parquet", "{tmp}/empty.parquet: no rows"),
    Case("parquet: GIF, BMP and a pixel bomb", parquet(
        "i2.parquet", image=[png(np.zeros((8, 8), np.uint8), "GIF"),
                             png(np.zeros((8, 8), np.uint8), "BMP"),
                             png_claiming(100_000, 100_000)]), "launch parquet",
         "{tmp}/i2.parquet: none of 3 images could be read as PNG or JPEG"),
    Case("parquet: a text file", write("notes.parquet", b"hello"), "launch parquet",
         "{tmp}/notes.parquet: not a Parquet file"),
    Case("import: output under a regular file", write(IMAGES, idx()),
         "import -o somefile.txt/out.parquet",
         "{tmp}/somefile.txt/out.parquet: {tmp}/somefile.txt is not a folder"),
    Case("import: output two folders under a regular file", write(IMAGES, idx()),
         "import -o somefile.txt/a/b/out.parquet",
         "{tmp}/somefile.txt/a/b/out.parquet: {tmp}/somefile.txt is not a folder"),
    Case("import: output where nobody may create a file", write(IMAGES, idx()),
         "import -o /proc/out.parquet", "/proc/out.parquet: cannot write in /proc ("),
    Case("import: output is a folder", write(IMAGES, idx()), "import -o .",
         "{tmp}: must name a file, not a folder"),
    Case("import: output is an empty name", write(IMAGES, idx()), "import -o ''",
         "'': must name a file, not a folder"),
    Case("import: a bad output is refused before a missing source is read",
         lambda folder: folder / "nowhere", "import -o somefile.txt/out.parquet",
         "{tmp}/somefile.txt/out.parquet: {tmp}/somefile.txt is not a folder"),
]


def _argv(case: Case, path: Path, tmp: Path) -> list[str]:
    command, *rest = case.command.split()
    if command == "import":
        out = rest[-1] if rest else "out.parquet"
        out = {"''": "", ".": str(tmp)}.get(out, out)  # an empty name; tmp_path itself
        return ["data", "import", str(path), "-o", out if not out or os.path.isabs(out)
                else str(tmp / out)]
    (tmp / "spec.yaml").write_text(IMAGE_SPEC.format(dataset=f"{rest[0]}:{path}"))
    return ["launch", str(tmp / "spec.yaml")]


def _no_ray(address):
    raise AssertionError("Ray was started for a bad dataset")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_data_is_one_line_exit_2_and_nothing_is_created(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("orchestrator.cluster.raystart.init_ray", _no_ray)
    if case.home is not None:
        monkeypatch.setenv("HOME", case.home.format(tmp=tmp_path))
    if "somefile.txt" in case.command:
        (tmp_path / "somefile.txt").write_bytes(b"x")
    path = case.write(tmp_path)
    argv = _argv(case, path, tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(main, argv)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == case.code and len(lines) == 1, (result.exception,
                                                              result.stderr[-2000:])
    assert lines[0].startswith("gansweep: error: "), lines[0]
    assert case.says.format(tmp=tmp_path) in lines[0], lines[0]  # the file, the key, why
    assert len(lines[0]) < 400
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_the_gzip_bomb_is_refused_from_its_header_without_inflating_it(tmp_path):
    path = write(IMAGES + ".gz", gzip_bomb)(tmp_path)
    assert path.stat().st_size < 400_000
    runner = CliRunner()
    tracemalloc.start()
    start = time.perf_counter()
    result = runner.invoke(main, ["data", "import", str(path), "-o", str(tmp_path / "o.parquet")])
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.exit_code == 2
    assert "the header claims 784000000 data bytes" in result.stderr
    assert seconds < 2 and peak < 16 * 2**20  # the 200 MB of zeros were never inflated


def test_a_folder_mode_0500_is_refused_for_a_user_and_written_by_root(tmp_path):
    """The output check asks the OS by creating the file, not the mode bits: root may write."""
    src = write(IMAGES, idx())(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = CliRunner().invoke(main, ["data", "import", str(src), "-o",
                                       str(locked / "out.parquet")])
    if os.geteuid() == 0:
        assert result.exit_code == 0, result.stderr
        assert [p.name for p in locked.iterdir()] == ["out.parquet"]
    else:
        assert result.exit_code == 2
        assert result.stderr.strip() == (f"gansweep: error: {locked}/out.parquet: cannot write "
                                         f"in {locked} (Permission denied)")
        assert list(locked.iterdir()) == []


@pytest.mark.parametrize("edit, says", [
    (lambda text: text, "spec.yaml: budget.eval_samples: must be >= 100 on image data (KID "
                        "averages over subsets of 100 generated images), got 10"),
    (lambda text: text.replace("eval_samples: 10", "eval_samples: 100") + (
        "  augment: {type: categorical, choices: [none, flip]}\n"),
     "spec.yaml: space.augment.choices: invalid value for dcgan parameter 'augment': must be "
     "one of ['color_translation_cutout', 'none', 'translation', 'translation_cutout'], got "
     "'flip'"),
], ids=["eval_samples too few for KID", "unknown augment policy"])
def test_image_metrics_and_augmentation_settings_are_checked_before_anything_is_made(
        edit, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("orchestrator.cluster.raystart.init_ray", _no_ray)
    monkeypatch.setenv("GANSWEEP_CACHE", str(tmp_path / "cache"))
    (tmp_path / "spec.yaml").write_text(edit(IMAGE_SPEC.format(dataset="digits16")))
    result = CliRunner().invoke(main, ["launch", "spec.yaml"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"gansweep: error: {says}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no store, no cache
