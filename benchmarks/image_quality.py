"""Image quality as a user gets it: the digits sweep as shipped, then its best configs confirmed.

Runs `gansweep launch search_spaces/digits-dcgan.yaml` in a fresh folder (its own local Ray, sqlite
stores: start-up included in the wall time), then `gansweep confirm` of the top configs on fresh
seeds. Prints, against the data's own floors (train against held-out, on the parent run): the best
trial's FD, KID, precision, recall, coverage and class coverage; the confirmed mean +- std of the
objective; the sweep's wall time and trials pruned. JSON, then a short table. The champion's final
sample grid is copied beside the JSON (`--out`), to be looked at.

Targets (issue 32, 2 CPU cores, sweep <= 15 min): best FD <= 2.0x floor, confirmed mean FD over
3 seeds <= 2.5x floor, recall >= 0.8x the floor's, class coverage 1.0.

    .venv/bin/python benchmarks/image_quality.py [--spec search_spaces/digits-dcgan.yaml]
        [--top 1] [--seeds 3] [--out /tmp/image-quality]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GANSWEEP = str(Path(sys.executable).with_name("gansweep"))
REPORTED = ("fd", "kid", "precision", "recall", "density", "coverage", "class_coverage",
            "class_kl")
TARGETS = {"best_fd_x_floor": 2.0, "confirmed_fd_x_floor": 2.5, "recall_x_floor": 0.8,
           "class_coverage": 1.0, "wall_s": 900}


def gansweep(args: list[str], cwd: Path) -> tuple[float, str]:
    """Run the CLI as a user does; its wall time and stdout (stderr passes through)."""
    start = time.perf_counter()
    done = subprocess.run([GANSWEEP, *args], cwd=cwd, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    if done.returncode != 0:
        sys.exit(f"gansweep {' '.join(args)} exited {done.returncode}")
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "search_spaces" / "digits-dcgan.yaml"))
    parser.add_argument("--top", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=None, help="folder for the JSON and champion grid")
    args = parser.parse_args()

    import mlflow
    import optuna
    import yaml

    name = yaml.safe_load(Path(args.spec).read_text())["name"]
    out = Path(args.out or tempfile.mkdtemp(prefix="image-quality-"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gansweep-image-quality-") as tmp:
        folder = Path(tmp)
        stores = ["--storage", f"sqlite:///{folder}/optuna.db",
                  "--tracking-uri", f"sqlite:///{folder}/mlflow.db"]
        sweep_s, _ = gansweep(["launch", args.spec, *stores], folder)
        confirm_s, confirmed = gansweep(["confirm", name, "--top", str(args.top), "--seeds",
                                         str(args.seeds), "--json", *stores], folder)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder}/optuna.db")
        client = mlflow.MlflowClient(f"sqlite:///{folder}/mlflow.db")
        best = study.best_trial
        run = client.get_run(best.user_attrs["gansweep.run_id"])
        parent = client.get_run(run.data.tags["mlflow.parentRunId"])
        grid = client.download_artifacts(run.info.run_id, "samples/final.png", tmp)
        shutil.copy(grid, out / "champion.png")
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
    rows = json.loads(confirmed)["rows"]
    metric = json.loads(confirmed)["metric"]
    logged, floors = run.data.metrics, parent.data.metrics
    best_metrics = {k: logged.get(f"eval/{k}") for k in REPORTED}
    floor = {k: floors.get(f"floor/{k}") for k in REPORTED}
    top = rows[0] if rows else {}
    result = {
        "spec": str(Path(args.spec).relative_to(ROOT)) if args.spec.startswith(str(ROOT))
        else args.spec,
        "metric": metric, "sweep_wall_s": round(sweep_s, 1), "confirm_wall_s": round(confirm_s, 1),
        "trials": len(states), "completed": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
        "best_trial": best.number, "best_params": best.params, "best": best_metrics,
        "floor": floor, "confirmed": {"trial": top.get("trial"), "values": top.get("values"),
                                      "mean": top.get("mean"), "std": top.get("std")},
        "champion_grid": str(out / "champion.png"),
    }
    fd_floor = floor["fd"] or math.nan
    result["ratios"] = {
        "best_fd_x_floor": best_metrics["fd"] / fd_floor,
        "confirmed_fd_x_floor": (top.get("mean") or math.nan) / fd_floor
        if metric == "eval/fd" else None,
        "recall_x_floor": best_metrics["recall"] / floor["recall"],
        "class_coverage": best_metrics["class_coverage"],
    }
    result["targets"] = TARGETS
    (out / "image_quality.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"\n{'':<16}{'best':>10}{'floor':>10}{'ratio':>8}")
    for key in REPORTED:
        b, f = best_metrics[key], floor[key]
        ratio = b / f if b is not None and f not in (None, 0) else math.nan
        print(f"{key:<16}{b if b is not None else math.nan:>10.4g}"
              f"{f if f is not None else math.nan:>10.4g}{ratio:>8.2f}")
    if top:
        print(f"confirmed {metric} of trial {top['trial']} on {args.seeds} fresh seeds: "
              f"{top['mean']:.4g} +- {top['std'] or 0:.3g} "
              f"({result['ratios']['confirmed_fd_x_floor'] or math.nan:.2f}x floor)")
    print(f"sweep {sweep_s:.0f} s ({states.count('PRUNED')} of {len(states)} trials pruned), "
          f"confirm {confirm_s:.0f} s; champion grid: {out / 'champion.png'}")


if __name__ == "__main__":
    main()
