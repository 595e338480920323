import time

import pytest
import torch

from trainers import SyntheticTrainer, build_trainer, load_dataset
from trainers.base import Evaluation, build_config
from trainers.synthetic import SyntheticConfig


def expected(x, y, step):
    return (x - 1.0) ** 2 + (y + 0.5) ** 2 + 1.0 / (1.0 + step)


def test_evaluate_follows_the_formula_as_steps_pass():
    trainer = build_trainer("synthetic", {"x": 0.5, "y": 2}, load_dataset("none"), seed=0)
    assert trainer.evaluate().metrics["eval/loss"] == expected(0.5, 2.0, 0)
    metrics = trainer.train_for(7)
    assert trainer.step == 7
    assert metrics == {"train/loss": expected(0.5, 2.0, 7)}
    assert trainer.evaluate() == Evaluation({"eval/loss": expected(0.5, 2.0, 7),
                                             "eval/x_loss": pytest.approx(expected(0.5, -0.5, 7))})


def test_train_for_sleeps_once_for_the_whole_chunk(monkeypatch):
    calls = []
    monkeypatch.setattr(time, "sleep", calls.append)
    SyntheticTrainer({"sleep_s": 0.25}, None, seed=0).train_for(4)
    assert calls == [1.0]


def test_train_for_really_sleeps():
    trainer = SyntheticTrainer({"sleep_s": 0.01}, None, seed=0)
    start = time.perf_counter()
    trainer.train_for(5)
    assert time.perf_counter() - start >= 0.05


def test_state_dict_round_trips_step_and_config():
    trainer = SyntheticTrainer({"x": 3.0}, None, seed=0)
    trainer.train_for(4)
    restored = SyntheticTrainer({"x": 3.0}, None, seed=0)
    restored.load_state_dict(trainer.state_dict())
    assert restored.step == 4
    assert restored.evaluate() == trainer.evaluate()
    with pytest.raises(ValueError, match="config"):
        SyntheticTrainer({"x": 2.0}, None, seed=0).load_state_dict(trainer.state_dict())


def test_has_no_model():
    trainer = SyntheticTrainer({}, None, seed=0)
    evaluation = trainer.evaluate()
    assert evaluation.samples is None and evaluation.image is None
    assert trainer.generator() is None
    assert trainer.z_dim == 0
    assert SyntheticTrainer.DATA_KIND == "none"


def test_build_config_casts_and_rejects():
    config = build_config(SyntheticTrainer, {"x": "1.5", "y": 2}, "synthetic")
    assert config == SyntheticConfig(x=1.5, y=2.0)
    with pytest.raises(ValueError, match="unknown parameter 'z' for synthetic; known: x, y"):
        build_config(SyntheticTrainer, {"z": 1}, "synthetic")
    with pytest.raises(ValueError, match="'sleep_s'"):
        build_config(SyntheticTrainer, {"sleep_s": -1})


def test_builds_no_torch_module():
    # The synthetic trainer must not build modules: it stands in for a GAN in scheduler tests.
    trainer = SyntheticTrainer({}, None, seed=0)
    assert not any(isinstance(v, torch.nn.Module) for v in vars(trainer).values())


def test_fail_at_raises_once_training_reaches_that_step():
    trainer = SyntheticTrainer({"fail_at": 3}, None, seed=0)
    trainer.train_for(2)
    with pytest.raises(RuntimeError, match="step 3"):
        trainer.train_for(2)


@pytest.mark.parametrize("new", [{"x": 1.0, "y": -0.5}, SyntheticConfig(x=3.0)])
def test_the_loss_follows_x_and_y_from_the_step_after_reconfigure(new):
    trainer = SyntheticTrainer({"x": 0.5}, None, seed=0)
    trainer.train_for(3)
    trainer.reconfigure(new)
    x, y = trainer.config.x, trainer.config.y
    assert trainer.step == 3
    assert trainer.evaluate().metrics["eval/loss"] == expected(x, y, 3)
    assert trainer.train_for(2) == {"train/loss": expected(x, y, 5)}
    restored = SyntheticTrainer(new, None, seed=0)  # a PBT member rebuilt from the checkpoint
    restored.load_state_dict(trainer.state_dict())
    assert restored.step == 5 and restored.evaluate() == trainer.evaluate()


@pytest.mark.parametrize("field, value", [("sleep_s", 0.5), ("nan_at", 4), ("fail_at", 9)])
def test_reconfigure_refuses_anything_but_x_and_y_naming_the_field(field, value):
    trainer = SyntheticTrainer({"x": 0.5}, None, seed=0)
    with pytest.raises(ValueError, match=rf"^synthetic\.{field}: cannot change mid-run "
                                         r"\(mutable: x, y\)$"):
        trainer.reconfigure({"x": 2.0, field: value})
    assert trainer.config == SyntheticConfig(x=0.5)
