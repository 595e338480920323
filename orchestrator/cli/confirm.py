"""`gansweep confirm NAME --top K --seeds S`: retrain the best configs on fresh seeds."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys

import click

from orchestrator.cli.common import friendly_errors, store_options, to_json
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
    from orchestrator.driver.launch import Interrupted, Settings, check_job_stores, launch
    from orchestrator.errors import SpecError
    from orchestrator.registry.confirm import confirm_name, plan_confirm, report_confirm, table_text
    from orchestrator.study.record import recorded_store, resume_args, stored_extractor

    check_job_stores(storage, tracking_uri or "from the launch record")
    resolved = Settings.resolve(storage).storage
    found = resume_args(name, resolved)
    plan = plan_confirm(name, top, seeds, resolved)
    with contextlib.suppress(SpecError):  # continuing a confirm: where its launch put things
        found = resume_args(confirm_name(name), resolved)  # (else: the sweep's settings)
    settings = Settings.resolve(
        storage, recorded_store(tracking_uri, found.tracking_uri, "--tracking-uri",
                                "MLFLOW_TRACKING_URI"),
        address, checkpoint_root or found.checkpoint_root,
        feature_extractor=stored_extractor(found, None))
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
