import copy
import dataclasses
import io
import math
import pickle

import pytest
import torch
from PIL import Image

from trainers import TRAINERS, MLPGANTrainer, PluginError, build_trainer, load_dataset, score
from trainers.base import build_config
from trainers.mixtures import mixture_metrics
from trainers.mlp_gan import MLPGANConfig
from trainers.models import ClusterGenerator, Generator

# Small enough that a few steps take milliseconds; the code paths are the full ones.
TINY = {"g_width": 16, "d_width": 16, "g_depth": 2, "d_depth": 2, "batch_size": 32}


def make(seed=0, data="ring8", **params):
    return MLPGANTrainer({**TINY, **params}, load_dataset(data), seed=seed)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def without_perf(metrics):
    return {k: v for k, v in metrics.items() if not k.startswith("perf/")}


def scored(trainer):
    """What gansweep logs for an evaluation: the trainer's metrics and the PacGAN ones."""
    return score(trainer.evaluate(), trainer.data).metrics


@pytest.mark.parametrize("loss", ["ns", "hinge", "wgan_gp"])
def test_each_loss_trains_with_finite_metrics(loss):
    trainer = make(loss=loss, data="grid25")
    metrics = trainer.train_for(3)
    expected = {"train/d_loss", "train/g_loss", "train/d_real_acc", "train/d_fake_acc",
                "perf/steps_per_s"}
    assert set(metrics) == expected | ({"train/gp"} if loss == "wgan_gp" else set())
    assert all(math.isfinite(v) for v in metrics.values())
    assert trainer.step == 3


def test_r1_penalty_is_trained_and_reported():
    metrics = make(r1_weight=0.1, data="grid25").train_for(3)
    assert math.isfinite(metrics["train/r1"]) and metrics["train/r1"] >= 0


def test_lazy_r1_adds_the_penalty_every_kth_d_step_k_times_as_heavy():
    lazy = make(r1_weight=0.1, r1_every=2, d_steps=1, data="grid25")
    heavy = make(r1_weight=0.2, d_steps=1, data="grid25")  # that penalty on every D step
    lazy.train_for(1)  # D step 0: due, so 2 x 0.1 = 0.2
    heavy.train_for(1)
    assert same_weights(lazy.d, heavy.d)
    plain = copy.deepcopy(lazy)  # the same state, trained on without any penalty
    plain.config = dataclasses.replace(lazy.config, r1_weight=0.0)
    lazy.train_for(1)  # D step 1: not due
    plain.train_for(1)
    assert same_weights(lazy.d, plain.d)
    metrics = lazy.train_for(3)  # steps 2 and 4 compute it: the mean is over those two
    assert math.isfinite(metrics["train/r1"]) and metrics["train/r1"] > 0


def test_ema_generator_is_what_evaluate_and_export_use():
    trainer = make(ema=True, ema_decay=0.9)
    trainer.train_for(20)
    z = trainer.eval_z
    with torch.no_grad():
        averaged, plain = trainer.g_ema(z), copy.deepcopy(trainer.g).eval()(z)
        assert torch.equal(trainer.generator()(z), averaged)
    assert not torch.equal(averaged, plain)  # the average, not G itself
    scores = mixture_metrics(averaged, trainer.data)
    assert scored(trainer)["eval/score"] == scores["score"]
    assert trainer.g.training


def test_evaluate_returns_2500_points_scored_with_pacgan_metrics_and_keeps_train_mode():
    trainer = make(batchnorm=True)
    trainer.train_for(2)
    assert trainer.evaluate().samples.shape == (2500, 2)
    metrics = scored(trainer)
    assert set(metrics) == {"eval/modes", "eval/high_quality", "eval/reverse_kl", "eval/score",
                            "eval/coverage", "model/g_params"}
    assert metrics["model/g_params"] == sum(p.numel() for p in trainer.g.parameters())
    assert trainer.g.training


@pytest.mark.parametrize("params", [
    {}, {"loss": "wgan_gp", "batchnorm": True, "d_steps": 2},
    {"ema": True, "r1_weight": 0.1}, {"r1_weight": 0.1, "r1_every": 2, "d_steps": 3},
    {"clusters": 6, "loss": "wgan_gp", "r1_weight": 0.1, "ema": True}])
def test_state_dict_round_trip_resumes_bitwise(params):
    original = make(seed=1, **params)
    original.train_for(3)
    buf = io.BytesIO()
    torch.save(original.state_dict(), buf)
    buf.seek(0)
    restored = make(seed=1, **params)
    restored.load_state_dict(torch.load(buf, weights_only=True))
    torch.manual_seed(123)  # disturbing the global RNG in between must not matter
    assert restored.step == 3
    after = [without_perf(t.train_for(4)) | scored(t) for t in (original, restored)]
    assert after[0] == after[1]


def test_load_state_dict_rejects_another_config():
    with pytest.raises(ValueError, match="config"):
        make(g_width=8).load_state_dict(make().state_dict())


@pytest.mark.parametrize("params", [{}, {"clusters": 5}])
def test_same_seed_same_metrics_other_seed_other_metrics(params):
    runs = [make(seed=seed, **params) for seed in (0, 0, 1)]
    metrics = [without_perf(t.train_for(5)) | scored(t) for t in runs]
    assert metrics[0] == metrics[1]
    assert metrics[0] != metrics[2]


def test_nan_losses_are_returned_not_raised():
    trainer = make()
    with torch.no_grad():
        next(trainer.d.parameters()).fill_(float("nan"))
    metrics = trainer.train_for(2)
    assert math.isnan(metrics["train/d_loss"])
    assert math.isnan(scored(trainer)["eval/reverse_kl"])


def test_scored_evaluation_has_a_scatter_png_of_the_expected_size():
    trainer = make()
    image = Image.open(io.BytesIO(score(trainer.evaluate(), trainer.data).image))
    assert image.format == "PNG"
    assert image.size == (320, 320)


def test_generator_is_a_picklable_cpu_module_in_eval_mode():
    trainer = make(z_dim=3, batchnorm=True)
    g = pickle.loads(pickle.dumps(trainer.generator()))
    assert isinstance(g, Generator) and not g.training
    assert trainer.z_dim == g.z_dim == 3
    assert g(torch.randn(7, 3)).shape == (7, 2)
    assert g is not trainer.g


def test_self_conditioning_clusters_the_real_points_and_conditions_g_and_d():
    trainer = make(clusters=25, data="grid25", z_dim=3)
    means = torch.tensor(trainer.data.means)  # (25, 2)
    # k-means on well separated modes finds each of them, to within a fraction of their std
    dists = torch.cdist(trainer.centroids, means)  # (25, 25)
    assert dists.min(dim=1).values.max() < 0.25 * trainer.data.std
    assert len(set(dists.argmin(dim=1).tolist())) == 25
    metrics = trainer.train_for(3)
    assert all(math.isfinite(v) for v in metrics.values())
    assert trainer.d.n_clusters == 25 and trainer.z_dim == 4  # z_dim, plus one for the cluster
    g_params = sum(p.numel() for p in trainer.g.parameters())
    assert trainer.evaluate().metrics["model/g_params"] == g_params


def test_self_conditioned_generator_draws_clusters_in_their_real_proportions():
    trainer = make(clusters=8, data="grid25")
    g = pickle.loads(pickle.dumps(trainer.generator()))
    assert isinstance(g, ClusterGenerator) and g.z_dim == trainer.z_dim == 3
    z = torch.randn(40_000, 3, generator=torch.Generator().manual_seed(0))
    drawn = torch.bincount(g.cluster(z), minlength=8) / len(z)
    weights = torch.diff(torch.cat([torch.zeros(1), g.bounds, torch.ones(1)]))
    assert torch.allclose(drawn, weights, atol=0.01)
    assert sorted(weights.tolist()) != [1 / 8] * 8  # 25 modes in 8 clusters: unequal shares
    with torch.no_grad():
        assert torch.equal(g(z[:5]), g.decode(z[:5, :2], g.cluster(z[:5])))


def test_defaults_are_the_documented_baseline():
    config = MLPGANConfig()
    assert (config.loss, config.activation, config.batchnorm) == ("ns", "relu", False)
    assert MLPGANTrainer.DATA_KIND == "mixture"
    assert TRAINERS["mlp_gan"] is MLPGANTrainer


def test_build_config_casts_strings_and_whole_floats():
    params = {"g_width": "64", "g_depth": 2.0, "lr_g": "2e-4", "batchnorm": "true"}
    config = build_config(MLPGANTrainer, params, "mlp_gan")
    assert (config.g_width, config.g_depth, config.lr_g, config.batchnorm) == (64, 2, 2e-4, True)
    assert dataclasses.asdict(config)["g_width"] == 64


def test_build_config_rejects_unknown_keys_listing_the_known():
    with pytest.raises(ValueError, match="unknown parameter 'foo' for mlp_gan; known: g_depth"):
        build_config(MLPGANTrainer, {"foo": 1}, "mlp_gan")


@pytest.mark.parametrize(
    "field, value",
    [
        ("g_depth", 0),
        ("d_width", 0),
        ("g_width", 64.5),
        ("lr_g", 0.0),
        ("lr_d", -1e-3),
        ("beta1", 1.0),
        ("beta2", -0.1),
        ("activation", "gelu"),
        ("loss", "bogus"),
        ("batch_size", 0),
        ("d_steps", 0),
        ("r1_every", 0),
        ("clusters", -1),
        ("clusters", 1001),
        ("batchnorm", "maybe"),
    ],
)
def test_build_config_rejects_invalid_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"'{field}'"):
        build_config(MLPGANTrainer, {field: value})


def test_build_trainer_needs_a_known_name_and_a_mixture():
    with pytest.raises(PluginError, match="unknown trainer 'gan9000'.*mlp_gan"):
        build_trainer("gan9000", {}, load_dataset("ring8"), seed=0)
    with pytest.raises(TypeError, match="ring8"):
        build_trainer("mlp_gan", {}, load_dataset("none"), seed=0)


# -- population-based training: reconfigure mid-run ---------------------------------------------
def same_state(a, b):
    """Two trainers hold bitwise the same weights, optimizer moments and RNG state."""
    return all(torch.equal(x, y) for x, y in zip(
        [*a.g.state_dict().values(), *a.d.state_dict().values(), a._rng.get_state()],
        [*b.g.state_dict().values(), *b.d.state_dict().values(), b._rng.get_state()],
        strict=True)) and (a.g_ema is None or same_weights(a.g_ema, b.g_ema))


def test_reconfigure_sets_the_learning_rates_and_betas_the_optimizers_use():
    trainer = make()
    trainer.train_for(2)
    trainer.reconfigure({**TINY, "lr_g": 2e-3, "lr_d": 5e-4, "beta1": 0.0, "beta2": 0.9})
    assert [(g["lr"], g["betas"]) for g in trainer.opt_g.param_groups] == [(2e-3, (0.0, 0.9))]
    assert [(g["lr"], g["betas"]) for g in trainer.opt_d.param_groups] == [(5e-4, (0.0, 0.9))]
    assert trainer.step == 2 and trainer.config.lr_g == 2e-3


@pytest.mark.parametrize("params, change", [
    ({}, {"lr_g": 2e-3}),
    ({}, {"lr_d": 2e-3}),
    ({}, {"beta1": 0.0}),
    ({}, {"beta2": 0.9}),
    ({"loss": "wgan_gp"}, {"gp_weight": 1.0}),
    ({}, {"r1_weight": 0.5}),
    ({"r1_weight": 0.5, "d_steps": 1}, {"r1_every": 2}),
    ({}, {"d_steps": 3}),
    ({"ema": True}, {"ema_decay": 0.1}),  # below the warm-up's (1 + t) / (10 + t) at t = 3
])
def test_each_mutable_field_changes_training_from_the_next_step(params, change):
    trainer = make(**params)
    trainer.train_for(2)
    unchanged = copy.deepcopy(trainer)
    trainer.reconfigure(dataclasses.replace(trainer.config, **change))
    assert same_state(trainer, unchanged)  # nothing moves until the next step
    trainer.train_for(2)
    unchanged.train_for(2)
    assert not same_state(trainer, unchanged)


def test_reconfigured_d_steps_is_how_many_d_steps_train_for_takes():
    trainer = make(d_steps=1)
    trainer.train_for(1)
    trainer.reconfigure(dataclasses.replace(trainer.config, d_steps=2))
    trainer.train_for(2)

    def adam_steps(optimizer):
        return {int(state["step"]) for state in optimizer.state.values()}

    assert (adam_steps(trainer.opt_d), adam_steps(trainer.opt_g)) == ({1 + 2 * 2}, {3})


def test_reconfigure_adds_a_penalty_that_was_off():
    trainer = make(r1_weight=0.0)
    assert "train/r1" not in trainer.train_for(1)
    trainer.reconfigure(dataclasses.replace(trainer.config, r1_weight=0.1))
    assert trainer.train_for(1)["train/r1"] > 0


@pytest.mark.parametrize("field, value", [
    ("g_width", 32), ("d_depth", 3), ("loss", "hinge"), ("ema", True), ("batch_size", 64),
    ("clusters", 2), ("z_dim", 3)])
def test_reconfigure_refuses_a_field_that_is_not_mutable_in_one_line(field, value):
    trainer = make()
    before = trainer.config
    with pytest.raises(ValueError) as refused:
        trainer.reconfigure({**TINY, "lr_g": 2e-3, field: value})
    assert str(refused.value) == (
        f"mlp_gan.{field}: cannot change mid-run (mutable: lr_g, lr_d, beta1, beta2, "
        f"gp_weight, r1_weight, r1_every, d_steps, ema_decay)")
    assert trainer.config is before and trainer.opt_g.param_groups[0]["lr"] == before.lr_g


@pytest.mark.parametrize("params, change", [
    ({}, {"lr_g": 3e-3, "lr_d": 2e-4, "beta1": 0.9, "d_steps": 3}),
    ({"ema": True, "loss": "wgan_gp", "clusters": 4},
     {"gp_weight": 2.0, "r1_weight": 0.2, "r1_every": 2, "ema_decay": 0.9, "beta2": 0.99}),
])
def test_state_after_reconfigure_resumes_bitwise_in_a_trainer_built_with_the_new_config(
        params, change):
    original = make(seed=1, **params)
    original.train_for(3)
    original.reconfigure({**TINY, **params, **change})
    buf = io.BytesIO()
    torch.save(original.state_dict(), buf)
    state = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    with pytest.raises(ValueError, match="config"):  # the checkpoint records the new config
        make(seed=1, **params).load_state_dict(state)
    restored = make(seed=1, **params, **change)
    restored.load_state_dict(state)
    torch.manual_seed(123)  # disturbing the global RNG in between must not matter
    after = [without_perf(t.train_for(4)) | scored(t) for t in (original, restored)]
    assert after[0] == after[1]
    assert same_state(original, restored)


def test_reconfigure_leaves_evaluate_alone():
    trainer = make(ema=True)
    trainer.train_for(3)
    before = trainer.evaluate()
    trainer.reconfigure(dataclasses.replace(trainer.config, lr_g=5e-3, ema_decay=0.5))
    assert torch.equal(trainer.evaluate().samples, before.samples)
