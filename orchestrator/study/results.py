"""A sweep read back from its study: the trial table, the best trial or Pareto front, the
objectives. For `status` and `best`; Optuna only (no MLflow, no Ray, no torch), so the
read-only commands start fast. Which trial is best is orchestrator/study/ranking.py's to say.
"""

from __future__ import annotations

from typing import Any

import optuna

from orchestrator.errors import SpecError
from orchestrator.layout import (
    ATTEMPT_ATTR,
    LAUNCH_ATTR,
    PBT_LINEAGE_ATTR,
    PBT_PARAMS_ATTR,
    PBT_ROUND_ATTR,
    PBT_SCHEDULE_ATTR,
    PRUNED_REASON_ATTR,
    REASON_ATTR,
    RUN_ATTR,
    SEED_ATTR,
)
from orchestrator.study.ranking import best_trials as ranked_best
from orchestrator.study.studies import metric_names

# a member's line back through its donors: [(member, None), (donor, step it was copied), ...]
Line = list[tuple[int, int | None]]


def _values(t: optuna.trial.FrozenTrial, names: list[str]) -> dict[str, float] | None:
    return None if t.values is None else dict(zip(names, t.values, strict=True))


def params_now(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The params a trial trains (trained) with: a PBT member's last ones (its Optuna params
    are its first), else its params."""
    current = t.user_attrs.get(PBT_PARAMS_ATTR)
    return t.params if not current else {k: current.get(k, v) for k, v in t.params.items()}


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One plain dict per trial, for tables and `--json`."""
    names, rows = metric_names(study), []
    for t in study.get_trials(deepcopy=False):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        values = _values(t, names)
        rows.append({
            "number": t.number, "state": t.state.name,
            "value": values[names[0]] if values and len(names) == 1 else None, "values": values,
            "params": params_now(t), "seed": t.user_attrs.get(SEED_ATTR),
            "run_id": t.user_attrs.get(RUN_ATTR),
            "reason": t.user_attrs.get(REASON_ATTR) or t.user_attrs.get(PRUNED_REASON_ATTR),
            "attempt": t.user_attrs.get(ATTEMPT_ATTR, 1),
            "last_step": max(t.intermediate_values, default=None),
            "duration_s": duration,
            # a PBT member's exploits, [[step, donor trial], ...]; None: not a member
            "exploits": [list(e) for e in exploits(t)] if is_member(t) else None})
    return rows


def best_trials(study: optuna.Study) -> list[dict[str, Any]]:
    """The best trial, or with several objectives the Pareto front, as plain dicts."""
    names = metric_names(study)
    return [{"number": t.number, "values": _values(t, names), "params": params_now(t),
             "seed": t.user_attrs.get(SEED_ATTR), "run_id": t.user_attrs.get(RUN_ATTR),
             **({"schedule": t.user_attrs[PBT_SCHEDULE_ATTR]}
                if t.user_attrs.get(PBT_SCHEDULE_ATTR) else {})}
            for t in ranked_best(study)]


def objectives(study: optuna.Study) -> list[dict[str, str]]:
    return [{"metric": m, "direction": d.name.lower()}
            for m, d in zip(metric_names(study), study.directions, strict=True)]


def sweep_summaries(storage: str) -> list[dict[str, Any]]:
    """One dict per study in `storage`, by name: trials, first metric, best value (one
    objective only)."""
    from orchestrator.study.studies import open_storage

    opened, found = open_storage(storage), []
    for name in sorted(optuna.get_all_study_names(opened)):
        study = optuna.load_study(study_name=name, storage=opened)
        try:
            best = ranked_best(study) if len(study.directions) == 1 else []
        except SpecError:  # no completed trial yet
            best = []
        found.append({"name": name, "trials": len(study.get_trials(deepcopy=False)),
                      "metric": metric_names(study)[0],
                      "best": best[0].value if best else None})
    return found


# -- a PBT sweep's population (orchestrator/driver/population.py) -------------------------------
def is_member(t: optuna.trial.FrozenTrial) -> bool:
    """Whether trial `t` is a member of a PBT population (its driver marks it as it asks it)."""
    return PBT_PARAMS_ATTR in t.user_attrs or PBT_LINEAGE_ATTR in t.user_attrs


def exploits(t: optuna.trial.FrozenTrial) -> list[tuple[int, int]]:
    """A member's exploits, oldest first: (the step, the donor trial whose state it copied)."""
    return sorted((int(step), int(donor)) for step, donor in t.user_attrs.get(PBT_LINEAGE_ATTR,
                                                                                []))


def member_line(trials: list[optuna.trial.FrozenTrial], number: int) -> Line:
    """Where member `number`'s final state came from, newest first: itself, then the donor of
    its last exploit and that step, then that donor's last exploit before that step, and so on
    (a donor's state at step s holds its own exploits before s only)."""
    by_number = {t.number: t for t in trials}
    line: Line = [(number, None)]
    current, before = number, None
    while current in by_number:
        earlier = [e for e in exploits(by_number[current]) if before is None or e[0] < before]
        if not earlier:
            break
        before, current = earlier[-1]
        line.append((current, before))
    return line


def line_text(line: Line) -> str:
    """A member's line as the page and `status` write it: trial 3 <- 5 at 1000 <- 2 at 500."""
    (member, _), *donors = line
    return f"trial {member}" + "".join(f" <- {donor} at {step}" for donor, step in donors) + \
        ("" if donors else ", never copied")


def recorded_scheduler(study: optuna.Study) -> dict[str, Any]:
    """The `scheduler` section of the spec the sweep was last launched with (the launch record
    keeps its text), {} without one, or a record this version cannot read. Read as YAML, not
    parsed as a spec: that would import the trainer (torch), and `status` answers at once."""
    from orchestrator.spec.sweep import load_yaml

    text = (study.user_attrs.get(LAUNCH_ATTR) or {}).get("spec")
    try:
        raw = load_yaml(text) if text else {}
    except Exception:  # a record this version cannot read
        raw = {}
    found = raw.get("scheduler") if isinstance(raw, dict) else None
    return found if isinstance(found, dict) else {}


def pbt_summary(study: optuna.Study) -> dict[str, Any] | None:
    """A PBT sweep's population: its size, the steps between rounds (None when the launch
    record does not say), the step of the last round applied (0: none yet) and its exploits;
    None for a sweep that is not one."""
    members = [t for t in study.get_trials(deepcopy=False) if is_member(t)]
    scheduler = recorded_scheduler(study)
    if not members and str(scheduler.get("name", "")).lower() != "pbt":
        return None
    population, interval = scheduler.get("population"), scheduler.get("interval")
    return {"population": population if isinstance(population, int) else len(members),
            "interval": interval if isinstance(interval, int) else None,
            "last_round": int(study.user_attrs.get(PBT_ROUND_ATTR, 0)),
            "exploits": sum(len(exploits(t)) for t in members)}


def pbt_line(summary: dict[str, Any]) -> str:
    """`status`'s line: pbt: population 8, round every 500 steps, last round at step 1500, 6
    exploits."""
    parts = [f"population {summary['population']}"]
    if summary["interval"]:  # None: a launch record that does not say
        parts.append(f"round every {summary['interval']} steps")
    parts.append(f"last round at step {summary['last_round']}" if summary["last_round"]
                 else "no round yet")
    return "pbt: " + ", ".join([*parts, counted(summary["exploits"], "exploit")])


def counted(n: int, noun: str) -> str:
    """1 exploit, 6 exploits."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
