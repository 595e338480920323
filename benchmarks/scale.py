"""Orchestration at scale: the orchestration benchmark (a trainer that sleeps per step, real
sqlite Optuna and MLflow in the loop) at 2, 8 and 32 actors on fake CPU resources, 200 trials
each: utilization (perfect-scheduler makespan / wall; see orchestration.py) and driver CPU time
per trial as the pool grows, with the study in sqlite (the default) and in an Optuna journal file.

Each pool size runs on its own local Ray started with `num_cpus = actors` (one machine: the
actors sleep, so 32 of them fit on 2 cores). Target: utilization >= 0.95 at 32 actors and a
driver time per trial that stays flat.

    .venv/bin/python benchmarks/scale.py [--actors 2 8 32] [--trials 200] [--steps 5] [--sleep 0.1]
        [--storage sqlite journal]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import ray
from orchestration import measure  # the script's folder is on sys.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--storage", nargs="+", choices=["sqlite", "journal"],
                        default=["sqlite", "journal"])
    args = parser.parse_args()
    results = []
    for actors in args.actors:
        ray.init(num_cpus=actors, include_dashboard=False, logging_level="ERROR")
        for storage in args.storage:  # side by side on the same Ray and actors' machine
            with tempfile.TemporaryDirectory() as tmp:
                results.append(measure(args.trials, actors, args.steps, args.eval_every,
                                       args.sleep, Path(tmp), storage))
        ray.shutdown()
    print(json.dumps(results, indent=2))
    print(f"{'actors':>6} {'storage':>8} {'trials':>6} {'ideal_s':>8} {'wall_s':>8} "
          f"{'util':>6} {'busy':>6} {'driver cpu/trial ms':>20} {'machine cpu/trial ms':>21} "
          f"{'cores busy':>10} {'startup_s':>9}",
          file=sys.stderr)
    for r in results:
        print(f"{r['actors']:>6} {r['storage']:>8} {r['trials']:>6} {r['ideal_s']:>8} "
              f"{r['wall_s']:>8} {r['utilization']:>6} {r['busy']:>6} "
              f"{r['driver_cpu_per_trial_ms']:>20} {r['machine_cpu_per_trial_ms']!s:>21} "
              f"{r['machine_cores_busy']!s:>10} {r['actor_startup_s']:>9}", file=sys.stderr)


if __name__ == "__main__":
    main()
