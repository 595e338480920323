"""The GAN-health rules as tables: pure functions of a trial's evaluations, no Ray or storage."""

from __future__ import annotations

import pytest

from orchestrator.driver.health import History, Point, point, verdict
from orchestrator.errors import SpecError
from orchestrator.layout import reason_kind
from orchestrator.spec.health import Collapse, DWins, HealthSpec, Stagnation
from orchestrator.spec.sweep import SweepSpec
from tests.conftest import SYNTHETIC

STEPS = 1000  # the trial's budget: warm-ups 250 (collapse, d_wins) and 500 (stagnation)
RULES = HealthSpec()  # the defaults


def cov(*values: float, start: int = 100, ref: float = 1.0) -> History:
    """Evaluations every 100 steps with these eval/coverage values (objective = coverage)."""
    return History(tuple(Point(start + 100 * i, v, (("eval/coverage", v, ref),))
                         for i, v in enumerate(values)))


def acc(*pairs: tuple[float, float], start: int = 300) -> History:
    """Evaluations every 100 steps with (D's lower accuracy, G's loss)."""
    return History(tuple(Point(start + 100 * i, 0.5, (), a, g) for i, (a, g) in enumerate(pairs)))


def objective(*values: float, start: int = 100) -> History:
    return History(tuple(Point(start + 100 * i, v) for i, v in enumerate(values)))


CASES = [  # (case, history, sweep_best, maximize, rule expected to prune or None)
    # mode collapse: every diversity metric under a quarter of the data's, 3 times in a row
    ("collapsed 3 times after the warm-up", cov(0.9, 0.9, 0.1, 0.1, 0.05), None, True,
     "collapse"),
    ("collapsed twice", cov(0.9, 0.9, 0.9, 0.1, 0.05), None, True, None),
    ("collapsed only in the warm-up", cov(0.0, 0.0, 0.6), None, True, None),
    ("a slow starter that spreads out", cov(0.0, 0.05, 0.3, 0.5), None, True, None),
    ("low but still spreading out", cov(0.0, 0.02, 0.1, 0.15, 0.2), None, True, None),
    ("low and stuck", cov(0.0, 0.02, 0.1, 0.1, 0.1), None, True, "collapse"),
    ("images: recall under a quarter of the floor", History(tuple(
        Point(s, 60.0, (("eval/recall", 0.2, 0.9),)) for s in (300, 400, 500))), None, False,
     "collapse"),
    ("images: recall low but coverage fine", History(tuple(
        Point(s, 60.0, (("eval/recall", 0.2, 0.9), ("eval/coverage", 0.8, 0.95)))
        for s in (300, 400, 500))), None, False, None),
    # the discriminator wins: both accuracies pinned near 1 while G's loss climbs
    ("D wins, G's loss climbs", acc((0.99, 1.0), (1.0, 2.0), (0.995, 4.0)), None, True,
     "d_wins"),
    ("D wins but G's loss falls", acc((0.99, 4.0), (1.0, 2.0), (0.995, 1.0)), None, True, None),
    ("D near 1 only twice", acc((0.7, 1.0), (1.0, 2.0), (0.995, 4.0)), None, True, None),
    ("D wins in the warm-up only", acc((1.0, 1.0), (1.0, 2.0), (1.0, 4.0), start=0), None,
     True, None),
    ("no accuracy reported", acc((None, 1.0), (None, 2.0), (None, 4.0)), None, True, None),
    # stagnation: no gain on its own best for 4 evaluations, and it cannot win the sweep
    ("flat since an early best, below the sweep's best",
     objective(0.3, 0.5, 0.4, 0.45, 0.4, 0.42, 0.41), 0.9, True, "stagnation"),
    ("flat, but at the top of the sweep: kept", objective(0.3, 0.9, 0.8, 0.85, 0.8, 0.82, 0.8),
     0.9, True, None),
    ("flat, no trial completed yet", objective(0.3, 0.5, 0.4, 0.45, 0.4, 0.42, 0.41), None,
     True, None),
    ("a healthy slow starter: gains late", objective(0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3), 0.9,
     True, None),  # at twice its pace it reaches 0.9 exactly (0.3 - 0.2 rounds below 0.1)
    ("a slow starter gaining too slowly to matter", objective(0.1, 0.1, 0.1, 0.1, 0.1, 0.12,
                                                             0.14), 0.9, True, "stagnation"),
    ("flat within the warm-up", objective(0.5, 0.4, 0.4, 0.4, 0.4), 0.9, True, None),
    ("minimize: flat since an early low", objective(60, 50, 55, 52, 51, 53, 54), 40.0, False,
     "stagnation"),
    ("minimize: still gaining", objective(60, 58, 56, 54, 52, 50, 48), 40.0, False, None),
]


@pytest.mark.parametrize("history, sweep_best, maximize, expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_health_rules(history, sweep_best, maximize, expected):
    reason = verdict(history, RULES, STEPS, maximize, sweep_best)
    assert (reason and reason_kind(reason)) == expected, reason


def test_min_delta_small_gains_do_not_count_as_progress():
    creeping = objective(0.30, 0.40, 0.401, 0.402, 0.403, 0.404, 0.405)
    assert verdict(creeping, RULES, STEPS, True, 0.9) is None  # min_delta 0: each gain counts
    strict = HealthSpec(None, None, Stagnation(min_delta=0.01))
    assert reason_kind(verdict(creeping, strict, STEPS, True, 0.9)) == "stagnation"


PACE = HealthSpec(None, None, Stagnation(patience=2, warmup=0.25, pace=2.0))
PACE_CASES = [
    # grid25's failures and late bloomers (benchmarks/spaces/grid25-wide.yaml, seed 0), their
    # scores every 100 steps of 1,000 here: warm-up 250, twice the fastest gain so far
    ("blurry all along, creeping: 0.009 at twice its pace cannot reach 0.99",
     objective(0.001, 0.006, 0.001, 0.009), 0.99, True, "stagnation"),
    ("a steady climber from 0.17 (ended 0.995, the sweep's best)",
     objective(0.168, 0.21, 0.374), 0.99, True, None),
    ("a late climber still far off, but fast enough at twice its pace",
     objective(0.135, 0.174, 0.319, 0.589), 0.99, True, None),
    ("gaining, but at the top of the sweep: kept", objective(0.5, 0.9, 0.95, 0.96), 0.95, True,
     None),
    ("within the warm-up", objective(0.001, 0.001), 0.99, True, None),
    ("minimize: FD falling too slowly to reach the best",
     objective(300, 295, 292, 290), 60.0, False, "stagnation"),
    ("minimize: FD falling fast enough", objective(300, 250, 200, 150), 60.0, False, None),
]


@pytest.mark.parametrize("history, sweep_best, maximize, expected",
                         [c[1:] for c in PACE_CASES], ids=[c[0] for c in PACE_CASES])
def test_pace_prunes_a_trial_gaining_too_slowly_to_reach_the_sweeps_best(
        history, sweep_best, maximize, expected):
    reason = verdict(history, PACE, STEPS, maximize, sweep_best)
    assert (reason and reason_kind(reason)) == expected, reason
    assert verdict(history, HealthSpec(None, None, Stagnation(patience=2, warmup=0.25, pace=0)),
                   STEPS, maximize, sweep_best) is None  # pace 0: a gaining trial is kept


def test_pace_leaves_a_slow_starter_whose_samples_still_spread_out():
    """grid25's late bloomer (seed 1, trial 6): a score of 0.001 -> 0.033 while its coverage
    went 0.04 -> 0.2; it ended at 0.984. Pruned once its coverage stops setting new highs."""
    def bloomer(*pairs):
        return History(tuple(Point(100 * (i + 1), v, (("eval/coverage", c, 1.0),))
                             for i, (v, c) in enumerate(pairs)))

    spreading = bloomer((0.001, 0.04), (0.001, 0.04), (0.033, 0.2), (0.04, 0.3))
    assert verdict(spreading, PACE, STEPS, True, 0.99) is None
    stuck = bloomer((0.001, 0.04), (0.001, 0.04), (0.033, 0.2), (0.04, 0.15))
    assert reason_kind(verdict(stuck, PACE, STEPS, True, 0.99)) == "stagnation"


def test_pace_leaves_no_gain_at_all_to_patience():
    """A trial that has not gained since its first evaluation is judged by `patience` (4 here),
    not by its pace of 0: two flat evaluations are not enough; with patience 1, one is."""
    flat = History(tuple(Point(s, 0.5) for s in (600, 700, 800)))
    assert verdict(flat, RULES, STEPS, True, 0.9) is None
    worse_fd = History(tuple(Point(s, v) for s, v in ((600, 100.0), (700, 110.0), (800, 120.0))))
    assert verdict(worse_fd, RULES, STEPS, False, 50.0) is None
    quick = HealthSpec(None, None, Stagnation(patience=1, warmup=0.0, pace=0))
    assert reason_kind(verdict(History((Point(500, 0.5), Point(600, 0.4))), quick, STEPS, True,
                               0.9)) == "stagnation"


def test_the_pace_reason_says_how_far_it_would_get():
    reason = verdict(objective(0.001, 0.006, 0.001, 0.009), PACE, STEPS, True, 0.99)
    assert reason == ("stagnation: even at 2x its fastest gain so far (0.05 per 1000 steps, at "
                      "step 200) it would reach 0.069 by step 1000, short of the sweep's best "
                      "0.99")


def test_a_rule_turned_off_never_prunes_and_the_reason_names_the_evidence():
    collapsed = cov(0.9, 0.9, 0.1, 0.1, 0.05)
    assert verdict(collapsed, HealthSpec(collapse=None), STEPS, True, None) is None
    reason = verdict(collapsed, HealthSpec(), STEPS, True, None)
    assert reason == ("collapse: samples under 0.25x the data's diversity for 3 evaluations: "
                      "eval/coverage 0.05 (the data's 1) at step 500")


def test_point_reads_diversity_against_the_floors_and_the_lower_d_accuracy():
    p = point(500, {"eval/fd": 80.0, "eval/recall": 0.3, "eval/coverage": float("nan")},
              {"train/d_real_acc": 0.9, "train/d_fake_acc": 0.7, "train/g_loss": 2.0},
              "eval/fd", {"eval/recall": 0.85})
    assert p == Point(500, 80.0, (("eval/recall", 0.3, 0.85),), 0.7, 2.0)
    assert point(5, {}, {"train/d_real_acc": 0.9}, None, {}).d_acc is None  # one of two


SPEC = SYNTHETIC


@pytest.mark.parametrize("health, expected", [
    ("", HealthSpec()),
    ("health: true\n", HealthSpec()),
    ("health: false\n", HealthSpec.off()),
    ("health: {stagnation: false, collapse: {below: 0.1}}\n",
     HealthSpec(Collapse(below=0.1), DWins(), None)),
    ("health: {d_wins: {accuracy: 0.99, evals: 5}}\n",
     HealthSpec(d_wins=DWins(accuracy=0.99, evals=5))),
])
def test_the_spec_tunes_or_turns_off_each_rule(health, expected):
    assert SweepSpec.parse(SPEC + health).health == expected


@pytest.mark.parametrize("health, message", [
    ("health: {mode_collapse: {}}", "spec.yaml: health.mode_collapse: unknown health rule "
                                    "(known: collapse, d_wins, stagnation)"),
    ("health: {stagnation: {patience: 0}}",
     "spec.yaml: health.stagnation.patience: must be >= 1 (evaluations), got 0"),
    ("health: {collapse: {below: 2}}", "spec.yaml: health.collapse.below: must be in [0.0, "
                                       "1.0], got 2"),
    ("health: {d_wins: {evals: 2.5}}", "spec.yaml: health.d_wins.evals: must be an integer, "
                                       "got 2.5"),
    ("health: {collapse: {after: 3}}", "spec.yaml: health.collapse.after: unknown field "
                                       "(known: below, evals, warmup)"),
    ("health: sometimes", "spec.yaml: health: must be true, false or a mapping of rules"),
])
def test_bad_health_settings_are_refused_naming_the_field(health, message):
    with pytest.raises(SpecError) as err:
        SweepSpec.parse(SPEC + health + "\n", source="spec.yaml")
    assert str(err.value).startswith(message)
