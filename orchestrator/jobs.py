"""`gansweep submit`: the sweep's driver as a Ray Job, so that it runs on the cluster's head
and survives the user's laptop closing. The project folder is the job's working_dir; the job
runs `python -m orchestrator.cli launch SPEC` there with the stores given here. A plug-in
trainer in the project folder is imported there by the job's driver and shipped to every actor;
`--py-module` uploads more folders (code outside the project folder).
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.spec import SpecError, SweepSpec

# Never uploaded with the job (Ray also skips what .gitignore lists).
EXCLUDES = [".venv", ".git", "mlartifacts", "checkpoints", "*.db", "__pycache__", "*.egg-info"]


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    entrypoint: str
    storage: str


def job_entrypoint(spec: SweepSpec, working_dir: str, storage: str, tracking_uri: str,
                   checkpoint_root: str | None, trials: int | None, require_gpu: bool) -> str:
    """The driver's command line, run in the uploaded working_dir on the cluster."""
    root, spec_file = Path(working_dir).resolve(), Path(spec.path).resolve()
    if not spec_file.is_relative_to(root):
        raise SpecError(f"{spec.path}: must be inside --working-dir {root}, which is what the "
                        f"job uploads")
    args = ["python", "-m", "orchestrator.cli", "launch", spec_file.relative_to(root).as_posix(),
            "--storage", storage, "--tracking-uri", tracking_uri]
    if checkpoint_root:
        args += ["--checkpoint-root", checkpoint_root]
    if trials:
        args += ["--trials", str(trials)]
    if require_gpu:
        args.append("--require-gpu")
    return shlex.join(args)


def shared_stores(storage: str | None, tracking_uri: str | None) -> tuple[str, str]:
    """The study storage and tracking URI a job on the cluster and this machine both reach:
    given explicitly (a flag, or MLFLOW_TRACKING_URI), never the local defaults."""
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not storage:
        raise SpecError("--storage: a submitted sweep needs a study storage that the cluster and "
                        "this machine both reach, e.g. postgresql://USER:PASS@HOST:5432/optuna "
                        "(see clusters/README.md)")
    if not tracking_uri:
        raise SpecError("--tracking-uri: a submitted sweep needs an MLflow tracking server that "
                        "every node reaches, e.g. http://HOST:5000 (see clusters/README.md)")
    return storage, tracking_uri


def submit_sweep(spec: SweepSpec, address: str, working_dir: str, *, storage: str | None,
                 tracking_uri: str | None, checkpoint_root: str | None, trials: int | None,
                 require_gpu: bool, py_modules: tuple[str, ...] = ()) -> SubmittedJob:
    storage, tracking_uri = shared_stores(storage, tracking_uri)
    entrypoint = job_entrypoint(spec, working_dir, storage, tracking_uri, checkpoint_root,
                                trials, require_gpu)
    from ray.job_submission import JobSubmissionClient

    runtime_env = {"working_dir": str(Path(working_dir).resolve()), "excludes": EXCLUDES}
    if py_modules:  # the user's code outside the working dir, for the driver and every actor
        runtime_env["py_modules"] = [str(Path(p).resolve()) for p in py_modules]

    try:
        client = JobSubmissionClient(address)
    except Exception as exc:  # unreachable, or not a Ray dashboard
        raise SpecError(f"--address: no Ray Jobs server at {address}: "
                        f"{str(exc).strip().splitlines()[0]}") from None
    for wait in (1, 2, 4, 8, 15, 0):  # a head that just started may have no job agent yet
        try:
            job_id = client.submit_job(
                entrypoint=entrypoint,
                runtime_env=runtime_env,
                metadata={"gansweep.sweep": spec.name})
            return SubmittedJob(job_id, entrypoint, storage)
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or not wait:
                raise SpecError(f"--address: {address} refused the job: "
                                f"{str(exc).strip().splitlines()[0]}") from None
            time.sleep(wait)
    raise AssertionError("unreachable")
