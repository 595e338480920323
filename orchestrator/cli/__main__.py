"""`python -m orchestrator.cli ARGS`: the `gansweep` command (a Ray Job's driver runs it so)."""

from orchestrator.cli.app import run

run()
