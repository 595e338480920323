"""`gansweep`: launch, submit, resume, status, best, promote, check-trainer, data import here;
confirm, sample and ui in orchestrator/cli_*.py. Parsing only; the work lives in the modules.

Each command imports what it needs when it runs, so `--help` imports none of Ray, torch, Optuna or
MLflow, and the read-only `status` and `best` need Optuna only (tests/orchestrator/test_imports.py).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click

from orchestrator.cli.common import (
    friendly_errors,
    load_sweep_study,
    require_gpu_option,
    storage_option,
    store_options,
    to_json,
    tracking_uri_of,
)
from orchestrator.cli.confirm import confirm
from orchestrator.cli.sample import sample
from orchestrator.cli.ui import ui
from orchestrator.errors import SpecError
from orchestrator.stores.redact import storage_flag


@click.group()
@click.version_option(package_name="gansweep")
def main() -> None:
    """Sweep GAN architectures and hyperparameters on Ray, with Optuna and MLflow."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no per-call INFO chatter


@main.command()
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
@require_gpu_option
@store_options
@friendly_errors
def launch(spec_path, trials, address, checkpoint_root, enqueue_from, feature_extractor,
           require_gpu, storage, tracking_uri) -> None:
    """Run the sweep in SPEC until its trial budget is met (continues an existing sweep)."""
    from orchestrator.driver.launch import Settings, check_job_stores
    from orchestrator.spec.sweep import SweepSpec

    check_job_stores(storage, tracking_uri)
    spec = SweepSpec.load(spec_path).with_trials(trials)
    settings = Settings.resolve(storage, tracking_uri, address,
                                checkpoint_root or spec.storage.checkpoints,
                                feature_extractor=feature_extractor, require_gpu=require_gpu)
    _drive(spec, settings, storage, enqueue_from)


@main.command()
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
@require_gpu_option
@store_options
@friendly_errors
def submit(spec_path, address, trials, checkpoint_root, working_dir, py_modules,
           feature_extractor, no_install, cluster_stores, require_gpu, storage,
           tracking_uri) -> None:
    """Run the sweep in SPEC as a Ray Job on the cluster at ADDRESS: the driver lives on the
    cluster, so the sweep survives this machine going away."""
    from orchestrator.cluster.jobs import submit_sweep
    from orchestrator.spec.sweep import SweepSpec, plugin_folders

    plugin_folders([Path(p).resolve().parent for p in py_modules])  # importable here, too
    spec = SweepSpec.load(spec_path).with_trials(trials)
    job = submit_sweep(spec, address, working_dir, storage=storage, tracking_uri=tracking_uri,
                       checkpoint_root=checkpoint_root, trials=trials, require_gpu=require_gpu,
                       py_modules=py_modules, install=not no_install,
                       feature_extractor=feature_extractor, cluster_stores=cluster_stores)
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
    click.echo(f"follow it:  {ray_cli} job logs --address {address} --follow {job.job_id}")
    click.echo(f"stop it:    {ray_cli} job stop --address {address} {job.job_id}   (then: "
               f"gansweep resume {spec.name}{job.storage_flag})")
    click.echo(f"trials:     gansweep status {spec.name}{job.storage_flag}")


@main.command()
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
    from orchestrator.driver.launch import Settings, check_job_stores
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.study.record import recorded_store, resume_args, stored_extractor

    check_job_stores(storage, tracking_uri or "from the launch record")
    found = resume_args(name, Settings.resolve(storage).storage)
    spec = SweepSpec.parse(found.spec, source=Path(found.spec_path or "spec").name,
                           path=found.spec_path).with_trials(
        found.trials if trials is None else trials)  # --trials 0 is refused, not ignored
    tracking_uri = recorded_store(tracking_uri, found.tracking_uri, "--tracking-uri",
                                  "MLFLOW_TRACKING_URI")
    settings = Settings.resolve(storage, tracking_uri, address,
                                checkpoint_root or found.checkpoint_root,
                                feature_extractor=stored_extractor(found, feature_extractor))
    _drive(spec, settings, storage, None)


def _drive(spec, settings, storage, enqueue_from) -> None:
    """Run the sweep with a live progress display; on a signal, say how to resume."""
    from orchestrator.cli.progress import SweepProgress
    from orchestrator.driver.launch import Interrupted
    from orchestrator.driver.launch import launch as run_launch

    try:
        with SweepProgress(spec) as progress:
            stats = run_launch(spec, settings, on_update=progress.update,
                               notice=progress.notice, enqueue_from=enqueue_from)
    except (Interrupted, KeyboardInterrupt) as exc:
        again = storage_flag(storage)
        done = (f"{len(exc.suspended)} trial(s) checkpointed and left resumable"
                if isinstance(exc, Interrupted) else "stopped at once; trials resume from their "
                "last checkpoint")
        click.echo(f"gansweep: {spec.name} interrupted: {done}. Resume with: "
                   f"gansweep resume {spec.name}{again}", err=True)
        sys.exit(128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT))
    if stats is not None:
        click.echo(progress.summary(stats))
    click.echo(f"next: gansweep best {spec.name}   |   "
               f"gansweep promote {spec.name} --model-name {spec.name}-generator")


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@storage_option
@friendly_errors
def status(name, as_json, storage) -> None:
    """Every trial of sweep NAME: state, objective, params, MLflow run."""
    from orchestrator.cli.progress import trials_table
    from orchestrator.study.results import objectives, trial_rows

    study = load_sweep_study(name, storage)
    rows, goals = trial_rows(study), objectives(study)
    if as_json:  # `direction` for one objective only: Optuna has none for several
        single = {"direction": goals[0]["direction"]} if len(goals) == 1 else {}
        click.echo(to_json({"sweep": name, **single, "directions": [
            g["direction"] for g in goals], "objectives": goals, "trials": rows}))
    else:
        trials_table(name, rows)


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@storage_option
@friendly_errors
def best(name, as_json, storage) -> None:
    """The best trial of sweep NAME (value, params, MLflow run id); with several objectives,
    its Pareto front."""
    from orchestrator.cli.progress import pareto_table
    from orchestrator.study.results import best_trials, objectives
    from orchestrator.tracking.ui import run_url, runs_base

    study = load_sweep_study(name, storage)
    front, goals = best_trials(study), objectives(study)
    base, note = runs_base(study)  # its tracking server's, else `gansweep ui`'s address
    for t in front:
        t["run_url"] = run_url(base, t["run_id"]) if t["run_id"] else None
    if len(goals) > 1:
        if as_json:
            click.echo(to_json({"sweep": name, "objectives": goals, "pareto_front": front}))
        else:
            pareto_table(name, goals, front)
            for t in (t for t in front if t["run_url"]):
                click.echo(f"  trial {t['number']}: {t['run_url']}")
            if note:
                click.echo(f"  ({note})")
        return
    found, goal = front[0], goals[0]
    value = found["values"][goal["metric"]]
    if as_json:
        click.echo(to_json({"sweep": name, "number": found["number"], "value": value,
                          "metric": goal["metric"], "direction": goal["direction"],
                          "params": found["params"], "seed": found["seed"],
                          "run_id": found["run_id"], "run_url": found["run_url"]}))
        return
    click.echo(f"best trial of {name}: #{found['number']}  {goal['metric']}={value:.6g} "
               f"({goal['direction']})")
    click.echo(f"  mlflow run: {found['run_id']}   seed: {found['seed']}")
    if found["run_url"]:
        click.echo(f"  open it: {found['run_url']}" + (f"  ({note})" if note else ""))
    for key, param in sorted(found["params"].items()):
        click.echo(f"  {key} = {param}")


@main.command()
@click.argument("name")
@click.option("--model-name", required=True, help="Registered model to create or update.")
@click.option("--pick", default=None, metavar="METRIC", help="With several objectives: promote "
              "the point of the Pareto front that is best on METRIC.")
@click.option("--at", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="Which generator of the trial: the one of its best evaluation, or its last "
                   "step's.")
@store_options
@friendly_errors
def promote(name, model_name, pick, at, storage, tracking_uri) -> None:
    """Register the best generator of sweep NAME and point alias `champion` at it."""
    from orchestrator.registry.promote import check_model_name
    from orchestrator.registry.promote import promote as do_promote
    from orchestrator.study.studies import absolute_storage, resolve_storage
    from orchestrator.tracking.ui import run_url, runs_base

    check_model_name(model_name)  # before any store is opened
    study = load_sweep_study(name, storage)
    done = do_promote(study, tracking_uri_of(tracking_uri), model_name, pick, at,
                      absolute_storage(resolve_storage(storage)))
    choice = done.choice
    click.echo(f"chosen by {choice.rule}: trial {choice.trial}, {choice.metric} = "
               f"{choice.value:.6g}")
    if done.fell_back:
        click.echo(f"note: run {done.run_id} has no generator_best (logged before trials kept "
                   f"their best evaluation's); promoting its last generator")
    what = "registered new" if done.created else "already registered:"
    click.echo(f"{what} {done.model_name} version {done.version} from trial {done.trial} "
               f"(run {done.run_id}, model {done.generator})")
    was = done.replaced
    moved = (f" (was version {was.version}: trial {was.trial}, {choice.metric} = "
             f"{was.value or 'not recorded'})" if was else "")
    click.echo(f"alias champion -> version {done.version}"
               + (moved if done.alias_moved else " (unchanged)"))
    base, note = runs_base(study)
    click.echo(f"its run: {run_url(base, done.run_id)}" + (f"  ({note})" if note else ""))
    click.echo(f"load it: mlflow.pytorch.load_model('models:/{done.model_name}@champion')   |   "
               f"gansweep sample models:/{done.model_name}@champion -n 64 -o samples.png")


@main.command("check-trainer")
@click.argument("import_path")
@click.option("--dataset", default=None, help="The data to check on, as a spec names it "
              "[default: ring8, digits or none, by the trainer's DATA_KIND].")
@click.option("--params", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A Config parameter (YAML value); repeat for several.")
@click.option("--steps", type=click.IntRange(1, 100_000), default=3, show_default=True,
              help="Steps in each training chunk.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@friendly_errors
def check_trainer(import_path, dataset, params, steps, seed, device) -> None:
    """Check the trainer at IMPORT_PATH (package.module:Class, or a registered name) against
    gansweep's trainer contract, as a sweep would drive it: PASS / FAIL per check, exit 1 on
    any failure."""
    from orchestrator.cluster.plugins import check_trainer_table

    lines, ok = check_trainer_table(import_path, dataset, parse_params(params), steps, seed,
                                    device)
    for line in lines:
        click.echo(line)
    sys.exit(0 if ok else 1)


def parse_params(pairs: tuple[str, ...]) -> dict:
    """KEY=VALUE flags as a params dict, each value read as YAML (1e-3, true, relu)."""
    import yaml

    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--params: expected KEY=VALUE, got {pair!r}")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise SpecError(f"--params: {key}: not a YAML value: {value!r}") from None
    return params


@main.group()
def data() -> None:
    """Bring your own images: convert them to Parquet once, sweep on `parquet:FILE`."""


@data.command("import")
@click.argument("src")
@click.option("-o", "--output", required=True, type=click.Path(),  # checked in one line there
              help="The Parquet file to write.")
@click.option("--size", type=click.IntRange(8, 64), default=32, show_default=True,
              help="Square side in pixels.")
@click.option("--channels", type=click.Choice(["1", "3"]), default="1", show_default=True)
@click.option("--held-out", type=click.FloatRange(0.0, 0.9), default=0.1, show_default=True,
              help="Fraction of images kept out of training (a deterministic split).")
@friendly_errors
def data_import(src, output, size, channels, held_out) -> None:
    """Convert SRC (an image folder, class = sub-folder, or an MNIST IDX images file) to
    Parquet: PNG bytes, label, and a stored train / held-out split."""
    from rich.progress import Progress

    from trainers.image_data import DatasetError, import_to_parquet

    with Progress(transient=True) as bar:
        task = bar.add_task(f"importing {src}", total=None)
        try:
            summary = import_to_parquet(src, output, size, int(channels), held_out,
                                        progress=lambda done, total: bar.update(
                                            task, completed=done, total=total))
        except DatasetError as exc:
            raise SpecError(str(exc)) from None
    click.echo(f"wrote {summary.path}: {summary.written} images ({summary.train} train, "
               f"{summary.test} held out, {summary.classes} classes), skipped "
               f"{summary.skipped} unreadable")
    click.echo(f"sweep on it with  dataset: parquet:{summary.path}")


main.add_command(confirm)
main.add_command(sample)
main.add_command(ui)


def run() -> None:
    """The `gansweep` command: `main`, then an exit that skips the interpreter's teardown.

    Freeing torch, MLflow and Ray module by module takes seconds after the work is done and
    everything written; the exit keeps what matters of it: non-daemon threads finish, atexit
    handlers run (Ray's shutdown, logging's flush), stdout and stderr are flushed."""
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code
    threading._shutdown()  # as the interpreter's exit: pools told to stop, threads joined
    atexit._run_exitfuncs()  # then the atexit handlers, before the teardown skipped here
    if code is not None and not isinstance(code, int):  # sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)

