"""GAN health: is a running trial failing in a way GANs fail? Pure functions, no I/O; `decide`
asks `verdict` after every chunk, before any Optuna pruner (the rules and their defaults:
orchestrator/spec/health.py).

A trial's history is the few numbers the rules read from each evaluation (`Point`), folded in
by `History.add`. It lives on the driver with the trial; a driver that resumes a trial starts its
history afresh (a rule then waits for `evals` new evaluations: it prunes later, never wrongly).

  rule         reads                                            prunes when (after its warm-up)
  collapse     eval/coverage, eval/recall vs the data's value   every one under `below` x the
                                                                data's, `evals` times in a row,
                                                                and no higher at the last
  d_wins       train/d_real_acc, train/d_fake_acc, train/g_loss both >= `accuracy`, `evals` times
                                                                in a row, G's loss higher at the
                                                                last than at the first
  stagnation   the objective, the sweep's best completed value  its best worse than the sweep's
                                                                best, and no gain on it for
                                                                `patience` evals, or gaining so
                                                                slowly that at `pace` x its
                                                                fastest rate it ends short of
                                                                it (diversity not at a new high)

Divergence (a NaN) is not here: the actor reports it and the trial fails (decide.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.layout import floor_metric
from orchestrator.spec.health import HealthSpec

DIVERSITY = ("eval/coverage", "eval/recall")  # what a collapsed generator loses
D_REAL_ACC, D_FAKE_ACC, G_LOSS = "train/d_real_acc", "train/d_fake_acc", "train/g_loss"
COLLAPSE, D_WINS, STAGNATION = "collapse", "d_wins", "stagnation"  # a reason's first word
MIN_VALUES = 3  # evaluations before stagnation judges a pace (two gains to take the fastest of)


@dataclass(frozen=True)
class Point:
    """What the rules read from one evaluation."""

    step: int
    value: float | None = None  # the objective (None with several objectives)
    diversity: tuple[tuple[str, float, float], ...] = ()  # (metric, value, the data's value)
    d_acc: float | None = None  # the lower of D's accuracy on real and on fake
    g_loss: float | None = None


@dataclass(frozen=True)
class History:
    points: tuple[Point, ...] = ()

    def add(self, point: Point) -> History:
        return History(self.points + (point,))


def references(floors: Mapping[str, float]) -> dict[str, float]:
    """The data's own value of each diversity metric, from the sweep's floors (the parent
    run's floor/ metrics, image data only); `point` takes 1.0 for the others."""
    return {m: floors[floor_metric(m)] for m in DIVERSITY if floor_metric(m) in floors}


def point(step: int, metrics: Mapping[str, float], train: Mapping[str, float],
          objective: str | None, references: Mapping[str, float]) -> Point:
    """The rules' view of one chunk: its eval metrics, the chunk's train metrics and the data's
    own value of each diversity metric (`references`; 1.0 where the sweep has no floor)."""
    diversity = tuple((m, metrics[m], references.get(m, 1.0)) for m in DIVERSITY
                      if _finite(metrics.get(m)))
    accs = [train.get(D_REAL_ACC), train.get(D_FAKE_ACC)]
    return Point(step, metrics.get(objective) if objective else None, diversity,
                 min(accs) if all(_finite(a) for a in accs) else None,
                 train.get(G_LOSS) if _finite(train.get(G_LOSS)) else None)


def verdict(history: History, rules: HealthSpec, steps: int, maximize: bool,
            sweep_best: float | None) -> str | None:
    """Why the trial should stop now ("collapse: ...", "d_wins: ...", "stagnation: ..."), or
    None while it is healthy. `steps`: the trial's budget; `sweep_best`: the best completed
    trial's value so far (None: none yet)."""
    if not history.points:
        return None
    for check in (_collapse, _d_wins, _stagnation):
        reason = check(history.points, rules, steps, maximize, sweep_best)
        if reason:
            return reason
    return None


def _after(points: tuple[Point, ...], warmup: float, steps: int) -> tuple[Point, ...]:
    return tuple(p for p in points if p.step > warmup * steps)


def _collapse(points, rules: HealthSpec, steps, maximize, sweep_best) -> str | None:
    rule = rules.collapse
    if rule is None:
        return None
    tail = _after(points, rule.warmup, steps)[-rule.evals:]
    if len(tail) < rule.evals or not all(
            p.diversity and all(v < rule.below * ref for _, v, ref in p.diversity) for p in tail):
        return None
    if _spread(tail[-1]) > _spread(tail[0]):  # low but spreading out: a slow start, not collapse
        return None
    last = ", ".join(f"{m} {v:.3g} (the data's {ref:.3g})" for m, v, ref in tail[-1].diversity)
    return (f"{COLLAPSE}: samples under {rule.below:g}x the data's diversity for "
            f"{rule.evals} evaluations: {last} at step {tail[-1].step}")


def _spread(p: Point) -> float:
    """The point's diversity as the best share of the data's it reaches over its metrics."""
    return max(v / ref if ref > 0 else v for _, v, ref in p.diversity)


def _d_wins(points, rules: HealthSpec, steps, maximize, sweep_best) -> str | None:
    rule = rules.d_wins
    if rule is None:
        return None
    tail = _after(points, rule.warmup, steps)[-rule.evals:]
    if len(tail) < rule.evals or any(p.d_acc is None or p.d_acc < rule.accuracy for p in tail):
        return None
    first, last = tail[0].g_loss, tail[-1].g_loss
    if first is None or last is None or last <= first:
        return None
    return (f"{D_WINS}: D tells real from fake with accuracy >= {rule.accuracy:g} for "
            f"{rule.evals} evaluations while {G_LOSS} climbed {first:.3g} -> {last:.3g} "
            f"(step {tail[-1].step})")


def _stagnation(points, rules: HealthSpec, steps, maximize, sweep_best) -> str | None:
    rule = rules.stagnation
    if rule is None or sweep_best is None or points[-1].step <= rule.warmup * steps:
        return None
    values = [(p.step, p.value) for p in points if _finite(p.value)]
    if len(values) < min(MIN_VALUES, rule.patience + 1):
        return None
    sign = 1.0 if maximize else -1.0
    gained_at, best = 0, values[0][1]  # the last evaluation that beat the best by min_delta
    for i, (_, v) in enumerate(values[1:], 1):
        if sign * (v - best) > rule.min_delta:
            gained_at, best = i, v
    since = len(values) - 1 - gained_at
    top = max(sign * v for _, v in values) * sign  # its best, small gains included
    if sign * (top - sweep_best) >= 0:  # a plateau at the top: kept
        return None
    if since >= rule.patience:  # (since < len(values): it needs patience + 1 values)
        return (f"{STAGNATION}: no gain on its best {top:.4g} for {since} evaluations "
                f"(since step {values[gained_at][0]}); the sweep's best is {sweep_best:.4g}")
    if len(values) < MIN_VALUES or _spreading(points):  # a slow starter still reaching new
        return None                                       # modes is left to train
    return _too_slow(values, rule, steps, sign, top, sweep_best)


def _too_slow(values, rule, steps, sign, top, sweep_best) -> str | None:
    """Still gaining, but too slowly to matter: even gaining at `pace` times the fastest rate
    its best has risen between two evaluations, it would end its budget short of the sweep's
    best."""
    now = values[-1][0]
    if rule.pace <= 0 or now >= steps:
        return None
    rate, best, fastest = 0.0, values[0][1], values[0][0]  # per step, in the better direction
    for (s0, _), (s1, v) in zip(values, values[1:], strict=False):
        if sign * (v - best) > 0 and s1 > s0 and sign * (v - best) / (s1 - s0) > rate:
            rate, fastest = sign * (v - best) / (s1 - s0), s1
        best = v if sign * (v - best) > 0 else best
    if rate <= 0:  # no gain at all: `patience` alone judges that
        return None
    reach = top + sign * rule.pace * rate * (steps - now)
    if sign * (reach - sweep_best) >= -1e-9 * max(1.0, abs(sweep_best)):  # reaches it (rounding)
        return None
    return (f"{STAGNATION}: even at {rule.pace:g}x its fastest gain so far ({rate * 1000:.3g} "
            f"per 1000 steps, at step {fastest}) it would reach {reach:.4g} by step {steps}, "
            f"short of the sweep's best {sweep_best:.4g}")


def _spreading(points) -> bool:
    """Its samples' diversity at a new high at the last evaluation (GANs often cover the data
    before their objective moves: grid25's late bloomers went 0.04 -> 0.2 -> 0.6 coverage at a
    score of 0.001 -> 0.03 -> 0.3)."""
    seen = [_spread(p) for p in points if p.diversity]
    return len(seen) >= 2 and points[-1].diversity != () and seen[-1] > max(seen[:-1])


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
