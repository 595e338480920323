"""`gansweep submit`: the sweep's driver as a Ray Job, so that it runs on the cluster's head
and survives the user's laptop closing. The project folder is the job's working_dir; the job
runs `python -m orchestrator.cli launch SPEC` there. The stores reach the job through its
environment (GANSWEEP_STORAGE, MLFLOW_TRACKING_URI), never its command line, which anyone who
reaches the dashboard reads. On a stock Ray image the job's runtime_env installs gansweep's
dependencies at the versions pinned here and ships gansweep's own packages; `--no-install` skips
that on an image that has them (clusters/Dockerfile). A plug-in trainer in the project folder is
imported there by the job's driver and shipped to every actor; `--py-module` uploads more
folders (code outside the project folder).
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SpecError
from orchestrator.layout import TAG_SWEEP
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.redact import ROOT_SECRET, redact_uri, storage_flag
from orchestrator.stores.uris import refuse_empty

# Never uploaded with the job (Ray also skips what .gitignore lists).
EXCLUDES = [".venv", ".git", "mlartifacts", "checkpoints", "*.db", "__pycache__", "*.egg-info"]
NOT_INSTALLED = {"ray"}  # the cluster's own; its version is checked instead


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    entrypoint: str
    storage_flag: str  # " --storage X" for the next-step hints, never a secret
    installs: int  # pinned packages the job's runtime_env installs (0 with --no-install)
    cluster_ray: str | None  # the head's Ray version
    token: bool = False  # whether the user's Ray token went with it


def job_entrypoint(spec: SweepSpec, working_dir: str, checkpoint_root: str | None,
                   trials: int | None, require_gpu: bool,
                   feature_extractor: str | None = None, allow_changed_spec: bool = False) -> str:
    """The driver's command line, run in the uploaded working_dir on the cluster; it holds no
    store URI (those travel in the job's env_vars)."""
    root = Path(working_dir).resolve()
    args = ["python", "-m", "orchestrator.cli", "launch",
            _inside(root, spec.path, "SPEC")]
    if checkpoint_root:
        args += ["--checkpoint-root", checkpoint_root]
    if trials:
        args += ["--trials", str(trials)]
    if feature_extractor:
        args += ["--feature-extractor", _inside(root, feature_extractor, "--feature-extractor")]
    if require_gpu:
        args.append("--require-gpu")
    if allow_changed_spec:
        args.append("--allow-changed-spec")
    return shlex.join(args)


def _inside(root: Path, path: str, what: str) -> str:
    """`path` relative to the uploaded folder, which is where the job finds it."""
    file = Path(path).resolve()
    if not file.is_relative_to(root):
        label = f"{path}" if what == "SPEC" else f"{what}: {path}"
        raise SpecError(f"{label}: must be inside --working-dir {root}, which is what the job "
                        f"uploads")
    return file.relative_to(root).as_posix()


def shared_stores(storage: str | None, tracking_uri: str | None) -> tuple[str, str]:
    """The study storage and tracking URI a job on the cluster and this machine both reach:
    given explicitly (a flag, GANSWEEP_STORAGE, MLFLOW_TRACKING_URI), never the local
    defaults."""
    refuse_empty("--storage", storage, "the study storage", "GANSWEEP_STORAGE")
    storage = storage or os.environ.get("GANSWEEP_STORAGE")
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not storage:
        raise SpecError("--storage: a submitted sweep needs a study storage that the cluster and "
                        "this machine both reach, e.g. postgresql://USER:PASS@HOST:5432/optuna "
                        "(see clusters/README.md)")
    if not tracking_uri:
        raise SpecError("--tracking-uri: a submitted sweep needs an MLflow tracking server that "
                        "every node reaches, e.g. http://HOST:5000 (see clusters/README.md)")
    return storage, tracking_uri


def pinned_requirements(storage: str) -> list[str]:
    """gansweep's dependencies and theirs, each pinned to the version installed here (the
    versions constraints.txt pins), plus the study storage's database driver; Ray itself and
    what only Ray needs are the cluster's."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    extras = {"postgres"} if storage.startswith("postgresql") else (
        {"mysql"} if storage.startswith("mysql") else set())
    pins: dict[str, str] = {}

    def visit(dist_name: str, with_extras: set[str]) -> None:
        for line in distribution(dist_name).requires or []:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({"extra": e})
                                      for e in (with_extras or {""})):
                continue
            name = canonicalize_name(req.name)
            if name in pins or name in NOT_INSTALLED:
                continue
            try:
                pins[name] = distribution(name).version.split("+")[0]  # not torch's "+cpu"
            except PackageNotFoundError:  # not for this platform
                continue
            visit(name, set(req.extras))

    visit("gansweep", extras)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def gansweep_packages() -> list[str]:
    """The folders of gansweep's own packages, shipped to a cluster that lacks them."""
    import orchestrator
    import trainers

    return [str(Path(m.__file__).resolve().parent) for m in (orchestrator, trainers)]


def job_runtime_env(working_dir: str, storage: str | None, tracking_uri: str | None,
                    py_modules: tuple[str, ...] = (), install: bool = True) -> dict:
    """What the job runs in: the project folder, the stores in its environment (None: the
    cluster's own, e.g. from a KubeRay secret), and (unless the image has them) gansweep and
    its pinned dependencies."""
    runtime_env: dict = {
        "working_dir": str(Path(working_dir).resolve()), "excludes": EXCLUDES,
        # a first install of torch's CUDA wheel and ~100 pins can outlast Ray's 10 minutes
        "config": {"setup_timeout_seconds": 1800}}
    stores = {"GANSWEEP_STORAGE": storage, "MLFLOW_TRACKING_URI": tracking_uri}
    if any(stores.values()):
        runtime_env["env_vars"] = {k: v for k, v in stores.items() if v}
    modules = [str(Path(p).resolve()) for p in py_modules]  # the user's code, for every actor
    if install:
        modules = gansweep_packages() + modules
        runtime_env["pip"] = {"packages": pinned_requirements(storage or "postgresql"),
                              "pip_check": False}
    if modules:
        runtime_env["py_modules"] = modules
    return runtime_env


def jobs_client(address: str):
    """A Ray Jobs client for `address`, sending the user's Ray token when there is one."""
    from ray.job_submission import JobSubmissionClient

    from orchestrator.cluster.raytoken import auth_headers, auth_problem

    try:
        return JobSubmissionClient(address, headers=auth_headers() or None)
    except Exception as exc:  # unreachable, not a Ray dashboard, or a token refused
        problem = auth_problem(exc) or str(exc).strip().splitlines()[0]
        raise SpecError(f"--address: {address}: {problem}") from None


def submit_sweep(spec: SweepSpec, address: str, working_dir: str, *, storage: str | None,
                 tracking_uri: str | None, checkpoint_root: str | None, trials: int | None,
                 require_gpu: bool, py_modules: tuple[str, ...] = (), install: bool = True,
                 feature_extractor: str | None = None, cluster_stores: bool = False,
                 allow_changed_spec: bool = False) -> SubmittedJob:
    """Submit the sweep; with `cluster_stores`, the job takes GANSWEEP_STORAGE and
    MLFLOW_TRACKING_URI from the cluster's own environment (its driver refuses to start
    without them) and this machine sends none."""
    from orchestrator.cluster.raytoken import auth_headers

    if checkpoint_root and redact_uri(checkpoint_root) != checkpoint_root:  # else in argv
        raise SpecError(f"--checkpoint-root: {redact_uri(checkpoint_root)}: {ROOT_SECRET}")
    if cluster_stores:
        if storage or tracking_uri:
            raise SpecError("--cluster-stores: the stores come from the cluster; drop --storage "
                            "and --tracking-uri")
    else:
        storage, tracking_uri = shared_stores(storage, tracking_uri)
    entrypoint = job_entrypoint(spec, working_dir, checkpoint_root, trials, require_gpu,
                                feature_extractor, allow_changed_spec)
    runtime_env = job_runtime_env(working_dir, storage, tracking_uri, py_modules, install)
    installs = len(runtime_env.get("pip", {}).get("packages", []))
    client = jobs_client(address)
    for wait in (1, 2, 4, 8, 15, 0):  # a head that just started may have no job agent yet
        try:
            job_id = client.submit_job(
                entrypoint=entrypoint,
                runtime_env=runtime_env,
                metadata={TAG_SWEEP: spec.name})
            return SubmittedJob(job_id, entrypoint, storage_flag(storage), installs,
                                getattr(client, "_server_ray_version", None),
                                token=bool(auth_headers()))
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or not wait:
                raise SpecError(f"--address: {address} refused the job: "
                                f"{str(exc).strip().splitlines()[0]}") from None
            time.sleep(wait)
    raise AssertionError("unreachable")
