"""gansweep against Ray Tune on the same work: orchestration.py's sweep (trials of the `synthetic`
trainer sleeping `--sleep` s a step for `--steps` steps, TPE seed 0 over x, y uniform in [-2, 2],
1 CPU a trial on `--actors` CPUs, Optuna and MLflow on fresh sqlite files), run both ways.

gansweep: orchestration.measure (its scheduler and actor pool). Ray Tune: what a Tune user writes
for the same sweep, a function trainable that builds the same trainer with
`trainers.build_trainer`, trains it one step at a time (log_every 1) and calls `tune.report` every
`--eval-every` steps with the trainer's metrics (eval/loss) and a checkpoint of its state (gansweep
checkpoints at each eval too; both keep 2); `Tuner` with `OptunaSearch` (gansweep's own TPE
sampler: multivariate, constant liar, same startup trials; its study on sqlite, an Optuna storage
that OptunaSearch accepts), `max_concurrent_trials=--actors`, `MLflowLoggerCallback` on sqlite,
results under a temp `storage_path`, `reuse_actors=True` (Tune's default is False: each trial
then starts a fresh actor process; `--no-reuse-actors` measures that). With `--eval-every 5` (the
default) both report once a trial, with 1 after every step.

Each arm is timed whole, from opening its stores to its last trial closed, actor start-up
included (gansweep's start-up and scheduler-only wall are reported apart too):
utilization = ideal / wall, ideal = ceil(trials / actors) x steps x sleep; overhead per trial =
(wall - ideal) x actors / trials; driver CPU = this process's CPU time (Tune's controller, its
searcher and MLflow callback run here; gansweep's MLflow writes run in its actors); machine CPU
= every process's, from /proc/stat. The arms alternate for `--rounds` rounds in one Ray session
(`ray.init(num_cpus=actors)`), each starting once the other's actors have freed their CPUs;
ratios are Tune's median over gansweep's. An untimed warm-up round of each arm (one trial per
actor) comes first, so that no timed round pays the driver's first-use imports. JSON on stdout,
a table on stderr.

    pip install -c constraints.txt -e '.[bench]'     # ray[tune]
    .venv/bin/python benchmarks/raytune.py [--trials 40] [--actors 2] [--steps 5] [--sleep 0.1]
                                           [--eval-every 5] [--rounds 3] [--no-reuse-actors]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
import ray
import torch
from orchestration import (  # the script's folder is on sys.path
    SPEC,
    machine_cpu_s,
    measure,
    workload_args,
)
from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune.search.optuna import OptunaSearch

from orchestrator.spec.sweep import SweepSpec
from orchestrator.study.samplers import build_sampler
from orchestrator.study.studies import startup_trials
from trainers import build_trainer

FIGURES = ("wall_s", "utilization", "overhead_per_trial_ms", "driver_cpu_per_trial_ms",
           "machine_cpu_per_trial_ms")


def train_synthetic(config: dict, steps: int, eval_every: int) -> None:
    """The Tune trial: `eval_every` steps between reports, each with a checkpoint."""
    trainer = build_trainer("synthetic", config, None, 0)
    while trainer.step < steps:
        for _ in range(min(eval_every, steps - trainer.step)):
            row = trainer.train_for(1)
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(trainer.state_dict(), Path(tmp) / "trainer.pt")
            tune.report({**row, **trainer.evaluate().metrics},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


def tune_sweep(args: argparse.Namespace, workdir: Path) -> int:
    """The sweep with Ray Tune; the number of trials that reported every step."""
    spec = SweepSpec.parse(SPEC.format(trials=args.trials, steps=args.steps,
                                       eval_every=args.eval_every, sleep=args.sleep))
    searcher = OptunaSearch(
        sampler=build_sampler(spec.sampler, spec.space, startup_trials(args.trials)),
        study_name="raytune", storage=optuna.storages.get_storage(f"sqlite:///{workdir}/optuna.db"))
    trainable = tune.with_resources(
        tune.with_parameters(train_synthetic, steps=args.steps, eval_every=args.eval_every),
        {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(-2.0, 2.0), "y": tune.uniform(-2.0, 2.0),
                     "sleep_s": args.sleep},
        tune_config=tune.TuneConfig(metric="eval/loss", mode="min", search_alg=searcher,
                                    num_samples=args.trials, max_concurrent_trials=args.actors,
                                    reuse_actors=args.reuse_actors),
        run_config=tune.RunConfig(
            name="raytune", storage_path=str(workdir / "tune"), verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[MLflowLoggerCallback(tracking_uri=f"sqlite:///{workdir}/mlflow.db",
                                            experiment_name="raytune")]))
    reports = math.ceil(args.steps / args.eval_every)
    return sum(r.error is None and r.metrics.get("training_iteration") == reports
               for r in tuner.fit())


def timed(arm: str, args: argparse.Namespace) -> dict:
    """One round of an arm in fresh stores: its figures, each arm timed the same way."""
    deadline = time.monotonic() + 60  # the other arm's actors exit asynchronously
    while ray.available_resources().get("CPU", 0) < args.actors:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{args.actors} CPUs still not free after 60 s")
        time.sleep(0.05)
    with tempfile.TemporaryDirectory(prefix=f"{arm}-bench-") as tmp:
        cpu0, machine0, t0 = time.process_time(), machine_cpu_s(), time.perf_counter()
        if arm == "gansweep":
            inner = measure(args.trials, args.actors, args.steps, args.eval_every, args.sleep,
                            Path(tmp))
            extra = {"completed": inner["completed"], "actor_startup_s": inner["actor_startup_s"],
                     "scheduler_wall_s": inner["wall_s"]}
        else:
            extra = {"completed": tune_sweep(args, Path(tmp))}
        wall, driver_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        machine = machine_cpu_s() - machine0 if machine0 is not None else None
    ideal = math.ceil(args.trials / args.actors) * args.steps * args.sleep
    return {"wall_s": round(wall, 3), "utilization": round(ideal / wall, 4),
            "overhead_per_trial_ms": round((wall - ideal) * args.actors / args.trials * 1000, 1),
            "driver_cpu_per_trial_ms": round(driver_cpu / args.trials * 1000, 1),
            "machine_cpu_per_trial_ms": (None if machine is None
                                         else round(machine / args.trials * 1000, 1)),
            **extra}


def median(rounds: list[dict]) -> dict:
    return {k: (None if None in (vals := [r[k] for r in rounds])
                else round(statistics.median(vals), 4)) for k in FIGURES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_args(parser)
    parser.add_argument("--eval-every", type=int, default=5,
                        help="steps between evals (gansweep) and reports (Tune)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse-actors", action=argparse.BooleanOptionalAction, default=True,
                        help="Tune's reuse_actors (gansweep's pool always reuses its actors)")
    args = parser.parse_args()
    arms = ("gansweep", "raytune")
    rounds: dict[str, list[dict]] = {arm: [] for arm in arms}
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no experiment table
    with contextlib.redirect_stdout(sys.stderr):  # whatever Ray or Tune print: stdout is JSON
        ray.init(num_cpus=args.actors, include_dashboard=False, logging_level="ERROR")
        warmup = argparse.Namespace(**{**vars(args), "trials": args.actors, "sleep": 0.0})
        for arm in arms:
            timed(arm, warmup)
        for _ in range(args.rounds):
            for arm in arms:
                rounds[arm].append(timed(arm, args))
        ray.shutdown()
    medians = {arm: median(rounds[arm]) for arm in arms}
    ratios = {k: (None if not medians["gansweep"][k] or medians["raytune"][k] is None
                  else round(medians["raytune"][k] / medians["gansweep"][k], 2))
              for k in FIGURES[2:]}
    print(json.dumps({"trials": args.trials, "actors": args.actors, "steps": args.steps,
                      "sleep_per_step_s": args.sleep, "eval_every": args.eval_every,
                      "reuse_actors": args.reuse_actors,
                      "ideal_s": round(math.ceil(args.trials / args.actors) * args.steps
                                       * args.sleep, 3),
                      **{arm: {"rounds": rounds[arm], "median": medians[arm]} for arm in arms},
                      "ratios_raytune_over_gansweep": ratios}, indent=2))
    print(f"{'arm':>8} {'round':>6} {'done':>5} {'wall_s':>8} {'util':>6} {'ovh/trial ms':>13} "
          f"{'driver cpu/trial ms':>20} {'machine cpu/trial ms':>21}", file=sys.stderr)
    for arm in arms:
        for i, r in enumerate([*rounds[arm], medians[arm]]):
            print(f"{arm:>8} {i + 1 if i < len(rounds[arm]) else 'median':>6} "
                  f"{r.get('completed', ''):>5} {r['wall_s']:>8} {r['utilization']:>6} "
                  f"{r['overhead_per_trial_ms']:>13} {r['driver_cpu_per_trial_ms']:>20} "
                  f"{r['machine_cpu_per_trial_ms']!s:>21}", file=sys.stderr)
    print("raytune / gansweep: " + ", ".join(f"{k} {v}" for k, v in ratios.items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
