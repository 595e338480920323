"""`gansweep status` and `best`: a sweep read back from its study, with Optuna only (no Ray,
MLflow or torch), so that they answer at once."""

from __future__ import annotations

import click

from orchestrator.cli.common import friendly_errors, load_sweep_study, storage_option, to_json


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--wide", is_flag=True, help="Every param and reason in full, and the MLflow "
              "run id (the table is cut to the terminal's width otherwise).")
@storage_option
@friendly_errors
def status(name, as_json, wide, storage) -> None:
    """Every trial of sweep NAME, best first: state, objective, step, attempt, params (and a
    PBT member's exploits, with a line on its population); without NAME, the sweeps in the
    study storage (the project's, when run inside one)."""
    from orchestrator.cli.progress import trials_table
    from orchestrator.study.results import (
        best_trials,
        objectives,
        pbt_line,
        pbt_summary,
        trial_rows,
    )

    if name is None:
        return _sweeps(storage, as_json)
    study = load_sweep_study(name, storage)
    rows, goals, pbt = trial_rows(study), objectives(study), pbt_summary(study)
    if as_json:  # `direction` for one objective only: Optuna has none for several
        single = {"direction": goals[0]["direction"]} if len(goals) == 1 else {}
        expected = None if pbt else _expected_json(study, goals)
        click.echo(to_json({"sweep": name, **single, "directions": [
            g["direction"] for g in goals], "objectives": goals,
            **({"pbt": pbt} if pbt else {}),
            **({"expected_best": expected} if expected else {}), "trials": rows}))
    else:
        front = best_trials(study) if len(goals) == 1 else []
        trials_table(name, rows, goals, front[0]["number"] if front else None, wide)
        if pbt:
            click.echo(pbt_line(pbt))
        else:  # a PBT sweep's members copy each other: no i.i.d. draws to extrapolate
            _expected_best(study, goals)


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@storage_option
@friendly_errors
def best(name, as_json, storage) -> None:
    """The best trial of sweep NAME (value, params, MLflow run id); with several objectives,
    its Pareto front."""
    from orchestrator.cli.progress import pareto_table
    from orchestrator.study.results import best_trials, objectives
    from orchestrator.tracking.ui import run_urls

    study = load_sweep_study(name, storage)
    front, goals = best_trials(study), objectives(study)
    # on its tracking server, else at `gansweep ui`'s address
    urls, note = run_urls(study, [t["run_id"] for t in front if t["run_id"]])
    for t in front:
        t["run_url"] = urls.get(t["run_id"])
    if len(goals) > 1:
        if as_json:
            click.echo(to_json({"sweep": name, "objectives": goals, "pareto_front": front}))
        else:
            pareto_table(name, goals, front)
            for t in (t for t in front if t["run_url"]):
                click.echo(f"  trial {t['number']}: {t['run_url']}")
            if note:
                click.echo(f"  ({note})")
        return
    found, goal = front[0], goals[0]
    value = found["values"][goal["metric"]]
    if as_json:
        click.echo(to_json({"sweep": name, "number": found["number"], "value": value,
                          "metric": goal["metric"], "direction": goal["direction"],
                          "params": found["params"], "seed": found["seed"],
                          "run_id": found["run_id"], "run_url": found["run_url"],
                          **({"schedule": found["schedule"]} if "schedule" in found else {})}))
        return
    click.echo(f"best trial of {name}: #{found['number']}  {goal['metric']}={value:.6g} "
               f"({goal['direction']})")
    click.echo(f"  mlflow run: {found['run_id']}   seed: {found['seed']}")
    if found["run_url"]:
        click.echo(f"  open it: {found['run_url']}" + (f"  ({note})" if note else ""))
    for key, param in sorted(found["params"].items()):
        click.echo(f"  {key} = {param}")
    if "schedule" in found:  # a PBT member: where each change of its state's params began
        click.echo(f"  schedule ({len(found['schedule'])} segments; `--json` has them): from "
                   + ", ".join(f"step {step}" for step, _ in found["schedule"]))


def _expected(study, goals: list[dict[str, str]]):
    """Would more trials help? The estimate, for one objective and enough complete trials."""
    from orchestrator.study.expected import shown

    return shown(study.get_trials(deepcopy=False), goals[0]["metric"],
                 goals[0]["direction"] == "maximize") if len(goals) == 1 else None


def _expected_best(study, goals: list[dict[str, str]]) -> None:
    """The estimate as the status line, with what it assumes."""
    from orchestrator.study.expected import ASSUMES, summary_line

    found = _expected(study, goals)
    if found is not None:
        click.echo(f"{summary_line(found)}\n  ({ASSUMES})")


def _expected_json(study, goals: list[dict[str, str]]) -> dict | None:
    """The same estimate for `--json`: at 2x the complete trials."""
    from orchestrator.study.expected import ASSUMES

    found = _expected(study, goals)
    if found is None:
        return None
    mean, low, high = found.at_double()
    return {"complete_trials": found.observed, "best_now": found.best,
            "trials": 2 * found.observed, "mean": mean, "low": low, "high": high,
            "assumes": ASSUMES}


def _sweeps(storage: str | None, as_json: bool) -> None:
    """The sweeps of the study storage: name, trials, best value."""
    from orchestrator.stores.redact import redact_uri
    from orchestrator.stores.uris import absolute_storage, local_file, resolve_storage
    from orchestrator.study.results import sweep_summaries

    url = absolute_storage(resolve_storage(storage))
    file = local_file(url)
    found = [] if file is not None and not file.exists() else sweep_summaries(url)
    if as_json:
        click.echo(to_json({"storage": redact_uri(url), "sweeps": found}))
        return
    if not found:
        click.echo(f"no sweep in {redact_uri(url)} yet: gansweep launch SPEC starts one")
        return
    click.echo(f"sweeps in {redact_uri(url)}:")
    for sweep in found:
        best = "-" if sweep["best"] is None else f"{sweep['best']:.5g}"
        click.echo(f"  {sweep['name']:<24} {sweep['trials']:>4} trials  best {sweep['metric']}"
                   f"={best}")
    click.echo("details: gansweep status NAME")
