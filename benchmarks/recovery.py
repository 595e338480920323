"""Recovery from a lost worker: the time from its death to its trial training again, and the
training steps the death cost (at most eval_every: the steps since the last checkpoint).

A synthetic trainer sleeps `--sleep` s per step; after trial 0's first checkpoint its actor is
SIGKILLed (`--kill actor`, on a local Ray of 2 CPUs), or its Ray node is removed (`--kill node`,
on a `ray.cluster_utils.Cluster` of a CPU-less head and three 1-CPU workers, so that a node is
free to take the trial: the figure is recovery, not waiting for capacity). Figures come from
the run's tags (`gansweep.started_at`, `gansweep.resumed_from_step`) and the checkpoint clock.

    .venv/bin/python benchmarks/recovery.py [--kill actor|node] [--repeats 3] [--eval-every 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlflow import MlflowClient

from orchestrator.actor.checkpoints import TrialCheckpoints
from orchestrator.driver.launch import launch
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.settings import Settings

SPEC = """
name: recovery
dataset: none
trainer: synthetic
objective: {{metric: eval/loss, direction: minimize}}
budget: {{trials: 2, steps: {steps}, eval_every: {eval_every}, log_every: 5}}
sampler: {{name: random, seed: 0}}
resources: {{cpus_per_trial: 1}}
fixed: {{sleep_s: {sleep}}}
space:
  x: {{type: float, low: -2.0, high: 2.0}}
"""


def _trial0_run(client: MlflowClient):
    exp = client.get_experiment_by_name("recovery")
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], "tags.`gansweep.trial` = '0'")
    return runs[0] if runs else None


def once(kill: str, eval_every: int, sleep: float, address: str | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="gansweep-recovery-"))
    spec = SweepSpec.parse(SPEC.format(steps=eval_every * 6, eval_every=eval_every,
                                       sleep=sleep), source="recovery.yaml")
    settings = Settings.resolve(f"sqlite:///{tmp}/optuna.db", f"sqlite:///{tmp}/mlflow.db",
                                address, str(tmp / "ck"))
    client = MlflowClient(settings.tracking_uri)
    ckpts = TrialCheckpoints(settings.checkpoint_root, "recovery", 0)
    out: dict = {}
    driver = threading.Thread(target=lambda: out.update(stats=launch(spec, settings,
                                                                     notice=lambda m: None)))
    driver.start()
    while True:  # trial 0 has checkpointed once: kill it a random part of a chunk later
        run = _trial0_run(client)
        if run is not None and "gansweep.pid" in run.data.tags and ckpts.steps():
            break
        time.sleep(0.02)
    time.sleep(sleep * eval_every * (0.3 + 0.5 * (time.time() % 1)))
    newest = ckpts.steps()[-1]
    folder = Path(settings.checkpoint_root) / "recovery" / "trial-0000"
    ckpt_time = (folder / f"step-{newest:08d}.pt").stat().st_mtime
    killed_at = time.time()
    if kill == "actor":
        os.kill(int(run.data.tags["gansweep.pid"]), signal.SIGKILL)
    else:
        node_id = run.data.tags["gansweep.ray_node_id"]
        CLUSTER.remove_node(next(n for n in CLUSTER.worker_nodes if n.node_id == node_id))
    driver.join()
    tags = client.get_run(run.info.run_id).data.tags
    resumed_from = int(tags["gansweep.resumed_from_step"])
    steps_at_kill = newest + int((killed_at - ckpt_time) / sleep)
    return {"death_to_running_s": round(float(tags["gansweep.started_at"]) - killed_at, 3),
            "steps_lost": steps_at_kill - resumed_from, "eval_every": eval_every,
            "attempt": int(tags["gansweep.attempt"]),
            "state": tags["gansweep.state"]}


CLUSTER = None


def main() -> None:
    global CLUSTER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill", choices=["actor", "node"], default="actor")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=0.05)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    address = None
    if args.kill == "node":
        from ray.cluster_utils import Cluster

        CLUSTER = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0})
        for _ in range(3):
            CLUSTER.add_node(num_cpus=1)
        CLUSTER.wait_for_nodes()
        address = CLUSTER.address
    rows = []
    for _ in range(args.repeats):
        if args.kill == "node" and len(CLUSTER.worker_nodes) < 3:
            CLUSTER.add_node(num_cpus=1)
            CLUSTER.wait_for_nodes()
        rows.append(once(args.kill, args.eval_every, args.sleep, address))
        if ray.is_initialized():
            ray.shutdown()
    summary = {"kill": args.kill, "runs": rows,
               "median_death_to_running_s": statistics.median(r["death_to_running_s"]
                                                              for r in rows),
               "max_steps_lost": max(r["steps_lost"] for r in rows)}
    print(json.dumps(summary, indent=2))
    print(f"\n{'kill':>6} {'death->running s':>17} {'steps lost':>11} {'eval_every':>11}",
          file=sys.stderr)
    for r in rows:
        print(f"{args.kill:>6} {r['death_to_running_s']:>17.2f} {r['steps_lost']:>11} "
              f"{r['eval_every']:>11}", file=sys.stderr)
    if CLUSTER is not None:
        CLUSTER.shutdown()


if __name__ == "__main__":
    main()
