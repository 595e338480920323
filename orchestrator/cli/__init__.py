"""The `gansweep` command (app.py: the group and the process's exit; one module per command
group). The entry point `orchestrator.cli:run` and `python -m orchestrator.cli` are public."""

from orchestrator.cli.app import main, run

__all__ = ["main", "run"]
