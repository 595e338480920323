"""`gansweep confirm`, `promote` and `sample`: from a sweep's best trials to a registered
generator you can trust, and samples of it. Parsing and printing only; the work is
orchestrator/registry/'s."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys

import click

from orchestrator.cli.common import (
    friendly_errors,
    load_sweep_study,
    store_options,
    to_json,
    tracking_option,
    tracking_uri_of,
)
from orchestrator.stores.redact import storage_flag


@click.command()
@click.argument("name")
@click.option("--top", type=int, default=3, show_default=True,
              help="Confirm the K best completed trials' configs.")
@click.option("--seeds", type=int, default=3, show_default=True,
              help="Fresh seeds per config (at least 2: the bound needs a spread).")
@click.option("--address", default=None, help="Ray cluster address [default: RAY_ADDRESS or a "
              "local Ray].")
@click.option("--checkpoint-root", default=None, help="Where the confirm trials checkpoint "
              "[default: where the sweep was launched with].")
@click.option("--at", type=click.Choice(["last", "best"]), default="last", show_default=True,
              help="Each run's final objective, or its best evaluation's (what its "
              "generator_best scored: optimistic, a max over evaluations).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@store_options
@friendly_errors
def confirm(name, top, seeds, address, checkpoint_root, at, as_json, storage,
            tracking_uri) -> None:
    """Retrain the top K configs of sweep NAME on S fresh seeds each, as child runs of the
    sweep (gansweep.role=confirm), and print per config the mean, std and a pessimistic 95%
    bound of the objective; `promote` then picks by that bound. Run it again to continue an
    interrupted confirm, or with a larger K or S to add runs."""
    from orchestrator.cli.progress import SweepProgress
    from orchestrator.driver.launch import launch
    from orchestrator.driver.signals import Interrupted
    from orchestrator.errors import SpecError
    from orchestrator.registry.confirm import (
        check_request,
        plan_confirm,
        report_confirm,
        table_text,
    )
    from orchestrator.stores.uris import absolute_storage, resolve_storage
    from orchestrator.study.record import launch_record
    from orchestrator.study.studies import confirm_name

    check_request(top, seeds)
    record = launch_record(name, storage)
    plan = plan_confirm(name, top, seeds, absolute_storage(resolve_storage(storage)))
    with contextlib.suppress(SpecError):  # continuing a confirm: where its launch put things
        record = launch_record(confirm_name(name), storage)  # (else: the sweep's settings)
    settings = record.settings(storage, tracking_uri, address, checkpoint_root)
    try:
        with SweepProgress(plan.spec) as progress:
            launch(plan.spec, settings, on_update=progress.update, notice=progress.notice,
                   confirm_of=name)
    except (Interrupted, KeyboardInterrupt) as exc:
        click.echo(f"gansweep: confirm of {name} interrupted; continue with: gansweep confirm "
                   f"{name} --top {top} --seeds {seeds} --at {at}{storage_flag(storage)}",
                   err=True)
        sys.exit(128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT))
    rows = report_confirm(name, plan, settings, at)
    objective = plan.sweep.objective
    if as_json:
        click.echo(to_json({"sweep": name, "metric": objective.metric,
                            "direction": objective.direction, "at": at,
                            "rows": [dataclasses.asdict(row) for row in rows]}))
        return
    click.echo(f"confirm of {name}: {objective.metric} ({objective.direction}), "
               f"{seeds} fresh seeds per config, each run's {at} evaluation")
    click.echo(table_text(rows, objective.metric, objective.direction == "maximize"))
    if rows and rows[0].bound is not None:
        click.echo(f"most trustworthy: trial {rows[0].trial} (best 95% bound); "
                   f"`gansweep promote {name} --model-name ...` picks it")


@click.command()
@click.argument("name")
@click.option("--model-name", required=True, help="Registered model to create or update.")
@click.option("--pick", default=None, metavar="METRIC", help="With several objectives: promote "
              "the point of the Pareto front that is best on METRIC.")
@click.option("--at", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="Which generator of the trial: the one of its best evaluation, or its last "
                   "step's.")
@click.option("--unconfirmed", is_flag=True, help="Choose by the sweep's own values, not by "
              "`gansweep confirm`'s table (e.g. when trials entered the top since it ran).")
@store_options
@friendly_errors
def promote(name, model_name, pick, at, unconfirmed, storage, tracking_uri) -> None:
    """Register the best generator of sweep NAME and point alias `champion` at it."""
    from orchestrator.registry.promote import check_model_name
    from orchestrator.registry.promote import promote as do_promote
    from orchestrator.stores.uris import absolute_storage, resolve_storage
    from orchestrator.study.studies import load_confirm_study
    from orchestrator.tracking.ui import run_urls

    check_model_name(model_name)  # before any store is opened
    study = load_sweep_study(name, storage)
    storage = absolute_storage(resolve_storage(storage))
    confirm = None if pick or unconfirmed else load_confirm_study(name, storage)
    done = do_promote(study, tracking_uri_of(tracking_uri), model_name, pick, at, storage,
                      confirm)
    choice = done.choice
    click.echo(f"chosen by {choice.rule}: trial {choice.trial}, {choice.metric} = "
               f"{choice.value:.6g}")
    if done.fell_back:
        click.echo(f"note: run {done.run_id} has no best generator (logged before trials kept "
                   f"their best evaluation's); promoting its last generator")
    what = "registered new" if done.created else "already registered:"
    click.echo(f"{what} {done.model_name} version {done.version} from trial {done.trial} "
               f"(run {done.run_id}, model {done.generator})")
    was = done.replaced
    moved = (f" (was version {was.version}: trial {was.trial}, {choice.metric} = "
             f"{was.value or 'not recorded'})" if was else "")
    click.echo(f"alias champion -> version {done.version}"
               + (moved if done.alias_moved else " (unchanged)"))
    urls, note = run_urls(study, [done.run_id])
    click.echo(f"its run: {urls[done.run_id]}" + (f"  ({note})" if note else ""))
    click.echo(f"load it: mlflow.pytorch.load_model('models:/{done.model_name}@champion')   |   "
               f"gansweep sample models:/{done.model_name}@champion -n 64 -o samples.png")


@click.command()
@click.argument("model_uri")
@click.option("-n", "n", type=int, default=64, show_default=True, help="How many samples.")
@click.option("-o", "--output", required=True, metavar="FILE",
              help="FILE.png: an image grid, or a scatter plot of 2D points; FILE.npy or "
                   "FILE.parquet: the raw samples, one per row.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the noise: the same seed writes the same samples.")
@tracking_option
@friendly_errors
def sample(model_uri, n, output, seed, tracking_uri) -> None:
    """Write N samples of the generator MODEL_URI to FILE: models:/NAME@champion,
    models:/NAME/VERSION, runs:/RUN_ID/generator or models:/m-MODEL_ID."""
    from orchestrator.registry.sample import check_request, sample_to_file

    check_request(n, output, seed)  # a typo fails before any store is opened
    done = sample_to_file(model_uri, n, output, seed, tracking_uri_of(tracking_uri))
    shape = ", ".join(["n", *map(str, done.shape[1:])])
    click.echo(f"wrote {done.path}: {done.what} of {done.shape[0]} samples ({shape}) from "
               f"{model_uri}, seed {seed}")
