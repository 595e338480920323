"""`gansweep sample MODEL_URI -n N -o FILE`: samples of a promoted (or any logged) generator."""

from __future__ import annotations

import click

from orchestrator.cli.common import friendly_errors, tracking_option


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
    from orchestrator.cli.common import tracking_uri_of
    from orchestrator.registry.sample import check_request, sample_to_file

    check_request(n, output, seed)  # a typo fails before any store is opened
    done = sample_to_file(model_uri, n, output, seed, tracking_uri_of(tracking_uri))
    shape = ", ".join(["n", *map(str, done.shape[1:])])
    click.echo(f"wrote {done.path}: {done.what} of {done.shape[0]} samples ({shape}) from "
               f"{model_uri}, seed {seed}")
