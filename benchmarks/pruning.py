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
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import ray
from _common import grid25_spec, hyperband, run_sweep

from trainers.mixtures import grid25, score_noise
from trainers.mlp_gan import N_EVAL


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
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    pruner = hyperband(args.min_resource, args.reduction_factor, args.bootstrap_count,
                       args.startup_trials, args.prune_metric)
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
    arms = {}
    try:
        for name, arm_pruner in (("none", "none"), ("hyperband", pruner)):
            if name not in args.arms:
                continue
            spec = grid25_spec(f"grid25-pruning-{name}", args.trials, args.steps,
                               args.eval_every, "tpe", args.seed, arm_pruner)
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


if __name__ == "__main__":
    main()
