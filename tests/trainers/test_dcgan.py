import copy
import io
import math
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from trainers.base import build_config
from trainers.conv import ConvDiscriminator, ConvGenerator, max_blocks
from trainers.dcgan import DCGANTrainer
from trainers.grids import image_grid_png
from trainers.losses import LOSSES, gradient_penalty, r1_penalty

# Small enough that a step takes milliseconds; the code paths are the full ones.
TINY = {"base_width": 4, "z_dim": 8, "batch_size": 8}


class FakeImages:
    """What DCGANTrainer trains on, as an ImageTask offers it: random uint8 images."""

    def __init__(self, channels=1, size=8, n=32, n_eval=16):
        self.channels, self.size, self.n_eval = channels, size, n_eval
        shape = (n, channels, size, size)
        self.train = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


def make(seed=0, data=None, **params):
    return DCGANTrainer({**TINY, **params}, data or FakeImages(), seed=seed)


def without_perf(metrics):
    return {k: v for k, v in metrics.items() if not k.startswith("perf/")}


def evaluated(trainer):
    """The trainer's own metrics, and its eval samples as a list (comparable with ==)."""
    evaluation = trainer.evaluate()
    return {**evaluation.metrics, "samples": evaluation.samples.flatten().tolist()}


GEOMETRIES = [(size, n) for size in (8, 16, 32) for n in range(1, max_blocks(size) + 1)]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("size", "n_blocks"), GEOMETRIES)
def test_conv_nets_map_z_to_images_and_images_to_one_score(size, n_blocks, channels):
    g = ConvGenerator(8, channels, size, n_blocks, 4)
    d = ConvDiscriminator(channels, size, n_blocks, 4)
    images = g(torch.randn(2, 8))
    assert images.shape == (2, channels, size, size)
    assert images.abs().max() <= 1
    assert d(images).shape == (2, 1)


def test_conv_nets_at_64_px_with_the_most_blocks():
    g = ConvGenerator(8, 3, 64, 5, 2, norm="none")
    d = ConvDiscriminator(3, 64, 5, 2, norm="layer")
    assert d(g(torch.randn(2, 8))).shape == (2, 1)


def test_too_many_blocks_for_the_image_size_names_n_blocks():
    with pytest.raises(ValueError, match="'n_blocks'.*8x8"):
        make(n_blocks=3)  # 8 px: 8 -> 4 -> 2 is the most
    with pytest.raises(ValueError, match="n_blocks"):
        ConvGenerator(8, 1, 16, 4, 4)


def test_trainer_rejects_data_that_is_not_images():
    with pytest.raises(TypeError, match="images"):
        DCGANTrainer({}, object(), seed=0)


@pytest.mark.parametrize(
    "params",
    [
        {"loss": "ns"},
        {"loss": "hinge"},
        {"loss": "wgan_gp"},
        {"loss": "lsgan"},
        {"loss": "ns", "r1_weight": 1.0},
    ],
)
def test_each_loss_trains_with_finite_metrics(params):
    trainer = make(**params)
    metrics = trainer.train_for(2)
    expected = {"train/d_loss", "train/g_loss", "train/d_real_acc", "train/d_fake_acc",
                "perf/steps_per_s"}
    expected |= {"train/gp"} if params["loss"] == "wgan_gp" else set()
    expected |= {"train/r1"} if "r1_weight" in params else set()
    assert set(metrics) == expected
    assert all(math.isfinite(v) for v in metrics.values())
    assert trainer.step == 2


@pytest.mark.parametrize("g_norm", ["batch", "none"])
@pytest.mark.parametrize("d_norm", ["spectral", "layer", "none"])
def test_each_norm_trains_on_rgb(g_norm, d_norm):
    trainer = make(
        data=FakeImages(channels=3, size=16),
        g_norm=g_norm,
        d_norm=d_norm,
        n_blocks=3,
        activation="silu",
        d_steps=2,
    )
    assert all(math.isfinite(v) for v in trainer.train_for(1).values())
    assert trainer.generator()(torch.randn(2, 8)).shape == (2, 3, 16, 16)


def test_evaluate_returns_n_eval_images_and_keeps_train_mode():
    trainer = make(data=FakeImages(n_eval=20), ema=False)
    evaluation = trainer.evaluate()
    assert set(evaluation.metrics) == {"model/g_params"}
    assert evaluation.metrics["model/g_params"] == sum(p.numel() for p in trainer.g.parameters())
    samples = evaluation.samples
    assert samples.shape == (20, 1, 8, 8) and samples.dtype == torch.float32
    assert samples.device.type == "cpu" and samples.abs().max() <= 1
    assert evaluation.image is None  # gansweep draws the grid from the samples
    assert trainer.g.training


@pytest.mark.parametrize("params", [
    {}, {"loss": "wgan_gp", "r1_weight": 0.5, "d_steps": 2},
    {"r1_weight": 0.5, "r1_every": 3, "d_steps": 2},
    {"augment": "color_translation_cutout", "loss": "hinge", "r1_weight": 0.5}])
def test_state_dict_round_trip_resumes_bitwise(params):
    original = make(seed=1, **params)
    original.train_for(2)
    buf = io.BytesIO()
    torch.save(original.state_dict(), buf)
    buf.seek(0)
    restored = make(seed=1, **params)
    restored.load_state_dict(torch.load(buf, weights_only=True))
    torch.manual_seed(123)  # disturbing the global RNG in between must not matter
    assert restored.step == 2
    after = [without_perf(t.train_for(2)) | evaluated(t) for t in (original, restored)]
    assert after[0] == after[1]
    z = torch.randn(4, 8)
    assert torch.equal(original.generator()(z), restored.generator()(z))


def test_load_state_dict_rejects_another_config():
    with pytest.raises(ValueError, match="config"):
        make(base_width=8).load_state_dict(make().state_dict())


def test_same_seed_same_metrics_other_seed_other_metrics():
    runs = [make(seed=seed) for seed in (0, 0, 1)]
    metrics = [without_perf(t.train_for(2)) | evaluated(t) for t in runs]
    assert metrics[0] == metrics[1]
    assert metrics[0] != metrics[2]


def test_building_a_trainer_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    make()
    assert torch.equal(torch.get_rng_state(), state)


def raw_g_output(trainer, z):
    g = trainer.g.eval()
    with torch.no_grad():
        out = g(z)
    g.train()
    return out


def test_exported_generator_is_the_ema_when_on_and_g_itself_when_off():
    z = torch.randn(4, 8)
    with_ema, without_ema = make(ema=True), make(ema=False)
    for trainer in (with_ema, without_ema):
        trainer.train_for(3)
    with torch.no_grad():
        assert not torch.allclose(with_ema.generator()(z), raw_g_output(with_ema, z))
        assert torch.equal(without_ema.generator()(z), raw_g_output(without_ema, z))


def test_generator_is_a_picklable_cpu_module_in_eval_mode():
    trainer = make()
    g = pickle.loads(pickle.dumps(trainer.generator()))
    assert not g.training
    assert all(p.device.type == "cpu" for p in g.parameters())
    assert g(torch.randn(3, trainer.z_dim)).shape == (3, 1, 8, 8)


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB")])
def test_image_grid_of_64_images_is_upscaled_to_256_px(channels, mode):
    samples = make(data=FakeImages(channels=channels, n_eval=100)).evaluate().samples
    image = Image.open(io.BytesIO(image_grid_png(samples[:64], nrow=8)))
    assert image.format == "PNG" and image.mode == mode
    assert image.size == (8 * (8 * 4 + 2) + 2,) * 2  # 8 px images upscaled 4x to reach 256 px


def test_image_grid_layout_scale_and_values():
    images = -np.ones((10, 3, 4, 4), dtype=np.float32)
    images[0] = 1.0
    image = Image.open(io.BytesIO(image_grid_png(images, nrow=4, pad=1, scale=2)))
    assert image.size == (4 * (4 * 2 + 1) + 1, 3 * (4 * 2 + 1) + 1)  # 4 columns, 3 rows
    pixels = np.asarray(image)
    assert (pixels[1:9, 1:9] == 255).all() and (pixels[1:9, 10:18] == 0).all()
    assert (pixels[0] == 255).all()  # padding
    nan = image_grid_png(torch.full((1, 1, 8, 8), float("nan")))
    assert Image.open(io.BytesIO(nan)).size == (256 + 4,) * 2  # one image, upscaled 32x


def test_build_config_casts_and_rejects_unknown_keys_and_bad_values():
    cfg = build_config(DCGANTrainer, {"n_blocks": "3", "ema": "false", "lr_g": "1e-4"})
    assert (cfg.n_blocks, cfg.ema, cfg.lr_g) == (3, False, 1e-4)
    with pytest.raises(ValueError, match="unknown parameter 'width'"):
        build_config(DCGANTrainer, {"width": 3})
    bad = {
        "loss": "bogus",
        "d_norm": "batch",
        "g_norm": "spectral",
        "activation": "gelu",
        "n_blocks": 0,
        "base_width": 2.5,
        "ema_decay": 1.0,
        "r1_weight": -1.0,
        "r1_every": 0,
        "lr_d": 0.0,
    }
    for field, value in bad.items():
        with pytest.raises(ValueError, match=f"'{field}'"):
            build_config(DCGANTrainer, {field: value})


def test_lsgan_and_penalties_on_images():
    assert LOSSES["lsgan"].d(torch.ones(4, 1), torch.zeros(4, 1)).item() == 0
    assert LOSSES["lsgan"].g(torch.zeros(4, 1)).item() == 0.5

    def linear(x):  # gradient 2 everywhere: ||grad||^2 = 4 * C * H * W per image
        return 2 * x.flatten(1).sum(dim=1, keepdim=True)

    real, fake = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    rng = torch.Generator().manual_seed(0)
    assert r1_penalty(linear, real, fake, rng).item() == pytest.approx(4 * 48)
    assert gradient_penalty(linear, real, fake, rng).item() == pytest.approx((2 * 48**0.5 - 1) ** 2)


@pytest.mark.parametrize("change", [
    {"augment": "translation"}, {"lr_g": 1e-3, "lr_d": 1e-3, "d_steps": 2, "r1_weight": 0.5}])
def test_reconfigure_mid_run_resumes_bitwise_in_a_trainer_built_with_the_new_config(change):
    original = make(seed=1)
    original.train_for(2)
    unchanged = copy.deepcopy(original)
    original.reconfigure({**TINY, **change})
    buf = io.BytesIO()
    torch.save(original.state_dict(), buf)
    buf.seek(0)
    restored = make(seed=1, **change)
    restored.load_state_dict(torch.load(buf, weights_only=True))
    after = [without_perf(t.train_for(2)) | evaluated(t) for t in (original, restored, unchanged)]
    assert after[0] == after[1]
    assert after[0] != after[2]  # the new augment policy or rates are what it trains with


def test_reconfigure_refuses_the_architecture_naming_the_field():
    trainer = make()
    with pytest.raises(ValueError, match=r"^dcgan\.base_width: cannot change mid-run \(mutable: "
                                         r"lr_g, .*, ema_decay, augment\)$"):
        trainer.reconfigure({**TINY, "base_width": 8, "augment": "translation"})
