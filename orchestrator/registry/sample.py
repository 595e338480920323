"""`gansweep sample`: draw samples from a logged or registered generator into a file.

Any model URI MLflow resolves works: `models:/NAME@champion`, `models:/NAME/3`,
`runs:/RUN/generator`, `models:/m-...`. The noise size comes from the model's signature, the noise
from `--seed`, so the same command writes the same file. The output's extension says what to
write: `.png` a picture (an image grid for images (n, C, H, W) in [-1, 1], a scatter plot for 2D
points (n, 2)), `.npy` or `.parquet` the raw samples. Every check a user's typo can fail runs
before the model is downloaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.errors import SpecError
from orchestrator.layout import SAMPLE_MODEL_URI, SAMPLE_SEED, SAMPLE_SHAPE
from orchestrator.stores.redact import mask_secrets, redact_uri
from orchestrator.stores.uris import file_problem, sqlite_file

FORMATS = {".png": "a picture", ".npy": "the raw samples", ".parquet": "the raw samples"}
MAX_SAMPLES = 1_000_000  # 3 GB of 32x32 RGB float32 samples: more is a typo, not a request
CHUNK = 4096  # samples per forward pass: a large -n does not need memory for all activations
VIEW_QUANTILE = 0.99  # a scatter plot's view holds this share of the coordinates (plus a margin)


@dataclass(frozen=True)
class Written:
    path: Path
    shape: tuple[int, ...]  # of the samples: (n, ...)
    what: str  # "an image grid", "a scatter plot", "an array", "a table"


def check_request(n: int, output: str, seed: int) -> Path:
    """The output file, once -n, --seed and -o are known to be usable."""
    if not 1 <= n <= MAX_SAMPLES:
        raise SpecError(f"-n: must be from 1 to {MAX_SAMPLES:,}, got {n:,}")
    if seed < 0:
        raise SpecError(f"--seed: must be 0 or more, got {seed}")
    path = Path(output)
    if path.suffix.lower() not in FORMATS:
        kinds = ", ".join(f"{ext} ({what})" for ext, what in FORMATS.items())
        raise SpecError(f"-o: {output}: cannot tell what to write from "
                        f"{path.suffix or 'no extension'!r}; use {kinds}")
    problem = file_problem(path)
    if problem:
        raise SpecError(f"-o: {problem}")
    return path


def check_store(tracking_uri: str) -> None:
    """Refuse a tracking store that is not there, rather than let MLflow make an empty one."""
    from orchestrator.stores.checks import check_tracking_uri

    file = sqlite_file(tracking_uri)
    if file is not None and not file.expanduser().exists():
        raise SpecError(f"--tracking-uri: {redact_uri(tracking_uri)}: no such database; give "
                        f"the MLflow store the sweep logged to (or set MLFLOW_TRACKING_URI)")
    problem = check_tracking_uri(tracking_uri)
    if problem:
        raise SpecError(f"--tracking-uri: {problem}")


def sample_to_file(model_uri: str, n: int, output: str, seed: int,
                   tracking_uri: str) -> Written:
    path = check_request(n, output, seed)
    check_store(tracking_uri)
    generator, z_dim = load_generator(model_uri, tracking_uri)
    samples = generate(generator, z_dim, n, seed)
    return write_samples(samples, path, {"model_uri": model_uri, "seed": seed})


def load_generator(model_uri: str, tracking_uri: str):
    """The generator module behind `model_uri`, and its noise size (from its signature)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)  # `models:/` resolves through the global registry
    try:
        model_uri = _named_generator(model_uri, tracking_uri)
        info = mlflow.models.get_model_info(model_uri)
        z_dim = _noise_size(info.signature)
        return mlflow.pytorch.load_model(model_uri), z_dim
    except (MlflowException, OSError) as exc:
        why = mask_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else
                           type(exc).__name__, tracking_uri)
        raise SpecError(f"MODEL_URI: {model_uri}: {why}") from None


def _named_generator(model_uri: str, tracking_uri: str) -> str:
    """`runs:/RUN/generator` (and `generator_best`), the names a run's generators had before
    they were named after their trial (`trial-0007-last`, `-best`): the run's logged model of
    that kind, found by its tag; any other URI as it is."""
    from mlflow import MlflowClient

    from orchestrator.layout import AT_BEST, AT_LAST, BEST_MODEL_NAME, MODEL_NAME
    from orchestrator.registry.promote import logged_generator

    run_id, _, name = model_uri.removeprefix("runs:/").partition("/")
    at = {MODEL_NAME: AT_LAST, BEST_MODEL_NAME: AT_BEST}.get(name.strip("/"))
    if not model_uri.startswith("runs:/") or at is None:
        return model_uri
    try:
        logged, _, _ = logged_generator(MlflowClient(tracking_uri), run_id, at)
    except SpecError:
        return model_uri  # MLflow's own answer, naming the artifact it did not find
    return f"models:/{logged.model_id}"


def _noise_size(signature) -> int:
    shape = None
    if signature is not None and signature.inputs is not None \
            and signature.inputs.is_tensor_spec():
        shape = signature.inputs.inputs[0].shape
    if shape is None or len(shape) != 2 or shape[1] < 1:
        from mlflow.exceptions import MlflowException

        raise MlflowException("not a generator: its signature does not take noise (n, z_dim)")
    return int(shape[1])


def generate(generator, z_dim: int, n: int, seed: int) -> np.ndarray:
    """(n, ...) float32 samples of standard normal noise drawn from `seed`, CHUNK at a time."""
    import torch

    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        parts = [generator(z[i:i + CHUNK]).float().cpu() for i in range(0, n, CHUNK)]
    return torch.cat(parts).numpy()


def write_samples(samples: np.ndarray, path: Path, meta: dict) -> Written:
    ext = path.suffix.lower()
    try:
        if ext == ".npy":
            with open(path, "wb") as f:
                np.save(f, samples)
            what = "an array"
        elif ext == ".parquet":
            _write_parquet(samples, path, meta)
            what = "a table"
        else:
            png, what = picture(samples)
            path.write_bytes(png)
    except OSError as exc:
        raise SpecError(f"-o: cannot write {path}: {exc.strerror or exc}") from None
    return Written(path, tuple(samples.shape), what)


def picture(samples: np.ndarray) -> tuple[bytes, str]:
    """An image grid (about square: ceil(sqrt(n)) per row) or a scatter plot of 2D points."""
    from trainers.grids import image_grid_png
    from trainers.plots import scatter_png

    if samples.ndim == 4:
        return image_grid_png(samples, nrow=math.ceil(math.sqrt(len(samples)))), "an image grid"
    if samples.ndim == 2 and samples.shape[1] == 2:
        return scatter_png(np.empty((0, 2)), samples, view_extent(samples)), "a scatter plot"
    raise SpecError(f"-o: a .png shows images (n, C, H, W) or points (n, 2); this model makes "
                    f"{_shape(samples.shape)}: write .npy or .parquet")


def view_extent(points: np.ndarray) -> float:
    """Half the side of a square view around 0 that holds VIEW_QUANTILE of the coordinates,
    with a margin: a few points far out (a GAN's outliers) do not shrink the rest to a dot."""
    finite = np.abs(points[np.isfinite(points)])
    if finite.size == 0:
        return 1.0
    return 1.25 * float(np.quantile(finite, VIEW_QUANTILE)) + 0.25


def _write_parquet(samples: np.ndarray, path: Path, meta: dict) -> None:
    """One row per sample. Vectors (n, d): one float column per coordinate (x, y for points);
    anything larger: a `sample` column of flattened values, the shape in the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(samples)
    if samples.ndim == 2:
        names = ["x", "y"] if samples.shape[1] == 2 else [f"x{i}" for i in
                                                           range(samples.shape[1])]
        table = pa.table({name: samples[:, i] for i, name in enumerate(names)})
    else:
        flat = pa.array(samples.reshape(n, -1).ravel())
        size = int(np.prod(samples.shape[1:]))
        table = pa.table({"sample": pa.FixedSizeListArray.from_arrays(flat, size)})
    shape = json.dumps(list(samples.shape[1:]))
    table = table.replace_schema_metadata({SAMPLE_SHAPE: shape,
                                           SAMPLE_MODEL_URI: redact_uri(meta["model_uri"]),
                                           SAMPLE_SEED: str(meta["seed"])})
    pq.write_table(table, path)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(["n", *map(str, shape[1:])]) + ")"
