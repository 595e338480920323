"""`gansweep init`: a starting spec for your own images."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.common import friendly_errors
from orchestrator.errors import SpecError


@click.command()
@click.option("--dataset", required=True, metavar="DATASET", help="What to sweep on: "
              "parquet:FILE (from `gansweep data import`), digits16, ...")
@click.option("--name", default=None, help="The sweep's name [default: the file's stem].")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="The spec file to write [default: NAME.yaml].")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@friendly_errors
def init(dataset, name, output, force) -> None:
    """Write a starting sweep spec for DATASET: the DCGAN family and the space measured on the
    built-in digits, ready for `gansweep launch`."""
    from orchestrator.spec.starter import default_name, starter_spec

    name = name or default_name(dataset)
    path = Path(output or f"{name}.yaml")
    if path.exists() and not force:
        raise SpecError(f"{path}: exists: give another -o, or --force to overwrite it")
    text = starter_spec(dataset, name, path.name)
    path.write_text(text)
    click.echo(f"wrote {path}: sweep {name} on {dataset} (the DCGAN family, the digits space)")
    click.echo(f"run it:  gansweep launch {path}")
