"""The shared noise bank and titled pictures: grids that compare across trials and say what
they show."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from trainers.grids import image_grid_png, titled_png
from trainers.mixtures import ring8
from trainers.mlp_gan import MLPGANTrainer
from trainers.noise import eval_noise


def test_the_noise_bank_is_the_same_everywhere_and_overlaps_across_sizes_and_widths():
    torch.manual_seed(1)
    before = torch.get_rng_state()
    wide, narrow = eval_noise(200, 16), eval_noise(70, 8)
    assert torch.equal(torch.get_rng_state(), before)  # no global RNG touched
    assert torch.equal(wide, eval_noise(200, 16)) and wide.dtype == torch.float32
    assert torch.equal(wide[:70, :8], narrow)  # fewer samples, narrower z: the same z
    assert abs(float(wide.mean())) < 0.1 and abs(float(wide.std()) - 1.0) < 0.1
    assert eval_noise(0, 4).shape == (0, 4)
    with pytest.raises(ValueError, match="z_dim"):
        eval_noise(4, 0)


def test_two_trials_of_a_sweep_evaluate_on_the_same_z():
    """Different seeds and architectures, one noise bank: their grids show the same z."""
    a = MLPGANTrainer(MLPGANTrainer.Config(z_dim=4, g_width=32), ring8(), seed=1)
    b = MLPGANTrainer(MLPGANTrainer.Config(z_dim=8, g_depth=2), ring8(), seed=2)
    assert torch.equal(a.eval_z, b.eval_z[:, :4])
    assert torch.equal(a.eval_z, eval_noise(len(a.eval_z), 4))
    b.load_state_dict(b.state_dict())  # a resumed trial keeps it
    assert torch.equal(b.eval_z, eval_noise(len(b.eval_z), 8))


def test_a_titled_picture_keeps_the_picture_under_a_title_band():
    grid = image_grid_png(torch.zeros(4, 1, 8, 8))
    plain = Image.open(io.BytesIO(grid))
    titled = Image.open(io.BytesIO(titled_png(grid, "trial 7 · step 400 · eval/score=0.93")))
    assert titled.width >= plain.width and titled.height > plain.height
    band = titled.height - plain.height
    top = titled.convert("L").crop((0, 0, titled.width, band))
    assert min(top.getdata()) < 100  # black text on the white band
    below = titled.convert("L").crop((0, band, plain.width, titled.height))
    assert below.tobytes() == plain.convert("L").tobytes()
