"""Would more trials help? The expected best of a sweep of n trials, from the trials a sweep
completed (Dodge et al. 2019, "Show Your Work": expected validation performance). numpy only,
so `status` and the page compute it without Ray, MLflow or torch; tested as tables.

What it assumes: the completed trials' values are independent draws from one distribution, that
of "a trial of this space" (i.i.d.). That is true of random search. TPE draws its later trials
where earlier ones did well, so they are better than i.i.d. draws: for TPE the curve is
pessimistic, a floor under what more trials find. Pruned and failed trials are left out (a
pruned trial's value is of a shorter run), so it speaks of trials that run to the end; so is
any value that is not finite (it never ranks: orchestrator/study/ranking.py).

Two parts, N being the complete trials:

- n = 1..N, "a sweep of n trials": Dodge et al.'s exact expected maximum of n draws from the
  empirical distribution, E[max_n] = sum_i v_(i) ((i/N)^n - ((i-1)/N)^n), v sorted from worst
  to best (a minimized objective is negated, then back), with a bootstrap band (the N values
  resampled, the formula recomputed; a confidence band of that mean). n = 1 gives the mean,
  large n the best. Beside the sweep's best-so-far it says whether the sweep was lucky.
- n = N..2N, "this sweep, continued": the formula works for any n, but the empirical
  distribution never exceeds the best value seen, so past N it only says "never better than
  now", a lower bound and no prediction (a 40-trial check finds the best of 40 above every
  such band whenever the last 20 trials beat the first 20: half the time). So past N it
  predicts the sweep's best after k = n - N more trials. Whether one of them beats the best now
  needs no model: for i.i.d. trials the best of N + k is as likely any one of them, so with
  probability k / (N + k) (1/2 at 2N). By how much is what needs a model: an exponential tail
  (peaks over threshold, a generalized Pareto of shape 0: the tail of normal, gamma, logistic
  values), its scale the mean excess of the best TAIL_SHARE of the values over the next one,
  refitted on each bootstrap resample; past the best now it is memoryless, so a new best is the
  best now plus Exp(scale), the largest of those that beat it. The band is a prediction band of
  the sweep's best (its worse end is the best now: more trials never lose it, and at most half
  the time do they beat it), and the mean minus the best now is what k more trials are expected
  to add. The tail stops at the metric's best possible value where BEST_POSSIBLE knows it (a
  score of 1, a KL of 0); where values crowd below a bound it errs wide; a
  heavier tail than exponential (lognormal-like) it makes too narrow. Why not a smoothed
  bootstrap (Gaussian kernels of Silverman's bandwidth): the bandwidth follows the bulk of the
  values, and a sweep's values are mostly failures near one value and a few good trials; on
  grid25 (benchmarks/expected_best.py) its band at 2N ended 0.03 above the best of 20 (0.70)
  where the best of 40 was 0.95.

The resampling is seeded: the same trials give the same page and the same `status` line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LEVEL = 0.90  # the bands: 5th to 95th percentile
RESAMPLES = 1000
SEED = 0
SHOWN_FROM = 3  # complete trials before `status` and the page show it: with 2, a band of 2 values
ASSUMES = "assumes i.i.d. trials, as random search's; TPE's are better: a floor for TPE"
TAIL_SHARE = 0.2  # of the values, the best ones the tail's scale is fitted to
MAX_POINTS = 100  # points of the n = 1..N curve: a 1,000-trial sweep's costs stay small
# The best value a built-in metric can take, by its definition: the tail stops there. Those not
# named have none that is known (a KID can be < 0, density > 1, modes depend on the data).
BEST_POSSIBLE = {"eval/score": 1.0, "eval/high_quality": 1.0, "eval/reverse_kl": 0.0,
                 "eval/class_kl": 0.0, "eval/class_coverage": 1.0, "eval/precision": 1.0,
                 "eval/recall": 1.0, "eval/coverage": 1.0, "eval/fd": 0.0, "eval/fid": 0.0}


@dataclass(frozen=True)
class Curve:
    """The expected best after `trials` trials and its band (low <= mean <= high, in the
    objective's units whatever its direction)."""

    trials: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def at(self, n: int) -> tuple[float, float, float]:
        i = int(np.searchsorted(self.trials, n))
        if i == len(self.trials) or self.trials[i] != n:
            raise KeyError(n)
        return float(self.mean[i]), float(self.low[i]), float(self.high[i])


@dataclass(frozen=True)
class ExpectedBest:
    observed: int  # N: the complete trials it was computed from
    best: float  # their best value
    maximize: bool
    sweep: Curve  # n = 1..N: a sweep of n trials (Dodge et al.), bootstrap band
    more: Curve  # n = N..2N: this sweep continued, prediction band

    def at_double(self) -> tuple[float, float, float]:
        """The expected best at 2x trials and its band."""
        return self.more.at(2 * self.observed)


def expected_max(values: Sequence[float], n: int | Sequence[int]) -> np.ndarray:
    """E[max of n i.i.d. draws] from the empirical distribution of `values` (higher is better),
    for each n: the order statistics weighted by P(the max is the i-th) = (i/N)^n -
    ((i-1)/N)^n. Rows of a 2-D `values` are samples of their own (the bootstrap's)."""
    v = np.sort(np.asarray(values, dtype=float), axis=-1)
    ns = np.atleast_1d(np.asarray(n, dtype=float))
    cdf = np.arange(v.shape[-1] + 1) / v.shape[-1]
    weights = cdf[None, 1:] ** ns[:, None] - cdf[None, :-1] ** ns[:, None]  # len(n) x N
    return v @ weights.T  # (..., len(n))


def tail_size(size: int) -> int:
    """How many of the best values the tail is fitted to: TAIL_SHARE of them, at least 3, and
    one value left below them for a threshold."""
    return max(1, min(size - 1, max(3, math.ceil(TAIL_SHARE * size))))


def expected_best(values: Sequence[float], maximize: bool, best_possible: float | None = None,
                  resamples: int = RESAMPLES, seed: int = SEED,
                  level: float = LEVEL) -> ExpectedBest | None:
    """The expected best for n = 1..2N trials from the N complete trials' `values` (the module's
    doc says how and what it assumes); None below 2 values (no spread to speak of). A new best
    never passes `best_possible` (ignored when it is not on the better side of the values)."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return None
    sign = 1.0 if maximize else -1.0
    v = sign * np.asarray(finite)
    size, best = len(v), float(v.max())
    cap = np.inf if best_possible is None or sign * best_possible < best \
        else sign * best_possible
    rng = np.random.default_rng(seed)
    tails = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    # n = 1..N: the exact formula, and on each resample for its band
    ns = np.unique(np.linspace(1, size, min(size, MAX_POINTS)).round().astype(int))
    boot = v[rng.integers(0, size, size=(resamples, size))]  # resamples x N
    lo, hi = np.percentile(expected_max(boot, ns), tails, axis=0)
    sweep = _curve(ns, expected_max(v, ns), lo, hi, sign)
    # n = N..2N: how far a new best goes, from each resample's exponential tail
    top = np.sort(boot, axis=1)[:, -tail_size(size) - 1:]  # the threshold, then the tail
    scale = (top[:, 1:] - top[:, :1]).mean(axis=1, keepdims=True)  # mean excess: Exp's MLE
    beats = rng.random((resamples, size)) < tail_size(size) / size  # a draw in the tail
    gains = np.minimum(cap, best + scale * rng.standard_exponential((resamples, size)))
    new = np.where(beats, gains, -np.inf)
    reached = np.maximum.accumulate(new, axis=1)  # the best of 1..N new trials, if it beats
    rows = [(best, best, best)] + [_continued(best, reached[:, k - 1], k / (size + k), tails)
                                   for k in range(1, size + 1)]
    mean, lo, hi = np.asarray(rows).T
    more = _curve(np.arange(size, 2 * size + 1), mean, lo, hi, sign)
    return ExpectedBest(size, sign * best, maximize, sweep, more)


def _continued(best: float, new_best: np.ndarray, p_beat: float,
               tails: tuple[float, float]) -> tuple[float, float, float]:
    """Mean and band of the best after k more trials: the best now with probability 1 - p_beat,
    else one of the tail's draws that beat it (`new_best`, -inf where none did). p_beat =
    k / (N + k) is exact for i.i.d. trials whatever their distribution (the best of N + k is as
    likely any one of them); the tail only says by how much. Left to a model alone, a new best
    can come out all but certain (a 5th percentile above the best now), which i.i.d. trials
    never make it."""
    above = new_best[new_best > best]
    if above.size == 0:  # no spread (equal values): nothing beats the best
        return best, best, best
    band = [best if t / 100 <= 1 - p_beat
            else float(np.percentile(above, 100 * (t / 100 - 1 + p_beat) / p_beat))
            for t in tails]
    return (1 - p_beat) * best + p_beat * float(above.mean()), *band


def _curve(ns, mean, lo, hi, sign: float) -> Curve:
    """Back to the objective's units (a minimized objective's band flips)."""
    a, b = sign * np.asarray(lo), sign * np.asarray(hi)
    return Curve(np.asarray(ns), sign * np.asarray(mean), np.minimum(a, b), np.maximum(a, b))


def best_so_far(values: Sequence[float], maximize: bool) -> np.ndarray:
    """The best value after each trial, in the order given (the sweep's order)."""
    v = np.asarray(values, dtype=float)
    return np.maximum.accumulate(v) if maximize else np.minimum.accumulate(v)


def complete_values(trials: Iterable[Any]) -> list[float]:
    """The objective values of the complete trials of a single-objective sweep, in trial order
    (Optuna's FrozenTrials, read by attribute: this module imports no Optuna)."""
    done = [t for t in trials if t.state.name == "COMPLETE" and t.values is not None
            and len(t.values) == 1 and math.isfinite(t.values[0])]
    return [t.values[0] for t in sorted(done, key=lambda t: t.number)]


def shown(trials: Iterable[Any], metric: str, maximize: bool) -> ExpectedBest | None:
    """What `status` and the page show for a single-objective sweep's trials: from SHOWN_FROM
    complete trials on."""
    values = complete_values(trials)
    return expected_best(values, maximize, BEST_POSSIBLE.get(metric)) \
        if len(values) >= SHOWN_FROM else None


def summary_line(found: ExpectedBest) -> str:
    """The line `status` prints and the page shows (ASSUMES beside it): under 80 columns."""
    mean, low, high = found.at_double()
    return (f"expected best at 2x trials ({2 * found.observed}): {mean:.4g} [{low:.4g}, "
            f"{high:.4g}] (now {found.best:.4g})")
