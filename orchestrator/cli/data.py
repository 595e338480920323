"""`gansweep data import`: bring your own images, converted to Parquet once."""

from __future__ import annotations

import click

from orchestrator.cli.common import friendly_errors
from orchestrator.errors import SpecError


@click.group()
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

    from trainers.conv import IMAGE_SIZES
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
    click.echo(f"start a sweep on it:  gansweep init --dataset parquet:{summary.path}   "
               f"(then gansweep launch the spec it writes)")
    if size not in IMAGE_SIZES:
        click.echo(f"note: the built-in dcgan trains on {', '.join(map(str, IMAGE_SIZES))} px "
                   f"squares; {size} px suits a trainer of your own only", err=True)
