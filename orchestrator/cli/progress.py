"""What the user sees in the terminal: the live progress line and the trial table (rich)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.driver.stats import SweepStats
from orchestrator.spec.sweep import SweepSpec


class SweepProgress:
    """A rich progress bar over the trial budget: done / running / pruned / failed, best so far."""

    def __init__(self, spec: SweepSpec, console: Console | None = None):
        self.spec = spec
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("[bold]{task.fields[name]}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.description}"),
                                 TimeElapsedColumn(), console=self.console, transient=False)
        self.task = None

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.task is not None:  # never started: print nothing, not even a blank line
            self.progress.stop()

    def update(self, stats: SweepStats) -> None:
        if self.task is None:  # shown once the sweep really starts, not while stores open
            self.progress.start()
            self.task = self.progress.add_task("", total=stats.budget, name=self.spec.name)
        finished = stats.done + stats.pruned + stats.failed
        self.progress.update(self.task, completed=finished, description=self.describe(stats))

    def describe(self, stats: SweepStats) -> str:
        best = "-" if stats.best is None else f"{stats.best:.4g} (#{stats.best_trial})"
        resumed = f"  resumed {stats.resumed}" if stats.resumed else ""
        return (f"done {stats.done}  running {stats.running}  pruned {stats.pruned}  "
                f"failed {stats.failed}{resumed}  best {self.spec.objective.metric}={best}")

    def notice(self, message: str) -> None:
        self.progress.console.print(f"[yellow]{message}[/yellow]")

    def summary(self, stats: SweepStats) -> str:
        took = time.time() - stats.started_at
        return f"{self.spec.name}: {self.describe(stats)}  in {took:.0f}s"


def trials_table(name: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"sweep {name}")
    for column in ("trial", "state", "value", "step", "params", "mlflow run"):
        table.add_column(column)
    for row in rows:
        values = row["values"] or {}
        value = " / ".join(f"{v:.5g}" for v in values.values())
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(row["params"].items()))
        state = row["state"] + (f" ({row['reason']})" if row["reason"] else "")
        if row.get("attempt", 1) > 1:
            state += f" [attempt {row['attempt']}]"
        table.add_row(str(row["number"]), state, value, str(row["last_step"] or ""), params,
                      row["run_id"] or "")
    Console().print(table)


def pareto_table(name: str, goals: list[dict[str, str]], front: list[dict[str, Any]]) -> None:
    table = Table(title=f"sweep {name}: Pareto front ({len(front)} trials)")
    table.add_column("trial")
    for goal in goals:
        table.add_column(f"{goal['metric']} ({goal['direction'][:3]})")
    table.add_column("params")
    table.add_column("mlflow run")
    for t in front:
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(t["params"].items()))
        table.add_row(str(t["number"]), *(f"{t['values'][g['metric']]:.5g}" for g in goals),
                      params, t["run_id"] or "")
    Console().print(table)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
