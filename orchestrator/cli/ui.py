"""`gansweep ui`: the MLflow UI on the sweeps' tracking store. Parsing and printing only; the
server and the links are orchestrator/tracking/ui.py, the mending of a moved store
orchestrator/stores/relocate.py.
"""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.common import (
    friendly_errors,
    load_sweep_study,
    store_options,
    tracking_uri_of,
)
from orchestrator.errors import SpecError
from orchestrator.stores.redact import redact_uri


@click.command()
@click.argument("name", required=False)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on (0.0.0.0: every interface of this machine).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port to serve on; taken: an error [default: 5000, else a free port].")
@click.option("--relocate", is_flag=True, help="The project folder moved: first point the "
              "sqlite store's artifact locations at the folder its database is in now.")
@store_options
@friendly_errors
def ui(name, host, port, relocate, storage, tracking_uri) -> None:
    """Start the MLflow UI on the tracking store and print where to look: with NAME, that
    sweep's trials, best first, its eval metrics and params as columns; else the experiments.
    Ctrl-C stops it. On a tracking server (http://...) nothing is started: the links are
    printed."""
    from orchestrator.stores.uris import sqlite_file

    uri = tracking_uri_of(tracking_uri)
    if uri.startswith(("http://", "https://")):
        if relocate:
            raise SpecError("--relocate: a tracking server keeps its own artifact locations")
        _print_remote(name, storage, uri)
        return
    db = sqlite_file(uri)
    if db is not None:
        _check_local(db, uri, relocate)
    elif relocate:
        raise SpecError("--relocate: only for a local sqlite tracking store")
    _serve(name, storage, uri, host, port, db)


def _print_remote(name, storage, uri: str) -> None:
    from orchestrator.stores.checks import check_server
    from orchestrator.tracking.ui import server_base

    problem = check_server(uri)
    if problem:
        raise SpecError(f"--tracking-uri: {problem}")
    base = server_base(uri)
    lines = _links(name, storage, uri, base)
    click.echo(f"MLflow UI at {base} (a tracking server: gansweep starts nothing)")
    click.echo("\n".join(lines))


def _links(name, storage, uri: str, base: str) -> list[str]:
    """Where to look: the sweep's trials (saving their view in its experiment), else the
    experiments list."""
    from orchestrator.tracking.ui import experiments_url, sweep_link

    # MLflow 3.17 keeps its view per browser and its own links do not carry a link's
    # (orchestrator/tracking/ui.py): one click on the switch keeps the UI on training runs
    tip = ("  (MLflow opens runs, Compare and experiments in its GenAI view until the sidebar's "
           "switch says Model training: click it once in this browser and it stays)")
    if name:
        link = sweep_link(load_sweep_study(name, storage), uri, base)
        return [f"sweep {name}, trials best first: {link}", tip]
    return [f"experiments: {experiments_url(base)}", tip,
            "  (`gansweep ui NAME` links a sweep's runs directly)"]


def _check_local(db: Path, uri: str, relocate: bool) -> None:
    """The store must exist (the UI would make an empty one); after a move, mend or warn."""
    from orchestrator.stores.relocate import copied_roots, stale_roots
    from orchestrator.stores.relocate import relocate as do_relocate

    if not db.is_file():
        raise SpecError(f"--tracking-uri: no MLflow store at {redact_uri(uri)} (launch a sweep "
                        f"first, or pass the store it used)")
    if relocate:
        done = do_relocate(db)
        for moved in done:
            storage = (f" and {moved.storage_rewritten} registered version(s)' Optuna storage"
                       if moved.storage_rewritten else "")
            click.echo(f"relocated {moved.rewritten} artifact location(s){storage}: "
                       f"{moved.old} -> {moved.new}")
        if not done:
            click.echo(f"--relocate: every artifact location of {db.name} is already in "
                       f"{db.resolve().parent} (or none matches a folder there)")
        return
    for old in sorted(stale_roots(db)):
        click.echo(f"warning: {db.name}'s artifact locations point into {old}, which is gone "
                   f"(the folder moved?): images and models will not load; `gansweep ui "
                   f"--relocate` points them at {db.resolve().parent}", err=True)
    for old in sorted(root for root in copied_roots(db) if root.exists()):
        click.echo(f"warning: {db.name}'s artifact locations point into {old}, which still "
                   f"exists: this UI shows (and new runs write) that folder's files, not the "
                   f"copies beside {db.name}; `gansweep ui --relocate` points them at "
                   f"{db.resolve().parent}", err=True)


def _serve(name, storage, uri: str, host: str, port: int | None, db: Path | None) -> None:
    from orchestrator.tracking.ui import (
        address,
        pick_port,
        running,
        serve_until_stopped,
        start_server,
        wait_ready,
    )

    port = pick_port(host, port)
    base = address(host, port)
    lines = _links(name, storage, uri, base)  # a bad NAME fails before anything starts
    artifacts = db.resolve().parent / "mlartifacts" if db is not None else None
    with running(start_server(uri, host, port, artifacts)) as server:
        try:
            wait_ready(server)
            click.echo(f"MLflow UI on {redact_uri(uri)} at {base} (Ctrl-C stops it)")
            click.echo("\n".join(lines))
            serve_until_stopped(server)
        except KeyboardInterrupt:
            click.echo("stopping the MLflow UI")
