"""`gansweep check-trainer`: your trainer against the trainer contract, as a sweep drives it."""

from __future__ import annotations

import sys

import click

from orchestrator.cli.common import friendly_errors
from orchestrator.errors import SpecError


@click.command("check-trainer")
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
    from orchestrator.driver.check_trainer import check_trainer_table

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
