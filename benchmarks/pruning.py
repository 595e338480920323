"""Pruning on grid25: the same TPE sweep (trials, steps, seed) without a pruner and with Hyperband.

The space and the pruner are search_spaces/grid25.yaml's. Hyperband's resource is training
steps: max_resource = steps; min_resource 1,500, reduction_factor 6 and bootstrap_count 5 (with
4,000 steps: one bracket, one rung at 1,500 steps; the first 5 trials to reach it stop there, and
after them a trial runs on only if it is in the best sixth there). Per arm: generator steps
trained (the compute), trials pruned, the best final eval/reverse_kl among COMPLETE trials, and the
best-score trial's score, modes and high-quality fraction; then compute(no pruner) /
compute(hyperband). The target: >= 2x less compute for a best score that is equal or better:
`target_met` asks for not lower at all; `target_met_within_noise` for not lower by more than the
score's evaluation noise (its standard deviation over 2,500 points for a generator perfect but
for chance, ~0.0013 on grid25: two bests closer than that cannot be told apart by one eval).

    RAY_AUTH_MODE=disabled .venv/bin/python benchmarks/pruning.py [--trials 24] [--steps 4000]
        [--eval-every 500] [--min-resource 1500] [--reduction-factor 6] [--bootstrap-count 5]
        [--startup-trials 0] [--prune-metric eval/coverage] [--seed 0] [--cpus 2]
        [--arms none hyperband]

GAN-health pruning (`--compare health`): health off against on (no Optuna pruner in either, so
the health rules alone decide), on grid25 and on digits (search_spaces/digits-dcgan.yaml's
space), each sweep ending in its confirm phase (the top `--confirm-top` configs retrained on
`--confirm-seeds` fresh seeds). Per arm: steps trained in the search (the compute), wall time
(search and confirm), the best value found, the confirmed best (the best config's mean and
95% bound over its fresh seeds) and the prune reasons counted. Then the health-off sweep is
replayed through the rules (orchestrator/driver/health.py, pure: the same trials, the same
evaluations, the sweep's best as it stood at each evaluation): the steps they would have saved
and whether they would have pruned that sweep's best trial. Targets: >= 30% fewer steps with a
confirmed best as good, and the off arm's best never pruned.

    RAY_AUTH_MODE=disabled .venv/bin/python benchmarks/pruning.py --compare health
        [--datasets grid25 digits] [--seeds 0 1 2] [--trials 24] [--steps 4000]
        [--eval-every 500] [--confirm-top 2] [--confirm-seeds 3] [--space wide]
        [--health-arms off on] [--sampler random]

`--space wide` sweeps benchmarks/spaces/{grid25,digits}-wide.yaml instead: untuned ranges (as a
user's first sweep), which hold trials that fail. `--health-arms off` then `--health-arms on`
runs the arms apart; `--merge OFF.json ON.json` prints their table; `--replay OFF.json --health
YAML` runs other rules over the off sweeps' recorded evaluations, with no sweep. `--sampler
random` draws the trials at random (TPE by default; a space's `enqueue` points still come first),
so failing regions stay in the sweep.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections import Counter
from functools import partial
from pathlib import Path

import mlflow
import optuna
import ray
import yaml
from _common import DIGITS, GRID25, grid25_spec, hyperband, run_sweep
from optuna.trial import TrialState

from orchestrator.driver.health import (
    D_FAKE_ACC,
    D_REAL_ACC,
    DIVERSITY,
    G_LOSS,
    History,
    Point,
    point,
    references,
    verdict,
)
from orchestrator.layout import PRUNED_REASON_ATTR, RUN_ATTR, reason_kind
from orchestrator.spec.health import HealthSpec, parse_health
from trainers.mixtures import grid25, score_noise
from trainers.mlp_gan import N_EVAL

WIDE = Path(__file__).resolve().parent / "spaces"  # the untuned spaces of --space wide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--steps", type=int, default=4000, help="generator steps per trial")
    parser.add_argument("--eval-every", type=int, default=500, help="report cadence")
    parser.add_argument("--min-resource", type=int, default=None,
                        help="Hyperband's min_resource in steps (default: grid25.yaml's)")
    parser.add_argument("--reduction-factor", type=int, default=None,
                        help="Hyperband's reduction factor (default: grid25.yaml's)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (trial seeds follow)")
    parser.add_argument("--cpus", type=int, default=2, help="Ray CPUs: one trial per CPU")
    parser.add_argument("--bootstrap-count", type=int, default=None,
                        help="Hyperband: trials a rung prunes before it promotes any "
                             "(default: grid25.yaml's)")
    parser.add_argument("--startup-trials", type=int, default=None,
                        help="Hyperband: trials that complete before any is pruned "
                             "(default: grid25.yaml's)")
    parser.add_argument("--prune-metric", default=None,
                        help="Hyperband: the metric it prunes on, e.g. eval/coverage; none: the "
                             "objective (default: grid25.yaml's)")
    parser.add_argument("--arms", nargs="+", choices=["none", "hyperband"],
                        default=["none", "hyperband"],
                        help="one arm alone gives its per-trial curves, no ratio")
    parser.add_argument("--compare", choices=["hyperband", "health"], default="hyperband")
    parser.add_argument("--datasets", nargs="+", choices=["grid25", "digits"],
                        default=["grid25", "digits"], help="--compare health: which spaces")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="--compare health: sampler seeds, one sweep pair each")
    parser.add_argument("--replay", metavar="FILE",
                        help="no sweep: replay the health-off histories in FILE (the JSON "
                             "`--compare health` printed) through the rules of --health")
    parser.add_argument("--health", default="true",
                        help="--replay: the spec's health section as YAML, e.g. "
                             "'{stagnation: {patience: 3}}'")
    parser.add_argument("--space", choices=["shipped", "wide"], default="shipped",
                        help="--compare health: the shipped (tuned) spaces, or the wide ones of "
                             "benchmarks/spaces/ (a user's first sweep, with failures in it)")
    parser.add_argument("--sampler", choices=["tpe", "random"], default="tpe",
                        help="who draws the trials; with --compare health, random keeps "
                             "drawing where trials fail, as a random sweep (W&B's, Ray Tune's "
                             "default) does all along")
    parser.add_argument("--health-arms", nargs="+", choices=["off", "on"], default=["off", "on"],
                        help="--compare health: which arms to run (off alone: its replay only)")
    parser.add_argument("--merge", nargs=2, metavar=("OFF", "ON"),
                        help="no sweep: the table of an off run and an on run made apart "
                             "(--health-arms off, then on), the off sweeps replayed through "
                             "today's default rules")
    parser.add_argument("--confirm-top", type=int, default=2)
    parser.add_argument("--confirm-seeds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if args.replay:
        return replay_file(args.replay, args.health)
    if args.merge:
        return merge_files(*args.merge)
    if args.compare == "health":
        return compare_health(args)
    pruner = hyperband(args.min_resource, args.reduction_factor, args.bootstrap_count,
                       args.startup_trials, args.prune_metric)
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
    arms = {}
    try:
        for name, arm_pruner in (("none", "none"), ("hyperband", pruner)):
            if name not in args.arms:
                continue
            spec = grid25_spec(f"grid25-pruning-{name}", args.trials, args.steps,
                               args.eval_every, args.sampler, args.seed, arm_pruner)  # no health
            arms[name] = run_sweep(spec).summary()
    finally:
        ray.shutdown()
    if len(arms) < 2:
        print(json.dumps({"dataset": "grid25", "seed": args.seed, "cpus": args.cpus,
                          "arms": arms}, indent=2))
        return
    none, hb = arms["none"], arms["hyperband"]
    ratio = none["steps_trained"] / hb["steps_trained"] if hb["steps_trained"] else None
    score_ok = _not_worse(hb["best_score"], none["best_score"], higher_is_better=True)
    kl_ok = _not_worse(hb["best_reverse_kl_complete"], none["best_reverse_kl_complete"],
                       higher_is_better=False)
    noise = score_noise(grid25(), N_EVAL)
    reference = None if none["best_score"] is None else none["best_score"] - noise
    close = _not_worse(hb["best_score"], reference, higher_is_better=True)
    result = {"dataset": "grid25", "seed": args.seed, "cpus": args.cpus, "arms": arms,
              "compute_ratio": None if ratio is None else round(ratio, 3),
              "wall_ratio": round(none["wall_s"] / hb["wall_s"], 3) if hb["wall_s"] else None,
              "hyperband_best_score_not_worse": score_ok,
              "hyperband_best_reverse_kl_not_worse": kl_ok,
              "score_noise_sd": round(noise, 5),
              "hyperband_best_score_within_noise": close,
              "target_met": bool(ratio and ratio >= 2 and score_ok),
              "target_met_within_noise": bool(ratio and ratio >= 2 and close)}
    print(json.dumps(result, indent=2))
    _table(result)


def _not_worse(value, reference, higher_is_better: bool) -> bool:
    if value is None or reference is None:
        return value is not None
    return value >= reference if higher_is_better else value <= reference


def _table(result: dict) -> None:
    header = (f"{'pruner':>10} {'steps':>8} {'done':>5} {'pruned':>6} {'wall_s':>7} "
              f"{'best_kl':>8} {'score':>7} {'modes':>5} {'hq':>6} {'kl':>7}")
    print(header, file=sys.stderr)
    for name, a in result["arms"].items():
        print(f"{name:>10} {a['steps_trained']:>8} {a['completed']:>5} {a['pruned']:>6} "
              f"{a['wall_s']:>7} {_fmt(a['best_reverse_kl_complete']):>8} "
              f"{_fmt(a['best_score']):>7} {_fmt(a['best_modes']):>5} "
              f"{_fmt(a['best_high_quality']):>6} {_fmt(a['best_reverse_kl']):>7}",
              file=sys.stderr)
    print(f"compute none/hyperband = {result['compute_ratio']}x "
          f"(wall {result['wall_ratio']}x); target (>= 2x, best score not worse) met: "
          f"{result['target_met']}; within the score's noise ({result['score_noise_sd']}): "
          f"{result['target_met_within_noise']}", file=sys.stderr)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, int) or float(value).is_integer() else f"{value:.3f}"


# -- GAN-health pruning: off against on, and the off sweep replayed through the rules ----------
def compare_health(args) -> None:
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
    rows = []
    try:
        for dataset in args.datasets:
            source = (GRID25 if dataset == "grid25" else DIGITS) if args.space == "shipped" \
                else WIDE / f"{dataset}-wide.yaml"
            for seed in args.seeds:
                row = {"dataset": dataset, "seed": seed, "space": args.space,
                       "sampler": args.sampler}
                for arm, health in (("off", False), ("on", True)):
                    if arm not in args.health_arms:
                        continue
                    spec = grid25_spec(f"{dataset}-health-{arm}-{seed}", args.trials,
                                       args.steps, args.eval_every, args.sampler, seed,
                                       "none",
                                       health, {"top": args.confirm_top,
                                                "seeds": args.confirm_seeds}, source)
                    result = run_sweep(spec, analyse=partial(_analyse, replay=not health))
                    row[arm] = {"wall_s": round(result.wall_s, 1), **result.extra}
                if "off" not in row or "on" not in row:
                    rows.append(row)
                    continue
                off, on = row["off"], row["on"]
                row.update(_compared(off, on, spec.objective.direction == "maximize"))
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("off", "on")}),
                      file=sys.stderr, flush=True)
    finally:
        ray.shutdown()
    print(json.dumps({"cpus": args.cpus, "trials": args.trials, "steps": args.steps,
                      "rows": rows}, indent=2))
    _health_table(rows)


def _analyse(study, settings, replay: bool) -> dict:
    """An arm's figures, read from its stores: steps trained in the search, its best, its
    confirmed best, the prune reasons; with `replay`, what the health rules would have done."""
    from orchestrator.study.ranking import confirm_table
    from orchestrator.study.studies import confirm_name

    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = study.get_trials(deepcopy=False)
    steps = sum(_trained(trials))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = (max if maximize else min)(complete, key=lambda t: t.value, default=None)
    reasons = Counter(reason_kind(t.user_attrs.get(PRUNED_REASON_ATTR))
                      for t in trials if t.state == TrialState.PRUNED)
    out = {"steps": steps, "complete": len(complete), "pruned": dict(reasons),
           "best": None if best is None else round(best.value, 4),
           "best_trial": None if best is None else best.number,
           "confirmed_mean": None, "confirmed_bound": None, "confirmed_trial": None}
    try:
        confirm = optuna.load_study(study_name=confirm_name(study.study_name),
                                    storage=settings.storage)
        ranked = confirm_table(study, confirm, "last")
    except KeyError:
        ranked = []
    if ranked and ranked[0].mean is not None:
        out.update(confirmed_mean=round(ranked[0].mean, 4), confirmed_trial=ranked[0].trial,
                   confirmed_bound=None if ranked[0].bound is None else round(ranked[0].bound, 4))
    if replay:
        out["replay"] = replay_health(study, settings, maximize)
    return out


def replay_health(study, settings, maximize: bool) -> dict:
    """The health rules (defaults) run over a health-off sweep's own evaluations, in order:
    which trials they would have stopped, at which step, the steps that saves, and whether the
    sweep's best trial is among them. Returns the histories too, for `--replay FILE`."""
    recorded = histories(study, settings)
    return {**replay(recorded, HealthSpec()), "histories": recorded}


def histories(study, settings) -> dict:
    """What the rules read from each completed trial of a sweep, evaluation by evaluation, with
    when it was logged and when each trial completed (the sweep's best as it stood)."""
    client = mlflow.MlflowClient(settings.tracking_uri)
    all_trials = study.get_trials(deepcopy=False)
    objective = study.metric_names[0] if study.metric_names else None
    floors, out = None, []
    for t in (t for t in all_trials if t.state == TrialState.COMPLETE):
        run = client.get_run(t.user_attrs[RUN_ATTR])
        if floors is None:
            parent = client.get_run(run.data.tags["mlflow.parentRunId"]).data.metrics
            floors = references(parent)
        logged = {key: {m.step: (m.value, m.timestamp)
                        for m in client.get_metric_history(run.info.run_id, key)}
                  for key in (objective, *DIVERSITY, D_REAL_ACC, D_FAKE_ACC, G_LOSS)}
        points = []
        for step in sorted(logged[objective]):
            p = point(step, {k: logged[k][step][0] for k in (objective, *DIVERSITY)
                             if step in logged[k]},
                      {k: logged[k][step][0] for k in (D_REAL_ACC, D_FAKE_ACC, G_LOSS)
                       if step in logged[k]}, objective, floors)
            points.append({"at": logged[objective][step][1], **dataclasses.asdict(p)})
        out.append({"number": t.number, "value": t.value, "params": t.params,
                    "done_at": t.datetime_complete.timestamp() * 1000, "points": points})
    trained = _trained(all_trials)
    return {"maximize": study.direction == optuna.study.StudyDirection.MAXIMIZE,
            "steps": max(trained, default=0), "trials": out,
            "total_steps": sum(trained)}


def _trained(trials) -> list[int]:
    """Each trial's steps trained: its last report (0 for one that reported none)."""
    return [max(t.intermediate_values, default=0) for t in trials]


def replay(recorded: dict, rules: HealthSpec) -> dict:
    """The rules over recorded histories (pure): trials pruned, steps saved, the best's fate."""
    maximize, steps, trials = recorded["maximize"], recorded["steps"], recorded["trials"]
    pick = max if maximize else min
    pruned, saved = {}, 0
    for t in trials:
        folded = History()
        for p in t["points"]:
            fields = {k: v for k, v in p.items() if k != "at"}
            fields["diversity"] = tuple(tuple(d) for d in fields["diversity"])
            folded = folded.add(Point(**fields))
            before = [o["value"] for o in trials if o["done_at"] < p["at"]]
            why = verdict(folded, rules, steps, maximize, pick(before) if before else None)
            if why and p["step"] < steps:
                pruned[t["number"]] = f"step {p['step']}: {why[:90]}"
                saved += steps - p["step"]
                break
    best = pick(trials, key=lambda t: t["value"], default=None)
    total = recorded["total_steps"]
    return {"would_prune": pruned, "steps_saved": round(saved / total, 3) if total else None,
            "best_trial": None if best is None else best["number"],
            "best_pruned": best is not None and best["number"] in pruned,
            "oracle_saved": _oracle(recorded, best)}


def _oracle(recorded: dict, best: dict | None) -> float | None:
    """What knowing the future would save: every trial that ends far from the sweep's best
    (under half its score, maximizing; over twice its FD, minimizing) stopped at its first
    evaluation after a quarter of the budget, the earliest the rules' warm-ups allow."""
    if best is None or not recorded["total_steps"]:
        return None
    steps, top = recorded["steps"], best["value"]
    far = (lambda v: v < top / 2) if recorded["maximize"] else (lambda v: v > 2 * top)
    saved = sum(steps - min((p["step"] for p in t["points"] if p["step"] > steps / 4),
                            default=steps) for t in recorded["trials"] if far(t["value"]))
    return round(saved / recorded["total_steps"], 3)


def replay_file(path: str, health: str) -> None:
    """Other health settings over the histories a `--compare health` run recorded (no sweep)."""
    rules = parse_health(yaml.safe_load(health))
    rows = json.loads(Path(path).read_text())["rows"]
    out = [{"dataset": r["dataset"], "seed": r["seed"],
            **replay(r["off"]["replay"]["histories"], rules)} for r in rows if "off" in r]
    print(json.dumps({"health": health, "rows": out}, indent=2))
    for r in out:
        print(f"{r['dataset']:>7} seed {r['seed']}: {r['steps_saved']:.0%} of the steps saved, "
              f"{len(r['would_prune'])} pruned, the best (trial {r['best_trial']}) pruned: "
              f"{r['best_pruned']}; an oracle of failures: {r['oracle_saved']:.0%}",
              file=sys.stderr)


def _compared(off: dict, on: dict, maximize: bool) -> dict:
    """The on arm against the off arm: the share of steps it saved, and whether its confirmed
    best is as good."""
    return {"steps_saved": round(1 - on["steps"] / off["steps"], 3),
            "confirmed_not_worse": _not_worse(on["confirmed_mean"], off["confirmed_mean"],
                                              higher_is_better=maximize)}


def merge_files(off_path: str, on_path: str) -> None:
    """One table from arms run apart: rows paired by dataset, seed, space and sampler (arms of
    other sweeps are left out), each off sweep replayed through the default rules as they are
    now."""
    def key(row: dict) -> tuple:  # the same sweep: data, sampler seed, space and sampler
        return row["dataset"], row["seed"], row.get("space", "shipped"), row.get("sampler", "tpe")

    ons = {key(r): r["on"] for r in json.loads(Path(on_path).read_text())["rows"] if "on" in r}
    rows = []
    for row in json.loads(Path(off_path).read_text())["rows"]:
        on = ons.get(key(row))
        if "off" not in row or on is None:
            continue
        off = row["off"]
        recorded = off["replay"]["histories"]
        off["replay"] = {**replay(recorded, HealthSpec()), "histories": recorded}
        rows.append({**row, "on": on, **_compared(off, on, recorded["maximize"])})
    print(json.dumps({"rows": [{k: v for k, v in r.items() if k not in ("off", "on")}
                               for r in rows]}, indent=2))
    _health_table(rows)


def _health_table(rows: list[dict]) -> None:
    print(f"{'data':>7} {'seed':>4} {'arm':>4} {'steps':>7} {'wall_s':>7} {'best':>8} "
          f"{'confirmed':>10} {'bound':>8}  pruned", file=sys.stderr)
    for row in rows:
        for arm in (arm for arm in ("off", "on") if arm in row):
            a = row[arm]
            print(f"{row['dataset']:>7} {row['seed']:>4} {arm:>4} {a['steps']:>7} "
                  f"{a['wall_s']:>7} {_fmt(a['best']):>8} {_fmt(a['confirmed_mean']):>10} "
                  f"{_fmt(a['confirmed_bound']):>8}  {a['pruned']}", file=sys.stderr)
        if "off" not in row:
            continue
        replay = row["off"]["replay"]
        if "on" in row:
            print(f"  on saved {row['steps_saved']:.0%} of the steps, confirmed best not "
                  f"worse: {row['confirmed_not_worse']}", file=sys.stderr)
        print(f"  replay of the off sweep: {replay['steps_saved']:.0%} saved, "
              f"{len(replay['would_prune'])} pruned, its best (trial {replay['best_trial']}) "
              f"pruned: {replay['best_pruned']}; an oracle of failures would save "
              f"{replay.get('oracle_saved', 0):.0%}", file=sys.stderr)


if __name__ == "__main__":
    main()
