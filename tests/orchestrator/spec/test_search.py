"""Search settings in the spec: objectives, sampler, pruner, enqueue, budget.time."""

import pytest

from orchestrator.spec.search import grid_size, parse_duration
from orchestrator.spec.sweep import SpecError, SweepSpec
from orchestrator.study.samplers import build_sampler
from tests.conftest import SYNTHETIC

MULTI = SYNTHETIC.replace("objective: {metric: eval/loss, direction: minimize}",
                          "objectives:\n  - {metric: eval/loss, direction: minimize}\n"
                          "  - {metric: eval/x_loss, direction: maximize}")


def _load(write_spec, text):
    return SweepSpec.load(write_spec(text, "s.yaml"))






@pytest.mark.parametrize("extra, message", [
    ("pruner: {name: hyperband, min_resourse: 1}\n",
     "s.yaml: pruner.min_resourse: not an option of the hyperband pruner"),
    ("pruner: {name: percentile}\n", "s.yaml: pruner.percentile: percentile: required"),
    ("pruner: {name: median, n_startup_trials: -1}\n", "s.yaml: pruner.median: "),
    ("pruner: {name: hyperband, n_startup_trials: -1}\n",
     "s.yaml: pruner.hyperband: n_startup_trials: must be an int >= 0, got -1"),
    ("pruner: bandit\n", "s.yaml: pruner.name: must be one of"),
    ("pruner: {name: median, metric: 3}\n", "s.yaml: pruner.metric: must be a metric name"),
    ("pruner: {name: none, metric: eval/x_loss}\n",
     "s.yaml: pruner.metric: the none pruner prunes nothing"),
    ("sampler: {name: annealing}\n", "s.yaml: sampler.name: must be one of"),
    ("enqueue: [{x: 9.0}]\n", "s.yaml: enqueue[0].x: 9.0 is outside space.x"),
    ("enqueue: [{z: 1.0}]\n", "s.yaml: enqueue[0].z: not a parameter of space"),
])
def test_bad_search_settings_name_their_field(write_spec, extra, message):
    base = SYNTHETIC  # a spec names each key once: a new sampler replaces the base's
    if extra.startswith("sampler:"):
        base = "".join(line for line in SYNTHETIC.splitlines(keepends=True)
                       if not line.startswith("sampler:"))
    with pytest.raises(SpecError) as err:
        _load(write_spec, base + extra)
    assert str(err.value).startswith(message), str(err.value)




def test_grid_needs_a_finite_space(write_spec):
    with pytest.raises(SpecError, match="s.yaml: space.x: the grid sampler needs a finite space"):
        _load(write_spec, SYNTHETIC.replace("{name: tpe, seed: 0}", "{name: grid}"))


def test_grid_over_steps_and_choices(write_spec):
    text = SYNTHETIC.replace("x: {type: float, low: -2.0, high: 2.0}",
                             "x: {type: float, low: 0.0, high: 1.0, step: 0.25}").replace(
        "y: {type: float, low: -2.0, high: 2.0}", "y: {type: categorical, choices: [0.0, 0.5]}")
    spec = _load(write_spec, text.replace("sampler: {name: tpe, seed: 0}",
                                          "sampler: {name: grid, seed: 0}"))
    assert grid_size(spec.space) == 10
    build_sampler(spec.sampler, spec.space, 2)  # Optuna accepts the grid




@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("2h", 7200), ("1h30m", 5400),
                                           ("90s", 90), (45, 45), ("1.5s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration("budget.time", text) == seconds


@pytest.mark.parametrize("text", ["soon", "30 minutes", "", -5])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="budget.time: must be a duration"):
        parse_duration("budget.time", text)


def test_chunk_timeout_is_a_duration_in_the_budget(tmp_path):
    text = SYNTHETIC.replace("trials: 4", "trials: 4, chunk_timeout: 10m")
    assert SweepSpec.parse(text).budget.chunk_timeout_s == 600
    assert SweepSpec.parse(SYNTHETIC).budget.chunk_timeout_s is None  # from the trial's pace
    for bad in ("0s", "never", "-3"):
        with pytest.raises(SpecError, match="^<spec>: budget.chunk_timeout: must be"):
            SweepSpec.parse(SYNTHETIC.replace("trials: 4", f"trials: 4, chunk_timeout: {bad}"))
