"""Search-space parsing and suggestion, on real in-memory Optuna studies."""

import optuna
import pytest

from orchestrator.errors import FieldError
from orchestrator.spec.space import parse_space
from orchestrator.study.samplers import suggest_all

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "depth": {"type": "int", "low": 1, "high": 4, "step": 1},
    "beta1": {"type": "float", "low": 0.0, "high": 0.9, "step": 0.1},
    "loss": {"type": "categorical", "choices": ["ns", "wgan_gp"]},
    "gp_weight": {"type": "float", "low": 1.0, "high": 10.0, "when": {"loss": "wgan_gp"}},
}


def test_conditional_parameter_exists_only_when_its_condition_holds():
    params = parse_space(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = []
    for _ in range(30):
        trial = study.ask()
        chosen = suggest_all(params, trial)
        seen.append(chosen)
        assert ("gp_weight" in chosen) == (chosen["loss"] == "wgan_gp")
        assert 1e-4 <= chosen["lr"] <= 1e-2 and chosen["depth"] in range(1, 5)
        assert abs(chosen["beta1"] * 10 - round(chosen["beta1"] * 10)) < 1e-9
        study.tell(trial, chosen["lr"])
    assert {c["loss"] for c in seen} == {"ns", "wgan_gp"}


@pytest.mark.parametrize("space, path, message", [
    ({"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "space.lr.low",
     "must be > 0 with log: true"),
    ({"lr": {"type": "float", "low": 2.0, "high": 1.0}}, "space.lr.high", "must be >= low"),
    ({"lr": {"type": "float", "low": -2.0, "high": 2.0, "step": 5.0}}, "space.lr.step",
     "5.0 is wider than the range -2.0 to 2.0: the parameter would only ever be -2.0"),
    ({"lr": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.3}}, "space.lr.step",
     "high - low (1.0) is not a multiple of 0.3: Optuna would never reach 1.0; make high 0.9"),
    ({"n": {"type": "int", "low": 1, "high": 10, "step": 4}}, "space.n.step",
     "high - low (9) is not a multiple of 4: Optuna would never reach 10; make high 9"),
    ({"lr": {"type": "flot", "low": 0.1, "high": 1.0}}, "space.lr.type", "must be one of"),
    ({"lr": {"type": "float", "low": 0.1, "high": 1.0, "lgo": True}}, "space.lr.lgo",
     "unknown field"),
    ({"a": {"type": "categorical", "choices": []}}, "space.a.choices", "non-empty"),
    ({"a": {"type": "float", "low": 1, "high": 2, "when": {"b": "x"}}}, "space.a.when.b",
     "defined above"),
    ({"b": {"type": "categorical", "choices": ["x"]},
      "a": {"type": "float", "low": 1, "high": 2, "when": {"b": "y"}}}, "space.a.when.b",
     "not one of"),
    ({"n": {"type": "int", "low": 1.5, "high": 3}}, "space.n.low", "must be an integer"),
])
def test_bad_parameter_names_its_field(space, path, message):
    with pytest.raises(FieldError) as err:
        parse_space(space)
    assert err.value.path == path
    assert message in err.value.message
