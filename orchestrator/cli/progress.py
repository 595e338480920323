"""What the user sees in the terminal: the live progress line and the trial table (rich)."""

from __future__ import annotations

import time
from typing import Any

from rich import box
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
        self.phase = "search"

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.task is not None:  # never started: print nothing, not even a blank line
            self.progress.stop()

    def update(self, stats: SweepStats) -> None:
        if self.task is None:  # shown once the sweep really starts, not while stores open
            self.progress.start()
        if self.task is None or stats.phase != self.phase:  # a bar per phase
            name = self.spec.name + ("" if stats.phase == "search" else f" {stats.phase}")
            self.task = self.progress.add_task("", total=stats.budget, name=name)
            self.phase = stats.phase
        finished = stats.done + stats.pruned + stats.failed
        self.progress.update(self.task, completed=finished, description=self.describe(stats))

    def describe(self, stats: SweepStats) -> str:
        best = "-" if stats.best is None else f"{stats.best:.4g} (#{stats.best_trial})"
        resumed = f"  resumed {stats.resumed}" if stats.resumed else ""
        resumed += f"  exploits {stats.exploits}" if stats.exploits else ""  # PBT
        why = ", ".join(f"{kind} {n}" for kind, n in stats.pruned_why.most_common())
        pruned = f"{stats.pruned} ({why})" if why else f"{stats.pruned}"
        return (f"done {stats.done}  running {stats.running}  pruned {pruned}  "
                f"failed {stats.failed}{resumed}  best {self.spec.objective.metric}={best}")

    def notice(self, message: str) -> None:
        self.progress.console.print(f"[yellow]{message}[/yellow]")

    def summary(self, stats: SweepStats) -> str:
        took = time.time() - stats.started_at
        return f"{self.spec.name}: {self.describe(stats)}  in {took:.0f}s"


# What a good value is, for the objectives of the shipped specs and the built-in metrics
GOOD_VALUES = {
    "eval/score": "PacGAN score: modes x high-quality share x exp(-reverse KL); about 0.989 for "
                  "points spread as the data's, up to 1 for points tighter than the data's "
                  "(an EMA generator), which the score does not tell apart",
    "eval/reverse_kl": "KL of the data's modes from the generated ones; 0 is perfect",
    "eval/modes": "modes covered (8 on ring8, 25 on grid25)",
    "eval/fd": "Frechet distance in the dataset's classifier features; lower is better, and "
               "the data's own floor is floor/fd on the parent run (digits: about 57)",
    "eval/kid": "kernel inception distance (unbiased, can be < 0); the data's own floor is "
                "floor/kid on the parent run",
}
STATE_ORDER = {"COMPLETE": 0, "RUNNING": 1, "PRUNED": 2, "WAITING": 3, "FAIL": 4}


def trials_table(name: str, rows: list[dict[str, Any]], goals: list[dict[str, str]],
                 best: int | None, wide: bool = False, console: Console | None = None) -> None:
    """One line per trial, best first: complete trials by the (first) objective, then those
    running, pruned and failed; `best` starred; a PBT member's exploits and its last donor
    (`2 <-5`). In 80 columns the params and reasons are cut (`wide`: all of them, and the
    MLflow run id)."""
    maximize = bool(goals) and goals[0]["direction"] == "maximize"
    first = goals[0]["metric"] if goals else None

    def key(row):
        value = (row["values"] or {}).get(first)
        order = STATE_ORDER.get(row["state"], 5)
        if value is None or order > 1:
            return (order, 0.0, row["number"])
        return (order, -value if maximize else value, row["number"])

    title = f"sweep {name}: {len(rows)} trials"
    if best is not None and goals:
        found = next(r for r in rows if r["number"] == best)
        title += f", best #{best} {first}={found['values'][first]:.5g} ({goals[0]['direction']})"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    pbt = any(r.get("exploits") is not None for r in rows)  # a PBT sweep's members
    columns = [("#", 3), ("state", 8), ("value", 7), ("step", 4), ("try", 3)]
    for column, width in columns + ([("exploits", 8)] if pbt else []):
        table.add_column(column, justify="left" if column in ("state", "exploits") else "right",
                         no_wrap=True, min_width=width, overflow="ellipsis",
                         max_width=None if wide or column != "state" else 20)
    console = console or (Console(width=100_000) if wide else Console())
    room = None if wide else max(12, console.width - 4 - sum(  # a column: its cells and 3
        max(width, *(len(cell) for cell in cells)) + 3 for width, cells in (
            (3, [f"*{r['number']}" for r in rows]), (8, [_state(r)[:20] for r in rows]),
            (7, [_value(r) for r in rows]), (4, [str(r["last_step"]) for r in rows]),
            (3, [str(r.get("attempt", 1)) for r in rows]),
            *([(8, [_exploits(r) for r in rows])] if pbt else []))))
    table.add_column("params", no_wrap=True, overflow="ellipsis", max_width=room)
    if wide:
        table.add_column("mlflow run", no_wrap=True)
    for row in sorted(rows, key=key):
        params = " ".join(f"{k}={_short(v)}" for k, v in sorted(row["params"].items()))
        if room is not None and len(params) > room:
            params = params[:room - 1] + "…"
        cells = [("*" if row["number"] == best else "") + str(row["number"]), _state(row),
                 _value(row),
                 str(row["last_step"] if row["last_step"] is not None else ""),
                 str(row.get("attempt", 1)), *([_exploits(row)] if pbt else []), params]
        table.add_row(*cells, *([row["run_id"] or ""] if wide else []))
    console.print(table)
    hint = GOOD_VALUES.get(first or "")
    if hint:
        console.print(f"{first}: {hint}", highlight=False)


def _state(row: dict[str, Any]) -> str:
    return row["state"] + (f": {row['reason']}" if row["reason"] else "")


def _exploits(row: dict[str, Any]) -> str:
    """A PBT member's exploits and the donor of its last: `2 <-5`; `0`; "" for no member."""
    found = row.get("exploits")
    if found is None:
        return ""
    return f"{len(found)} <-{found[-1][1]}" if found else "0"


def _value(row: dict[str, Any]) -> str:
    return " / ".join(f"{v:.5g}" for v in (row["values"] or {}).values())


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
