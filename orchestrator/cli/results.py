"""`gansweep status` and `best`: a sweep read back from its study, with Optuna only (no Ray,
MLflow or torch), so that they answer at once."""

from __future__ import annotations

import click

from orchestrator.cli.common import friendly_errors, load_sweep_study, storage_option, to_json


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@storage_option
@friendly_errors
def status(name, as_json, storage) -> None:
    """Every trial of sweep NAME: state, objective, params, MLflow run."""
    from orchestrator.cli.progress import trials_table
    from orchestrator.study.results import objectives, trial_rows

    study = load_sweep_study(name, storage)
    rows, goals = trial_rows(study), objectives(study)
    if as_json:  # `direction` for one objective only: Optuna has none for several
        single = {"direction": goals[0]["direction"]} if len(goals) == 1 else {}
        click.echo(to_json({"sweep": name, **single, "directions": [
            g["direction"] for g in goals], "objectives": goals, "trials": rows}))
    else:
        trials_table(name, rows)


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
    from orchestrator.tracking.ui import run_url, runs_base

    study = load_sweep_study(name, storage)
    front, goals = best_trials(study), objectives(study)
    base, note = runs_base(study)  # its tracking server's, else `gansweep ui`'s address
    for t in front:
        t["run_url"] = run_url(base, t["run_id"]) if t["run_id"] else None
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
                          "run_id": found["run_id"], "run_url": found["run_url"]}))
        return
    click.echo(f"best trial of {name}: #{found['number']}  {goal['metric']}={value:.6g} "
               f"({goal['direction']})")
    click.echo(f"  mlflow run: {found['run_id']}   seed: {found['seed']}")
    if found["run_url"]:
        click.echo(f"  open it: {found['run_url']}" + (f"  ({note})" if note else ""))
    for key, param in sorted(found["params"].items()):
        click.echo(f"  {key} = {param}")
