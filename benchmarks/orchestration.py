"""Orchestration overhead: 40 trials of a trainer that sleeps 0.1 s per step for 5 steps, on 2
actors, with real MLflow logging (sqlite) and real Optuna storage (sqlite) in the loop.

utilization = ideal / wall, where ideal is the makespan of a perfect scheduler: ceil(trials /
actors) rounds of one trial's sleep (equal trials cannot end sooner). busy = total sleep /
(actors x wall), which also counts the last round's unavoidably idle actors; the two agree when
trials fill every round. overhead per trial = (wall - ideal) * actors / trials. The clock starts
once the actors are up (their start-up is reported apart). `storage` is sqlite (the default) or
journal (an Optuna journal file).

With `--end-to-end`, the same work again as a user runs it, `gansweep launch` in its own process
with its own local Ray, timed from the command's start to its exit: end-to-end utilization =
ideal / that wall time; time to first step = from the start to the first trial's
`gansweep.started_at` (its trainer built, about to train); exit after last step = from the last
trial's last metric write to the exit.

    .venv/bin/python benchmarks/orchestration.py [--trials 40] [--actors 2] [--eval-every 5]
                                                 [--end-to-end]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import ray

from orchestrator.cluster.pool import ActorPool
from orchestrator.driver.context import SweepContext
from orchestrator.driver.scheduler import Scheduler
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.settings import Settings
from orchestrator.study.studies import open_study
from orchestrator.tracking.tracker import SweepTracker

SPEC = """
name: orchestration
dataset: none
trainer: synthetic
objective: {{metric: eval/loss, direction: minimize}}
budget: {{trials: {trials}, steps: {steps}, eval_every: {eval_every}, log_every: 1}}
sampler: {{name: tpe, seed: 0}}
resources: {{cpus_per_trial: 1}}
fixed: {{sleep_s: {sleep}}}
space:
  x: {{type: float, low: -2.0, high: 2.0}}
  y: {{type: float, low: -2.0, high: 2.0}}
"""


def measure(trials: int, actors: int, steps: int, eval_every: int, sleep: float,
            workdir: Path, storage: str = "sqlite") -> dict:
    spec = SweepSpec.parse(SPEC.format(trials=trials, steps=steps, eval_every=eval_every,
                                       sleep=sleep))
    study_store = (str(workdir / "optuna.journal") if storage == "journal"
                   else f"sqlite:///{workdir}/optuna.db")
    settings = Settings.resolve(study_store, f"sqlite:///{workdir}/mlflow.db",
                                checkpoint_root=str(workdir / "checkpoints"))
    tracker = SweepTracker(settings.tracking_uri, spec.experiment, spec.name)
    study = open_study(spec, settings.storage)
    tracker.open_sweep_run(spec.text, "spec.yaml")
    t0 = time.perf_counter()
    pool = ActorPool(actors, {"num_cpus": 1, "num_gpus": 0}, ray.put(None), settings.tracking_uri)
    scheduler = Scheduler(SweepContext(spec, settings, study, tracker), pool)
    ray.get([w.flush.remote() for w in scheduler.workers])  # actors up and imported
    startup = time.perf_counter() - t0
    cpu0, machine0, t1 = time.process_time(), machine_cpu_s(), time.perf_counter()
    stats = scheduler.run()
    wall, driver_cpu = time.perf_counter() - t1, time.process_time() - cpu0
    machine = machine_cpu_s() - machine0 if machine0 is not None else None
    tracker.close_sweep()
    ideal = math.ceil(trials / actors) * steps * sleep
    busy = trials * steps * sleep / (actors * wall)
    return {"trials": trials, "actors": actors, "steps": steps, "eval_every": eval_every,
            "storage": storage, "sleep_per_step_s": sleep, "completed": stats.done,
            "ideal_s": round(ideal, 3), "wall_s": round(wall, 3),
            "utilization": round(ideal / wall, 4), "busy": round(busy, 4),
            "overhead_per_trial_ms": round((wall - ideal) * actors / trials * 1000, 1),
            "driver_cpu_per_trial_ms": round(driver_cpu / trials * 1000, 1),
            "machine_cpu_per_trial_ms": (None if machine is None
                                         else round(machine / trials * 1000, 1)),
            "machine_cores_busy": None if machine is None else round(machine / wall, 2),
            "actor_startup_s": round(startup, 2)}


def end_to_end(trials: int, actors: int, steps: int, eval_every: int, sleep: float,
               workdir: Path) -> dict:
    """`gansweep launch` of the same sweep in a process of its own, start to exit."""
    import subprocess

    from mlflow import MlflowClient

    spec = workdir / "orchestration.yaml"
    spec.write_text(SPEC.format(trials=trials, steps=steps, eval_every=eval_every, sleep=sleep))
    root = Path(__file__).resolve().parents[1]  # a local Ray of its own: one actor per core
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
           "PYTHONPATH": str(root)}
    t0 = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "launch", str(spec), "--storage",
         f"sqlite:///{workdir}/optuna.db", "--tracking-uri", f"sqlite:///{workdir}/mlflow.db",
         "--checkpoint-root", str(workdir / "checkpoints")],
        check=False, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    wall = time.time() - t0
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("orchestration").experiment_id],
                              "tags.`gansweep.role` = 'trial'")
    started = min(float(r.data.tags["gansweep.started_at"]) for r in runs)
    last = max(m.timestamp for r in runs
               for m in client.get_metric_history(r.info.run_id, "eval/loss")) / 1000
    ideal = math.ceil(trials / actors) * steps * sleep
    return {"trials": trials, "actors": actors, "eval_every": eval_every, "runs": len(runs),
            "end_to_end_wall_s": round(wall, 2),
            "end_to_end_utilization": round(ideal / wall, 4),
            "time_to_first_step_s": round(started - t0, 2),
            "exit_after_last_step_s": round(t0 + wall - last, 2)}


def machine_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy (every process: driver, actors, Ray's own
    daemons), from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def workload_args(parser: argparse.ArgumentParser) -> None:
    """The workload's flags (benchmarks/raytune.py runs the same one)."""
    for flag, kind, default in (("--trials", int, 40), ("--actors", int, 2), ("--steps", int, 5),
                                ("--sleep", float, 0.1)):
        parser.add_argument(flag, type=kind, default=default)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_args(parser)
    parser.add_argument("--eval-every", type=int, nargs="+", default=[5, 1],
                        help="one measurement per value (5: one report per trial; 1: each step)")
    parser.add_argument("--end-to-end", action="store_true",
                        help="also time `gansweep launch` of the same work, start to exit")
    args = parser.parse_args()
    ray.init(num_cpus=args.actors, include_dashboard=False, logging_level="ERROR")
    results = []
    for eval_every in args.eval_every:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(measure(args.trials, args.actors, args.steps, eval_every, args.sleep,
                                   Path(tmp)))
    ray.shutdown()
    for r in results if args.end_to_end else []:  # after this process's Ray is gone
        with tempfile.TemporaryDirectory() as tmp:
            r.update(end_to_end(args.trials, args.actors, args.steps, r["eval_every"],
                                args.sleep, Path(tmp)))
    print(json.dumps(results, indent=2))
    print(f"{'eval_every':>10} {'ideal_s':>8} {'wall_s':>8} {'util':>6} {'ovh/trial ms':>13} "
          f"{'driver cpu/trial ms':>20}", file=sys.stderr)
    for r in results:
        print(f"{r['eval_every']:>10} {r['ideal_s']:>8} {r['wall_s']:>8} {r['utilization']:>6} "
              f"{r['overhead_per_trial_ms']:>13} {r['driver_cpu_per_trial_ms']:>20}",
              file=sys.stderr)
        if "end_to_end_wall_s" in r:
            print(f"{'':>10} end to end: wall {r['end_to_end_wall_s']} s, utilization "
                  f"{r['end_to_end_utilization']}, first step after "
                  f"{r['time_to_first_step_s']} s, exit {r['exit_after_last_step_s']} s after "
                  f"the last step", file=sys.stderr)


if __name__ == "__main__":
    main()
