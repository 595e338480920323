"""DiffAugment: what each policy does to a batch, that G's gradient flows through it, and that
its draws come from the generator given (the trainer's private RNG)."""

import pytest
import torch

from tests.trainers.test_dcgan import TINY, FakeImages, without_perf
from trainers.augment import AUGMENTS, augment, cutout, translation
from trainers.dcgan import DCGANTrainer


def images(b=6, c=1, size=16):
    return torch.rand(b, c, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_none_is_the_identity_and_draws_nothing():
    x, gen = images(), torch.Generator().manual_seed(1)
    state = gen.get_state()
    assert augment(x, "none", gen) is x
    assert torch.equal(gen.get_state(), state)


@pytest.mark.parametrize("policy", sorted(set(AUGMENTS) - {"none"}))
def test_every_policy_changes_the_batch_keeps_its_shape_and_passes_gradients(policy):
    x = images(c=3).requires_grad_(True)
    out = augment(x, policy, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and not torch.equal(out, x)
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", sorted(AUGMENTS))
def test_the_same_generator_state_gives_the_same_augmentation(policy):
    x = images(c=3)
    a = augment(x, policy, torch.Generator().manual_seed(7))
    b = augment(x, policy, torch.Generator().manual_seed(7))
    c = augment(x, policy, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert policy == "none" or not torch.equal(a, c)


def test_translation_shifts_each_image_by_at_most_an_eighth_and_fills_with_zeros():
    x = torch.ones(64, 1, 16, 16)
    out = translation(x, torch.Generator().manual_seed(0))
    zero_rows = (out == 0).all(dim=3).sum(dim=(1, 2))  # (B,) rows shifted out
    zero_cols = (out == 0).all(dim=2).sum(dim=(1, 2))
    assert zero_rows.max() <= 2 and zero_cols.max() <= 2  # 16 / 8
    assert (zero_rows + zero_cols).sum() > 0  # some image moved
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_cutout_zeroes_at_most_a_square_of_half_the_side():
    x = torch.ones(64, 1, 16, 16)
    out = cutout(x, torch.Generator().manual_seed(0))
    zeroed = (out == 0).sum(dim=(1, 2, 3))  # (B,)
    assert zeroed.max() == 64 and zeroed.min() > 0  # 8 x 8, clipped at the border


def test_an_augmented_trial_trains_and_sees_augmented_images_in_both_steps(monkeypatch):
    seen = []
    trainer = DCGANTrainer({**TINY, "augment": "translation_cutout", "d_steps": 2},
                           FakeImages(size=16), seed=0)
    original = trainer._augment
    monkeypatch.setattr(trainer, "_augment", lambda x: seen.append(len(x)) or original(x))
    metrics = without_perf(trainer.train_for(1))
    assert seen == [16, 16, 8]  # two D steps on real + fake, one G step on fake
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


def test_an_unknown_policy_names_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"augment.*must be one of \['color_translation_cutout', "
                                         r"'none', 'translation', 'translation_cutout'\]"):
        DCGANTrainer({**TINY, "augment": "flip"}, FakeImages(), seed=0)
