"""PBT against TPE + Hyperband and random search, and against Ray Tune's PBT, at equal steps.

Population-based training (PBT, the spec's `scheduler: {name: pbt}`) in gansweep, measured twice.

`--compare search` (the default): on `--data grid25` (search_spaces/grid25.yaml's space and
fixed params, objective eval/score) or `digits` (digits-dcgan.yaml's, eval/fd; its `enqueue`ed
known-best config dropped, so that no arm starts from it), four gansweep sweeps per sampler seed,
each launched as a user's would be (orchestrator.driver.launch on fresh sqlite stores, local Ray
on `--cpus` CPUs, one trial per CPU, GAN-health rules off), each ending in its confirm phase
(`budget.confirm: {top: 1, seeds: 2}`: the best config retrained on 2 fresh seeds; a PBT
member's schedule is replayed):
- pbt: `--population` N members x `--steps` S, `scheduler: {name: pbt, interval: S/8,
  quantile: 0.25, perturb: [0.8, 1.2], resample_probability: 0.25, mutable: [lr_g, lr_d]}`, the
  space's TPE sampler drawing the first members, no pruner: N x S steps;
- tpe_hb: TPE with Hyperband, N trials of up to S steps (fewer: Hyperband prunes). Hyperband's
  resource is steps: the space's pruner with min_resource scaled by S over the spec's steps (to a
  multiple of eval_every), its reduction factor, bootstrap_count scaled by N over its trials;
- tpe_hb_more: the same with the steps Hyperband saved spent on more trials: as many trials as
  bring its expected steps to about N x S (N x S / tpe_hb's steps per trial; `--more-trials`);
- random: random search, N trials x S steps, no pruner.
Evaluations every S/8 steps in every arm (PBT's interval must be a multiple of them). Per arm:
the best objective among completed trials (the final value Optuna was told), steps trained (the
driver's count), wall time of the search and of its confirm phase, and the confirmed best (the
mean of the best config's final objective over its 2 fresh seeds, evaluated on 4x the samples).
The arms' order rotates from seed to seed; `--seeds` are the sampler seeds (trial seeds follow).
On grid25 two values closer than the score's evaluation noise (sd ~0.0013 on 2,500 points,
trainers.mixtures.score_noise; half that on a confirm run's 10,000) cannot be told apart.

    RAY_AUTH_MODE=disabled .venv/bin/python benchmarks/pbt.py [--data grid25] [--seeds 0 1 2]
        [--population 8] [--steps 2000 (digits: 600)] [--arms pbt tpe_hb tpe_hb_more random]
        [--more-trials M] [--cpus 2]

`--compare raytune`: the same PBT in gansweep and in Ray Tune, mlp_gan on `--data grid25` (or
ring8) with that space's fixed params and searched ones, N members x S steps, alternated for
`--rounds` rounds (sampler seed = `--seeds`[0] + round) in one Ray session. gansweep: a pbt sweep
as above (random sampler, no confirm). Tune: what a Tune user writes, a function trainable that
builds the trainer with trainers.build_trainer, trains eval_every steps, scores an evaluation with
trainers.scoring.score (gansweep's objective, the same metric) and reports it with a checkpoint
of trainer.state_dict(); restored (exploit), it builds the trainer with the checkpoint's config,
loads its state, then `trainer.reconfigure`s to the config Tune gives. `PopulationBasedTraining`
with synch=True (gansweep's rounds are synchronous), time_attr training_iteration,
perturbation_interval = interval / eval_every, the same quantile_fraction,
resample_probability, perturbation_factors, and hyperparam_mutations over the same ranges
(Tune does not clip a perturbed value to its range; gansweep does: a custom_explore_fn clips);
first configs drawn at random from the same space (BasicVariantGenerator seeded), 1 CPU a
member, `reuse_actors=True`, checkpoints kept: 4 a member. No MLflowLoggerCallback: with PBT
it fails at the first exploit (it logs the copied config, the donor's architecture included, as
the recipient's params again, and MLflow refuses a changed param; ray-project/ray#27783), so
only gansweep's wall time includes tracking (its MLflow runs, metrics and plots). Per arm and
round: the best final objective among members, steps trained (Tune's: each chunk's, as its
trainables append them to a file, so steps a paused trial trains past its checkpoint count),
wall time (from the first config to the last member done, actor start-up included).

    pip install -c constraints.txt -e '.[bench]'     # ray[tune]
    RAY_AUTH_MODE=disabled .venv/bin/python benchmarks/pbt.py --compare raytune [--data grid25]
        [--rounds 1] [--population 8] [--steps 2000] [--seeds 0]

JSON on stdout, a table on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import ray
import torch
import yaml
from _common import DIGITS, GRID25, hyperband, run_sweep
from optuna.trial import TrialState
from ray import tune
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.search.basic_variant import BasicVariantGenerator

from orchestrator.layout import PBT_LINEAGE_ATTR, PBT_PARAMS_ATTR
from orchestrator.spec.space import Param
from orchestrator.spec.sweep import SweepSpec
from orchestrator.study.ranking import confirm_table
from orchestrator.study.studies import confirm_name
from trainers import build_trainer, load_dataset, score
from trainers.base import as_evaluation
from trainers.mixtures import grid25, ring8, score_noise
from trainers.mlp_gan import N_EVAL

SOURCES = {"grid25": GRID25, "digits": DIGITS, "ring8": GRID25.parent / "ring8.yaml"}
DEFAULT_STEPS = {"grid25": 2000, "digits": 600, "ring8": 2000}
ROUNDS_PER_RUN = 8  # PBT's interval (and the eval cadence) is steps / ROUNDS_PER_RUN
ARMS = ("pbt", "tpe_hb", "tpe_hb_more", "random")
UNITS = (("pbt",), ("tpe_hb", "tpe_hb_more"), ("random",))  # rotated from seed to seed
CONFIRM = {"top": 1, "seeds": 2}
MUTABLE = ("lr_g", "lr_d")
QUIET = ("best_params", "trials_detail", "finals")  # JSON only, not in the progress lines
PBT_DEFAULTS = {"quantile": 0.25, "perturb": [0.8, 1.2], "resample_probability": 0.25}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=["search", "raytune"], default="search")
    parser.add_argument("--data", choices=sorted(SOURCES), default="grid25",
                        help="search: grid25 or digits; raytune: grid25 or ring8")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="sampler seeds (raytune: the first, plus the round)")
    parser.add_argument("--population", type=int, default=8, help="N: members, trials per arm")
    parser.add_argument("--steps", type=int, default=None,
                        help="S: steps per member or trial (default: grid25 2000, digits 600)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--more-trials", type=int, default=None,
                        help="tpe_hb_more's trials (default: N x S / tpe_hb's steps per trial)")
    parser.add_argument("--rounds", type=int, default=1, help="raytune: rounds of both arms")
    parser.add_argument("--cpus", type=int, default=2, help="Ray CPUs: one trial per CPU")
    args = parser.parse_args()
    allowed = ("grid25", "digits") if args.compare == "search" else ("grid25", "ring8")
    if args.data not in allowed:
        parser.error(f"--data: --compare {args.compare} runs on {' or '.join(allowed)}")
    args.steps = args.steps or DEFAULT_STEPS[args.data]
    if args.steps % ROUNDS_PER_RUN:
        parser.error(f"--steps: must be a multiple of {ROUNDS_PER_RUN} (the interval is S/8)")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no experiment table
    with contextlib.redirect_stdout(sys.stderr):  # whatever Ray or Tune print: stdout is JSON
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
        try:
            result = compare_search(args) if args.compare == "search" else compare_tune(args)
        finally:
            ray.shutdown()
    print(json.dumps(result, indent=2))
    (_search_table if args.compare == "search" else _tune_table)(result)


# -- specs ------------------------------------------------------------------------------------
def arm_spec(data: str, name: str, trials: int, steps: int, sampler: str, seed: int,
             pruner: str = "none", scheduler: dict | None = None,
             confirm: dict | None = None) -> SweepSpec:
    """`data`'s space and fixed params with this budget (evals every steps/8, one train row
    each), sampler, pruner and scheduler; no enqueued configs, GAN-health rules off."""
    source = SOURCES[data]
    raw = yaml.safe_load(source.read_text())
    eval_every = steps // ROUNDS_PER_RUN
    budget = {"trials": trials, "steps": steps, "eval_every": eval_every,
              "log_every": eval_every}
    if "eval_samples" in raw["budget"]:
        budget["eval_samples"] = raw["budget"]["eval_samples"]
    if confirm:
        budget["confirm"] = confirm
    raw.pop("enqueue", None)
    raw.update(name=name, sampler={"name": sampler, "seed": seed}, pruner=yaml.safe_load(pruner),
               budget=budget, health=False, scheduler=scheduler,
               resources={"gpus_per_trial": 0, "cpus_per_trial": 1})
    return SweepSpec.parse(yaml.safe_dump(raw, sort_keys=False), str(source))


def pbt_section(population: int, steps: int) -> dict:
    return {"name": "pbt", "population": population, "interval": steps // ROUNDS_PER_RUN,
            **PBT_DEFAULTS, "mutable": list(MUTABLE)}


def scaled_hyperband(data: str, trials: int, steps: int) -> str:
    """The space's pruner as Hyperband over steps, scaled to this budget: min_resource by
    steps / the spec's steps (a multiple of the eval cadence), bootstrap_count by trials / the
    spec's trials; its reduction factor, n_startup_trials and metric as they are."""
    raw = yaml.safe_load(SOURCES[data].read_text())
    pruner, budget = raw.get("pruner") or {}, raw["budget"]
    eval_every = steps // ROUNDS_PER_RUN
    min_resource = pruner.get("min_resource", budget["steps"] // 4) * steps / budget["steps"]
    min_resource = max(eval_every, round(min_resource / eval_every) * eval_every)
    bootstrap = round(pruner.get("bootstrap_count", 0) * trials / budget["trials"])
    return hyperband(min_resource, pruner.get("reduction_factor", 3), bootstrap,
                     pruner.get("n_startup_trials", 0), pruner.get("metric") or "none")


# -- part 1: PBT against TPE + Hyperband and random search --------------------------------------
def compare_search(args) -> dict:
    n, s = args.population, args.steps
    rows = []
    for i, seed in enumerate(args.seeds):
        order = [arm for unit in UNITS[i % len(UNITS):] + UNITS[:i % len(UNITS)] for arm in unit
                 if arm in args.arms]
        row: dict = {"seed": seed, "order": order, "arms": {}}
        for arm in order:
            trials, sampler, pruner, scheduler = n, "random", "none", None
            if arm == "pbt":
                sampler, scheduler = "tpe", pbt_section(n, s)
            elif arm.startswith("tpe_hb"):
                sampler, pruner = "tpe", scaled_hyperband(args.data, n, s)
                if arm == "tpe_hb_more":
                    trials = more_trials(args, row["arms"].get("tpe_hb"))
            spec = arm_spec(args.data, f"{args.data}-{arm}-{seed}", trials, s, sampler, seed,
                            pruner, scheduler, CONFIRM)
            result = run_sweep(spec, analyse=analyse)
            confirm_s = result.extra.pop("confirm_s")
            row["arms"][arm] = {"trials": trials, "pruner": pruner,
                                "steps_trained": result.steps_trained,
                                "wall_s": round(result.wall_s, 1),
                                "search_s": round(result.wall_s - confirm_s, 1),
                                "confirm_s": round(confirm_s, 1), **result.extra}
            print(json.dumps({"seed": seed, "arm": arm, **{
                k: v for k, v in row["arms"][arm].items() if k not in QUIET}}),
                file=sys.stderr, flush=True)
        rows.append(row)
    maximize = arm_spec(args.data, "probe", n, s, "random", 0).objective.direction == "maximize"
    noise = score_noise(grid25(), N_EVAL) if args.data == "grid25" else None
    return {"compare": "search", "data": args.data, "population": n, "steps": s,
            "interval": s // ROUNDS_PER_RUN, "cpus": args.cpus, "maximize": maximize,
            "score_noise_sd": None if noise is None else round(noise, 5),
            "pbt": pbt_section(n, s), "rows": rows, "means": means(rows, args.arms)}


def more_trials(args, hb: dict | None) -> int:
    """tpe_hb_more's trials: `--more-trials`, else those that bring Hyperband's steps to about
    N x S at tpe_hb's steps per trial (N when tpe_hb did not run)."""
    if args.more_trials:
        return args.more_trials
    if not hb or not hb["steps_trained"]:
        return args.population
    per_trial = hb["steps_trained"] / hb["trials"]
    return max(args.population, round(args.population * args.steps / per_trial))


def analyse(study: optuna.Study, settings) -> dict:
    """An arm's figures from its stores: its best completed trial, the trials pruned, PBT's
    exploits, the confirmed best (mean of the best config over its fresh seeds) and how long the
    confirm phase ran."""
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = (max if maximize else min)(complete, key=lambda t: t.value, default=None)
    out = {"complete": len(complete), "pruned": sum(t.state == TrialState.PRUNED for t in trials),
           "exploits": sum(len(t.user_attrs.get(PBT_LINEAGE_ATTR, [])) for t in trials),
           "best": None if best is None else round(best.value, 4),
           "best_trial": None if best is None else best.number,
           "best_params": None if best is None else
           best.user_attrs.get(PBT_PARAMS_ATTR, best.params),
           "finals": sorted((round(t.value, 4) for t in complete), reverse=maximize),
           "confirmed_mean": None, "confirmed_values": [], "confirm_s": 0.0,
           "trials_detail": [{"number": t.number, "state": t.state.name,
                              "curve": {int(k): round(v, 4) for k, v in
                                        sorted(t.intermediate_values.items())},
                              "lineage": t.user_attrs.get(PBT_LINEAGE_ATTR, [])}
                             for t in trials]}
    try:
        confirm = optuna.load_study(study_name=confirm_name(study.study_name),
                                    storage=settings.storage)
    except KeyError:
        return out
    runs = [t for t in confirm.get_trials(deepcopy=False) if t.datetime_complete]
    out["confirm_states"] = dict(Counter(t.state.name for t in confirm.get_trials(deepcopy=False)))
    if runs:
        out["confirm_s"] = (max(t.datetime_complete for t in runs)
                            - min(t.datetime_start for t in runs)).total_seconds()
    ranked = confirm_table(study, confirm, "last")
    if ranked and ranked[0].mean is not None:
        out.update(confirmed_mean=round(ranked[0].mean, 4),
                   confirmed_values=[round(v, 4) for v in ranked[0].values])
    return out


def means(rows: list[dict], arms: list[str]) -> dict:
    """Per arm, the mean over seeds of each figure every seed has."""
    out = {}
    for arm in arms:
        got = [r["arms"][arm] for r in rows if arm in r["arms"]]
        out[arm] = {key: _mean([g[key] for g in got]) for key in (
            "steps_trained", "search_s", "confirm_s", "best", "confirmed_mean")}
    return out


def _mean(values: list) -> float | None:
    return None if not values or None in values else round(statistics.fmean(values), 4)


# -- part 2: gansweep's PBT against Ray Tune's --------------------------------------------------
def compare_tune(args) -> dict:
    n, s = args.population, args.steps
    rounds = []
    for r in range(args.rounds):
        seed = args.seeds[0] + r
        row = {"round": r + 1, "seed": seed}
        for arm in ("gansweep", "raytune"):
            wait_for_cpus(args.cpus)
            row[arm] = gansweep_pbt(args.data, n, s, seed) if arm == "gansweep" else \
                tune_pbt(args.data, n, s, seed, args.cpus)
            print(json.dumps({"round": r + 1, "arm": arm, **{
                k: v for k, v in row[arm].items() if k not in QUIET}}), file=sys.stderr,
                flush=True)
        rounds.append(row)
    mixture = grid25() if args.data == "grid25" else ring8()
    return {"compare": "raytune", "data": args.data, "population": n, "steps": s,
            "interval": s // ROUNDS_PER_RUN, "eval_every": s // ROUNDS_PER_RUN, "cpus": args.cpus,
            "pbt": pbt_section(n, s), "score_noise_sd": round(score_noise(mixture, N_EVAL), 5),
            "rounds": rounds}


def wait_for_cpus(cpus: int, timeout_s: float = 60) -> None:
    """The other arm's actors exit asynchronously: start once their CPUs are free."""
    deadline = time.monotonic() + timeout_s
    while ray.available_resources().get("CPU", 0) < cpus:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{cpus} CPUs still not free after {timeout_s:.0f} s")
        time.sleep(0.1)


def gansweep_pbt(data: str, n: int, steps: int, seed: int) -> dict:
    spec = arm_spec(data, f"{data}-pbt-vs-tune-{seed}", n, steps, "random", seed,
                    scheduler=pbt_section(n, steps))
    result = run_sweep(spec, analyse=analyse)
    return {"wall_s": round(result.wall_s, 1), "steps_trained": result.steps_trained,
            **{k: result.extra[k] for k in ("best", "exploits", "best_params", "finals",
                                            "trials_detail")}}


def tune_domain(param: Param):
    """A spec parameter as a Tune search domain over the same range or choices."""
    if param.kind == "categorical":
        return tune.choice(list(param.choices))
    if param.kind == "int":
        if param.step:
            return tune.qrandint(param.low, param.high, param.step)
        return (tune.lograndint if param.log else tune.randint)(param.low, param.high + 1)
    if param.step:
        return tune.quniform(param.low, param.high, param.step)
    return (tune.loguniform if param.log else tune.uniform)(param.low, param.high)


def clip_to(space: tuple[Param, ...]):
    """Tune's explore clipped to each mutable parameter's range, as gansweep's is."""
    bounds = {p.name: (p.low, p.high) for p in space if p.name in MUTABLE}

    def explore(config: dict) -> dict:
        for name, (low, high) in bounds.items():
            config[name] = min(high, max(low, config[name]))
        return config
    return explore


def active_params(config: dict, space: tuple[Param, ...]) -> dict:
    """`config` without the searched params whose `when` does not hold (as gansweep samples)."""
    inactive = {p.name for p in space if not p.active(config)}
    return {k: v for k, v in config.items() if k not in inactive}


def train_member(config: dict, trainer: str, data_name: str, objective: str, steps: int,
                 eval_every: int, space: tuple[Param, ...], ledger: str) -> None:
    """The Tune trial: `eval_every` steps between reports, each scored as gansweep scores an
    evaluation and reported with a checkpoint; restored from a (donor's) checkpoint, the
    trainer is built with that checkpoint's config and moved to this trial's config. Each chunk's
    steps are appended to `ledger` (a local file): the steps trained, those a paused trial
    trains past its checkpoint and trains again included."""
    torch.set_num_threads(1)  # as gansweep's actor with cpus_per_trial 1
    data = load_dataset(data_name)
    params = active_params({k: v for k, v in config.items() if k != "seed"}, space)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        member = build_trainer(trainer, params, data, config["seed"])
    else:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / "trainer.pt", weights_only=True)
        member = build_trainer(trainer, state["config"], data, state["seed"])
        member.load_state_dict(state)
        member.reconfigure({**state["config"], **params})
    while member.step < steps:
        before = member.step
        member.train_for(min(eval_every, steps - member.step))
        with open(ledger, "a") as out:  # one short line per append: whole lines
            out.write(f"{member.step - before}\n")
        scored = score(as_evaluation(member.evaluate()), data)
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(member.state_dict(), Path(tmp) / "trainer.pt")
            tune.report({"score": scored.metrics[objective], "step": member.step},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


def tune_pbt(data: str, n: int, steps: int, seed: int, cpus: int) -> dict:
    """PBT with Ray Tune on the same trainer, space, population and rounds; its figures."""
    spec = arm_spec(data, "tune", n, steps, "random", seed, scheduler=pbt_section(n, steps))
    pbt, eval_every = spec.scheduler, spec.budget.eval_every
    random.seed(seed)  # PBT's exploit and explore draws
    np.random.seed(seed)  # a resampled Domain's draws
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=pbt.interval // eval_every,
        hyperparam_mutations={p.name: tune_domain(p) for p in spec.space if p.name in MUTABLE},
        quantile_fraction=pbt.quantile, resample_probability=pbt.resample_probability,
        perturbation_factors=tuple(pbt.perturb), custom_explore_fn=clip_to(spec.space),
        synch=True)
    param_space = {**spec.fixed, **{p.name: tune_domain(p) for p in spec.space},
                   "seed": tune.randint(0, 2**31 - 1)}
    mode = "max" if spec.objective.direction == "maximize" else "min"
    with tempfile.TemporaryDirectory(prefix="tune-pbt-") as tmp:
        ledger = Path(tmp) / "steps.txt"
        trainable = tune.with_resources(tune.with_parameters(
            train_member, trainer=spec.trainer, data_name=spec.dataset,
            objective=spec.objective.metric, steps=steps, eval_every=eval_every,
            space=spec.space, ledger=str(ledger)), {"cpu": 1})
        t0 = time.perf_counter()
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(metric="score", mode=mode, scheduler=scheduler,
                                        search_alg=BasicVariantGenerator(random_state=seed),
                                        num_samples=n, max_concurrent_trials=cpus,
                                        reuse_actors=True),
            run_config=tune.RunConfig(
                name="tune-pbt", storage_path=str(Path(tmp) / "tune"), verbose=0,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=4)))
        results = tuner.fit()
        wall = time.perf_counter() - t0
        finals = sorted((round(r.metrics["score"], 4) for r in results
                         if r.error is None and r.metrics.get("step") == steps),
                        reverse=mode == "max")
        trained = sum(map(int, ledger.read_text().split())) if ledger.exists() else 0
        best = results.get_best_result(metric="score", mode=mode, scope="last")
        errors = sum(r.error is not None for r in results)
    return {"wall_s": round(wall, 1), "steps_trained": trained,
            "best": None if not finals else round(finals[0], 4), "errors": errors,
            "best_params": {k: best.config[k] for k in MUTABLE}, "finals": finals}


# -- tables -----------------------------------------------------------------------------------
def _search_table(result: dict) -> None:
    print(f"{'seed':>4} {'arm':>12} {'trials':>6} {'steps':>7} {'pruned':>6} {'search_s':>8} "
          f"{'confirm_s':>9} {'best':>8} {'confirmed':>9}", file=sys.stderr)
    for row in result["rows"]:
        for arm, a in row["arms"].items():
            print(f"{row['seed']:>4} {arm:>12} {a['trials']:>6} {a['steps_trained']:>7} "
                  f"{a['pruned']:>6} {a['search_s']:>8} {a['confirm_s']:>9} {_fmt(a['best']):>8} "
                  f"{_fmt(a['confirmed_mean']):>9}", file=sys.stderr)
    for arm, m in result["means"].items():
        print(f"mean {arm:>12} {'':>6} {_fmt(m['steps_trained']):>7} {'':>6} "
              f"{_fmt(m['search_s']):>8} {_fmt(m['confirm_s']):>9} {_fmt(m['best']):>8} "
              f"{_fmt(m['confirmed_mean']):>9}", file=sys.stderr)


def _tune_table(result: dict) -> None:
    print(f"{'round':>5} {'arm':>8} {'steps':>7} {'wall_s':>7} {'best':>7}  finals",
          file=sys.stderr)
    for row in result["rounds"]:
        for arm in ("gansweep", "raytune"):
            a = row[arm]
            print(f"{row['round']:>5} {arm:>8} {a['steps_trained']:>7} {a['wall_s']:>7} "
                  f"{_fmt(a['best']):>7}  {' '.join(f'{v:.4f}' for v in a['finals'])}",
                  file=sys.stderr)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if float(value).is_integer() else f"{value:.4g}"


if __name__ == "__main__":
    main()
