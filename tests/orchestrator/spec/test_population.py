"""The `scheduler:` section (population-based training) is validated with the rest of the spec:
defaults filled in, and each bad value one line naming the field."""

import pytest

from orchestrator.spec.population import PopulationSpec
from orchestrator.spec.sweep import SpecError, SweepSpec
from tests.conftest import RING8_TINY

SCHEDULER = "{name: pbt, population: 8, interval: 500}"


def _text(scheduler: str = SCHEDULER, budget: str = "", extra: str = "",
          space: str = "x: {type: float, low: -2.0, high: 2.0}\n  y: {type: float, low: -2.0, "
                       "high: 2.0}") -> str:
    """A synthetic sweep of 1000 steps evaluated every 100, with this scheduler."""
    return (f"name: pbt\ndataset: none\ntrainer: synthetic\n"
            f"objective: {{metric: eval/loss, direction: minimize}}\n"
            f"budget: {{steps: 1000, eval_every: 100, log_every: 50{budget}}}\n"
            f"fixed: {{sleep_s: 0.0}}\nspace:\n  {space}\nscheduler: {scheduler}\n{extra}")


def _parse(text: str) -> SweepSpec:
    return SweepSpec.parse(text, "spec.yaml")


@pytest.mark.parametrize("text, expected", [
    (_text(), PopulationSpec(8, 500, 0.25, (0.8, 1.2), 0.25, ("x",))),  # mutable: what can change
    (_text("{name: pbt, population: 4, interval: 200, quantile: 0.5, perturb: [0.5, 2], "
           "resample_probability: 0, mutable: [x]}", budget=", trials: 4"),
     PopulationSpec(4, 200, 0.5, (0.5, 2.0), 0.0, ("x",))),
    (_text("{name: PBT, population: 2, interval: 900, perturb: [1, 1.5], "
           "resample_probability: 1}", extra="pruner: none\n"),
     PopulationSpec(2, 900, 0.25, (1.0, 1.5), 1.0, ("x",))),
], ids=["defaults", "every field", "edges"])
def test_a_good_scheduler_is_parsed_with_its_defaults(pbt_synthetic, text, expected):
    spec = _parse(text)
    assert spec.scheduler == expected
    assert spec.budget.trials == expected.population  # the population is the sweep's trials
    assert spec.pruner.name == "none"


@pytest.mark.parametrize("text, expected", [
    (_text("pbt"), "scheduler: must be a mapping like {name: pbt, population: 8, interval: 500}, "
                   "got 'pbt'"),
    (_text("{population: 8, interval: 500}"), "scheduler.name: required (known: pbt)"),
    (_text("{name: asha, population: 8, interval: 500}"),
     "scheduler.name: must be one of pbt, got 'asha'"),
    (_text("{name: pbt, population: 8, interval: 500, colour: red}"),
     "scheduler.colour: unknown field (known: name, population, interval, quantile, perturb, "
     "resample_probability, mutable)"),
    (_text("{name: pbt, interval: 500}"), "scheduler.population: required"),
    (_text("{name: pbt, population: 1, interval: 500}"), "scheduler.population: must be >= 2, "
                                                         "got 1"),
    (_text("{name: pbt, population: 2.5, interval: 500}"),
     "scheduler.population: must be an integer, got 2.5"),
    (_text("{name: pbt, population: 8}"), "scheduler.interval: required"),
    (_text("{name: pbt, population: 8, interval: 0}"), "scheduler.interval: must be >= 1, got 0"),
    (_text("{name: pbt, population: 8, interval: 150}"),
     "scheduler.interval: must be a multiple of budget.eval_every (100), got 150"),
    (_text("{name: pbt, population: 8, interval: 1000}"),
     "scheduler.interval: must be < budget.steps (1000): no exploit round would happen"),
    (_text("{name: pbt, population: 8, interval: 500, quantile: 0.7}"),
     "scheduler.quantile: must be in (0, 0.5], got 0.7"),
    (_text("{name: pbt, population: 8, interval: 500, quantile: 0}"),
     "scheduler.quantile: must be in (0, 0.5], got 0"),
    (_text("{name: pbt, population: 8, interval: 500, quantile: .nan}"),
     "scheduler.quantile: must be a finite number, got nan"),
    (_text("{name: pbt, population: 8, interval: 500, perturb: [-0.5, 1.2]}"),
     "scheduler.perturb: factors must be > 0, got -0.5"),
    (_text("{name: pbt, population: 8, interval: 500, perturb: [0, 1.2]}"),
     "scheduler.perturb: factors must be > 0, got 0"),
    (_text("{name: pbt, population: 8, interval: 500, perturb: [0.8, .inf]}"),
     "scheduler.perturb: factors must be finite numbers, got inf"),
    (_text("{name: pbt, population: 8, interval: 500, perturb: [0.8, twice]}"),
     "scheduler.perturb: factors must be finite numbers, got 'twice'"),
    (_text("{name: pbt, population: 8, interval: 500, perturb: []}"),
     "scheduler.perturb: must be a non-empty list of factors like [0.8, 1.2], got []"),
    (_text("{name: pbt, population: 8, interval: 500, perturb: 1.2}"),
     "scheduler.perturb: must be a non-empty list of factors like [0.8, 1.2], got 1.2"),
    (_text("{name: pbt, population: 8, interval: 500, perturb: [1, 1.0]}"),
     "scheduler.perturb: every factor is 1: explore would change nothing"),
    (_text("{name: pbt, population: 8, interval: 500, resample_probability: 1.5}"),
     "scheduler.resample_probability: must be in [0, 1], got 1.5"),
    (_text("{name: pbt, population: 8, interval: 500, resample_probability: -0.1}"),
     "scheduler.resample_probability: must be in [0, 1], got -0.1"),
    (_text("{name: pbt, population: 8, interval: 500, mutable: [lr_x]}"),
     "scheduler.mutable: lr_x is not a searched parameter (space: x, y)"),
    (_text("{name: pbt, population: 8, interval: 500, mutable: [sleep_s]}"),
     "scheduler.mutable: sleep_s is fixed (fixed.sleep_s): explore changes only parameters "
     "searched in space"),
    (_text("{name: pbt, population: 8, interval: 500, mutable: [y]}"),  # like an architecture
     "scheduler.mutable: y cannot change mid-run in trainer synthetic (it can change: x)"),
    (_text("{name: pbt, population: 8, interval: 500, mutable: [x, x]}"),
     "scheduler.mutable: names x twice"),
    (_text("{name: pbt, population: 8, interval: 500, mutable: []}"),
     "scheduler.mutable: must be a non-empty list of space parameter names, got []"),
    (_text("{name: pbt, population: 8, interval: 500, mutable: x}"),
     "scheduler.mutable: must be a non-empty list of space parameter names, got 'x'"),
    (_text(space="y: {type: float, low: -2.0, high: 2.0}"),
     "scheduler.mutable: no searched parameter can change mid-run in trainer synthetic (it can "
     "change: x)"),
    (_text(budget=", trials: 16"),
     "budget.trials: a pbt sweep trains scheduler.population (8) members, got 16"),
    (_text(extra="pruner: median\n"),
     "pruner: a pbt sweep replaces its worst members by exploit; leave out the pruner"),
    (_text(extra="pruner: {name: hyperband, min_resource: 100}\n"),
     "pruner: a pbt sweep replaces its worst members by exploit; leave out the pruner"),
    (_text().replace("objective: {metric: eval/loss, direction: minimize}",
                     "objectives: [{metric: eval/loss, direction: minimize}, "
                     "{metric: eval/x_loss, direction: minimize}]"),
     "scheduler: pbt ranks members by one objective, and this sweep has 2"),
])
def test_a_bad_scheduler_is_one_line_naming_the_field(pbt_synthetic, text, expected):
    with pytest.raises(SpecError) as err:
        _parse(text)
    assert str(err.value) == f"spec.yaml: {expected}"


def test_a_trainer_without_pbt_support_is_refused(pbt_synthetic, monkeypatch):
    monkeypatch.setattr(pbt_synthetic, "MUTABLE", ())
    with pytest.raises(SpecError) as err:
        _parse(_text())
    assert str(err.value) == ("spec.yaml: scheduler: trainer synthetic does not support pbt: it "
                              "declares no MUTABLE parameters with a reconfigure(config) method "
                              "(see trainers/base.py)")


def test_without_a_scheduler_trials_stay_required():
    text = _text().replace("scheduler: " + SCHEDULER + "\n", "")
    assert _parse(text.replace("log_every: 50", "log_every: 50, trials: 3")).scheduler is None
    with pytest.raises(SpecError) as err:
        _parse(text)
    assert str(err.value) == "spec.yaml: budget.trials: required"


def test_trials_flag_must_be_the_population(pbt_synthetic):
    spec = _parse(_text())
    assert spec.with_trials(8) == spec and spec.with_trials(None) == spec
    with pytest.raises(SpecError) as err:
        spec.with_trials(16)
    assert str(err.value) == "--trials: a pbt sweep trains scheduler.population (8) members"


# The built-in trainers' own MUTABLE (trainers/synthetic.py, trainers/adversarial.py)
def test_the_synthetic_trainer_can_change_x_and_y():
    assert _parse(_text()).scheduler.mutable == ("x", "y")


def test_mlp_gan_explores_learning_rates_and_refuses_its_architecture():
    text = RING8_TINY + "scheduler: {name: pbt, population: 4, interval: 20}\n"
    mutable = _parse(text).scheduler.mutable
    assert "lr_g" in mutable and "g_depth" not in mutable
    with pytest.raises(SpecError) as err:
        _parse(text.replace("interval: 20}", "interval: 20, mutable: [lr_g, g_depth]}"))
    message = str(err.value)
    assert message.startswith("spec.yaml: scheduler.mutable: g_depth cannot change mid-run in "
                              "trainer mlp_gan (it can change: "), message
    assert "lr_g" in message and "lr_d" in message
