"""`gansweep launch`, `submit` and `resume`: run a sweep here, as a Ray Job on a cluster, or on
from where it stopped. Parsing and printing only; the work is orchestrator/driver/launch.py's
(and orchestrator/cluster/jobs.py's for `submit`)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from orchestrator.cli.common import (
    EXIT_FAILED,
    allow_changed_spec_option,
    fail,
    first_line,
    friendly_errors,
    require_gpu_option,
    store_options,
)
from orchestrator.stores.redact import redact_uri, storage_flag


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--trials", type=int, default=None, help="Total trial budget (overrides the spec).")
@click.option("--address", default=None, help="Ray cluster address [default: RAY_ADDRESS or a "
              "local Ray].")
@click.option("--checkpoint-root", default=None, help="Where trials write checkpoints "
              "[default: the spec's storage.checkpoints, else ./checkpoints].")
@click.option("--enqueue-from", default=None, metavar="RUN_ID", help="Try an earlier MLflow "
              "run's params first.")
@click.option("--feature-extractor", default=None, type=click.Path(dir_okay=False),
              help="A TorchScript feature extractor (e.g. your Inception export): image "
              "sweeps also report eval/fid in its feature space.")
@allow_changed_spec_option
@require_gpu_option
@store_options
@friendly_errors
def launch(spec_path, trials, address, checkpoint_root, enqueue_from, feature_extractor,
           allow_changed_spec, require_gpu, storage, tracking_uri) -> None:
    """Run the sweep in SPEC until its trial budget is met (continues an existing sweep)."""
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.stores.settings import Settings, check_job_stores

    check_job_stores(storage, tracking_uri)
    spec = SweepSpec.load(spec_path).with_trials(trials)
    settings = Settings.resolve(storage, tracking_uri, address,
                                checkpoint_root or spec.storage.checkpoints,
                                feature_extractor=feature_extractor, require_gpu=require_gpu)
    first = _first_here(storage, tracking_uri)
    _drive(spec, settings, storage, enqueue_from, allow_changed_spec,
           on_started=_make_project if first else None)


def _make_project() -> None:
    """The stores this first launch made are the project's: gansweep.toml says so."""
    from orchestrator.stores.project import write_project

    made = write_project(Path.cwd())
    click.echo(f"the stores are in {made.parent} (optuna.db, mlflow.db, mlartifacts/, "
               f"checkpoints/): {made.name} there makes every command run below it use them",
               err=True)


def _first_here(storage: str | None, tracking_uri: str | None) -> bool:
    """A launch on the default stores, outside any project, in a folder with no study yet."""
    import os

    from orchestrator.stores.project import find_project

    return not (storage or tracking_uri or os.environ.get("GANSWEEP_STORAGE")
                or os.environ.get("MLFLOW_TRACKING_URI") or find_project()
                or Path("optuna.db").exists())


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--address", required=True, help="The cluster's Ray Jobs address, "
              "http://HEAD:8265.")
@click.option("--trials", type=int, default=None, help="Total trial budget (overrides the spec).")
@click.option("--checkpoint-root", default=None, help="Where trials write checkpoints: a URI "
              "every node sees (s3://, gs://, a shared mount) [default: the spec's].")
@click.option("--working-dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="The project folder uploaded with the job; SPEC must be inside it.")
@click.option("--py-module", "py_modules", multiple=True, metavar="PATH",
              type=click.Path(exists=True), help="A package folder or .py file outside "
              "--working-dir to upload too (e.g. your GAN's code); repeat for several.")
@click.option("--feature-extractor", default=None, type=click.Path(dir_okay=False, exists=True),
              help="A TorchScript feature extractor inside --working-dir: image sweeps also "
              "report eval/fid in its feature space.")
@click.option("--no-install", is_flag=True, help="The cluster's image has gansweep installed "
              "(clusters/Dockerfile): skip installing it and its pinned packages in the job.")
@click.option("--cluster-stores", is_flag=True, help="The cluster's nodes already have "
              "GANSWEEP_STORAGE and MLFLOW_TRACKING_URI (e.g. a KubeRay secret): send none.")
@allow_changed_spec_option
@require_gpu_option
@store_options
@friendly_errors
def submit(spec_path, address, trials, checkpoint_root, working_dir, py_modules,
           feature_extractor, no_install, cluster_stores, allow_changed_spec, require_gpu,
           storage, tracking_uri) -> None:
    """Run the sweep in SPEC as a Ray Job on the cluster at ADDRESS: the driver lives on the
    cluster, so the sweep survives this machine going away."""
    from orchestrator.cluster.jobs import submit_sweep
    from orchestrator.spec.sweep import SweepSpec, plugin_folders

    plugin_folders([Path(p).resolve().parent for p in py_modules])  # importable here, too
    spec = SweepSpec.load(spec_path).with_trials(trials)
    job = submit_sweep(spec, address, working_dir, storage=storage, tracking_uri=tracking_uri,
                       checkpoint_root=checkpoint_root, trials=trials, require_gpu=require_gpu,
                       py_modules=py_modules, install=not no_install,
                       feature_extractor=feature_extractor, cluster_stores=cluster_stores,
                       allow_changed_spec=allow_changed_spec)
    click.echo(f"submitted sweep {spec.name} as Ray job {job.job_id}")
    if job.installs:
        click.echo(f"the job installs gansweep and its {job.installs} pinned packages on the "
                   f"cluster (minutes the first time; --no-install on an image that has them, "
                   f"see clusters/Dockerfile)")
    from ray import __version__ as ray_version

    if job.cluster_ray and job.cluster_ray != ray_version:
        click.echo(f"warning: the cluster runs Ray {job.cluster_ray}, this machine {ray_version}:"
                   f" gansweep is tested with the Ray that constraints.txt pins", err=True)
    ray_cli = "RAY_AUTH_MODE=token ray" if job.token else "ray"  # Ray's CLI sends it only so
    if redact_uri(address) != address:  # never print its credential: name a variable instead
        click.echo("(export RAY_ADDRESS with the address you gave: it holds a credential)")
        address = '"$RAY_ADDRESS"'
    click.echo(f"follow it:  {ray_cli} job logs --address {address} --follow {job.job_id}")
    click.echo(f"stop it:    {ray_cli} job stop --address {address} {job.job_id}   (then: "
               f"gansweep resume {spec.name}{job.storage_flag})")
    click.echo(f"trials:     gansweep status {spec.name}{job.storage_flag}")


@click.command()
@click.argument("name")
@click.option("--trials", type=int, default=None, help="Raise the total trial budget.")
@click.option("--address", default=None, help="Ray cluster address [default: RAY_ADDRESS or a "
              "local Ray].")
@click.option("--checkpoint-root", default=None, help="Where the trials' checkpoints are "
              "[default: where the sweep was launched with].")
@click.option("--feature-extractor", default=None, type=click.Path(dir_okay=False),
              help="The sweep's TorchScript feature extractor, when it moved [default: the "
              "file it was launched with; it must be the same bytes].")
@store_options
@friendly_errors
def resume(name, trials, address, checkpoint_root, feature_extractor, storage,
           tracking_uri) -> None:
    """Continue sweep NAME after a crash, Ctrl-C or lost driver: trials left running go on from
    their last checkpoint in the same trial and MLflow run, then the budget is filled."""
    from orchestrator.study.record import launch_record

    record = launch_record(name, storage)
    spec = record.sweep_spec(trials)  # --trials 0 is refused, not ignored
    settings = record.settings(storage, tracking_uri, address, checkpoint_root,
                               feature_extractor)
    _drive(spec, settings, storage, None)


def _drive(spec, settings, storage, enqueue_from, allow_changed_spec=False,
           on_started=None) -> None:
    """Run the sweep with a live progress display; on a signal, say how to resume."""
    from orchestrator.cli.progress import SweepProgress
    from orchestrator.driver.launch import launch as run_launch
    from orchestrator.driver.signals import Interrupted
    from orchestrator.errors import OutOfSpace, out_of_space

    try:
        with SweepProgress(spec) as progress:
            stats = run_launch(spec, settings, on_update=progress.update,
                               notice=progress.notice, enqueue_from=enqueue_from,
                               allow_changed_spec=allow_changed_spec,
                               on_started=on_started)
    except (Interrupted, KeyboardInterrupt) as exc:
        again = storage_flag(storage)
        done = (f"{len(exc.suspended)} trial(s) checkpointed and left resumable"
                if isinstance(exc, Interrupted) else "stopped at once; trials resume from their "
                "last checkpoint")
        click.echo(f"gansweep: {spec.name} interrupted: {done}. Resume with: "
                   f"gansweep resume {spec.name}{again}", err=True)
        sys.exit(128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT))
    except Exception as exc:
        if not out_of_space(exc):
            raise
        what = exc.what if isinstance(exc, OutOfSpace) else first_line(exc)
        fail(f"{spec.name}: stopped, no space left on device ({what}); its trials in flight "
             f"stay at their last complete checkpoint: free space, then `gansweep resume "
             f"{spec.name}{storage_flag(storage)}`", EXIT_FAILED)
    if stats is not None:
        click.echo(progress.summary(stats))
    if stats is not None and stats.done == 0:  # it ran, but there is nothing to promote
        click.echo(f"gansweep: {spec.name}: no trial completed ({stats.failed} failed, "
                   f"{stats.pruned} pruned): `gansweep status {spec.name}"
                   f"{storage_flag(storage)}` says why", err=True)
        sys.exit(1)
    if spec.budget.confirm is not None:
        _print_confirmed(spec, settings.storage)
    click.echo(f"next: gansweep best {spec.name}   |   "
               f"gansweep promote {spec.name} --model-name {spec.name}-generator")


def _print_confirmed(spec, storage: str) -> None:
    """The confirm phase's table, and which config `promote` will pick by it."""
    from orchestrator.driver.confirm import table_now

    found = table_now(spec, storage)
    if found is None:
        return
    text, best = found
    click.echo(f"confirmed on {spec.budget.confirm.seeds} fresh seeds per config (each run's "
               f"last evaluation):")
    click.echo(text)
    if best is not None:
        click.echo(f"most trustworthy: trial {best.trial} (best 95% bound); `gansweep promote` "
                   f"picks it")
