"""Image quality as a user gets it: the digits sweep as shipped, then its best configs confirmed.

Runs `gansweep launch search_spaces/digits-dcgan.yaml` in a fresh folder (its own local Ray, sqlite
stores: start-up included in the wall time), then `gansweep confirm` of the top configs on fresh
seeds. Prints, against the data's own floors (train against held-out, on the parent run): the best
trial's FD, KID, precision, recall, coverage and class coverage; the confirmed mean +- std of the
objective; the sweep's wall time and trials pruned; what the sample metrics add to one
evaluation's time (the champion's config, alternated with and without). JSON, then a short
table. The champion's final sample grid is copied beside the JSON (`--out`), to be looked at.

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
           "class_coverage": 1.0, "wall_s": 900, "metric_cost_added": 0.15}


def fixed_params(spec: str) -> dict:
    import yaml

    return yaml.safe_load(Path(spec).read_text()).get("fixed") or {}


def eval_samples(spec: str) -> int:
    import yaml

    return int((yaml.safe_load(Path(spec).read_text())["budget"]).get("eval_samples", 1000))


def gansweep(args: list[str], cwd: Path) -> tuple[float, str]:
    """Run the CLI as a user does; its wall time and stdout (stderr passes through)."""
    start = time.perf_counter()
    done = subprocess.run([GANSWEEP, *args], cwd=cwd, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    if done.returncode != 0:
        sys.exit(f"gansweep {' '.join(args)} exited {done.returncode}")
    return time.perf_counter() - start, done.stdout


def metric_cost(params: dict, eval_samples: int, repeats: int = 15) -> dict:
    """Seconds of one evaluation of a trainer built from `params` on digits16 (generate
    `eval_samples` images, then score them), with and without the sample metrics (KID,
    precision/recall, density/coverage), alternated `repeats` times; medians."""
    import statistics

    import torch

    import trainers.feature_net as feature_net
    from trainers import build_trainer, load_dataset
    from trainers.feature_net import feature_net_state, fit_feature_net
    from trainers.image_task import ImageTask

    torch.set_num_threads(1)  # as a trial's actor with cpus_per_trial 1
    data = load_dataset("digits16")
    state = feature_net_state(fit_feature_net(data.train, data.train_labels, data.n_classes))
    task = ImageTask(data, state, None, eval_samples)
    trainer = build_trainer("dcgan", params, task, 0)
    task.evaluator()  # built once per process in a trial too
    full, without = [], []
    real = feature_net.sample_metrics
    for _ in range(repeats):
        for times, metrics in ((full, real), (without, lambda r, f: {})):
            feature_net.sample_metrics = metrics
            start = time.perf_counter()
            task.evaluate_images(trainer.evaluate().samples)
            times.append(time.perf_counter() - start)
    feature_net.sample_metrics = real
    a, b = statistics.median(full), statistics.median(without)
    return {"eval_s": round(a, 4), "eval_without_sample_metrics_s": round(b, 4),
            "added": round((a - b) / b, 4)}


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

    from orchestrator.layout import FINAL_SAMPLES, RUN_ATTR, TAG_PARENT_RUN

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
        run = client.get_run(best.user_attrs[RUN_ATTR])
        parent = client.get_run(run.data.tags[TAG_PARENT_RUN])
        grid = client.download_artifacts(run.info.run_id, FINAL_SAMPLES, tmp)
        shutil.copy(grid, out / "champion.png")
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        try:  # which dimensions moved the objective (Optuna's fANOVA on the completed trials)
            importances = {k: round(v, 3)
                           for k, v in optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError) as exc:  # too few trials, or one parameter
            importances = {"unavailable": str(exc)}
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
        "champion_grid": str(out / "champion.png"), "importances": importances,
    }
    fd_floor = floor["fd"] or math.nan
    result["ratios"] = {
        "best_fd_x_floor": best_metrics["fd"] / fd_floor,
        "confirmed_fd_x_floor": (top.get("mean") or math.nan) / fd_floor
        if metric == "eval/fd" else None,
        "recall_x_floor": best_metrics["recall"] / floor["recall"],
        "class_coverage": best_metrics["class_coverage"],
    }
    result["metric_cost"] = metric_cost(best.params | fixed_params(args.spec),
                                        eval_samples(args.spec))
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
    cost = result["metric_cost"]
    print(f"one evaluation {cost['eval_s']:.3f} s, {cost['added']:.1%} of it added by KID, "
          f"precision/recall and density/coverage")
    print(f"sweep {sweep_s:.0f} s ({states.count('PRUNED')} of {len(states)} trials pruned), "
          f"confirm {confirm_s:.0f} s; champion grid: {out / 'champion.png'}")


if __name__ == "__main__":
    main()
