"""DCGAN-family GAN on square images: the canonical alternating D/G loop, as a stateful object.

No I/O and no printing: `train_for` returns metrics and `evaluate` images; the caller scores and
logs them. On CUDA the forward passes run under bf16 autocast with channels_last tensors; penalties
stay in fp32. The parts shared with mlp_gan (Adam pair, EMA, penalties, RNGs, state) are in
trainers/adversarial.py; the training step is written out here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from trainers.adversarial import AdversarialTrainer, check_core_config
from trainers.augment import AUGMENTS, augment
from trainers.conv import D_NORMS, G_NORMS, IMAGE_SIZES, ConvDiscriminator, ConvGenerator
from trainers.conv import max_blocks as conv_max_blocks
from trainers.losses import Means, d_accuracy
from trainers.models import ACTIVATIONS
from trainers.params import check

NAME = "dcgan"
G_ACTIVATION = "relu"  # G's hidden activation, as in DCGAN; `activation` is D's
MAX_BLOCKS = conv_max_blocks(max(IMAGE_SIZES))


@dataclass(frozen=True)
class DCGANConfig:
    """Hyperparameters of a DCGAN. The defaults are the DCGAN recipe (Adam 2e-4, beta1 0.5, batch
    norm in G) with a spectrally normalised D and an EMA of G: a baseline for 8x8 and 16x16
    digits. Architecture in trainers/conv.py.

    Measured on CPU, digits (8 px) seeds 0-2 and digits16 seed 0: diverse digit-like samples after
    1,000 G steps (per-pixel std across samples 0.39-0.45 vs 0.45 real at 8 px, 0.34 vs 0.36 at
    16 px). Not yet scored with FD.
    """

    n_blocks: int = 2
    """Resolution doublings in G (halvings in D): the smallest map is size / 2**n_blocks, >= 2x2.
    At most log2(size) - 1; checked against the data when the trainer is built."""
    base_width: int = 64
    """Channels at full resolution; doubled per block towards the smallest map."""
    g_norm: str = "batch"
    """Normalisation in G: batch or none."""
    d_norm: str = "spectral"
    """Normalisation in D: spectral, layer (GroupNorm with one group) or none."""
    activation: str = "leaky_relu"
    """D's activation: relu, leaky_relu (slope 0.2), elu, tanh or silu. G always uses ReLU."""
    z_dim: int = 64
    """Dimension of the Gaussian latent z."""
    loss: str = "ns"
    """GAN objective: ns (non-saturating), hinge, wgan_gp or lsgan (least squares)."""
    gp_weight: float = 10.0
    """Weight of the WGAN-GP gradient penalty; used only by wgan_gp."""
    r1_weight: float = 0.0
    """R1 penalty on real data, r1_weight / 2 * E||grad D(x)||^2, with any loss; 0 turns it off."""
    r1_every: int = 1
    """Lazy R1 (StyleGAN2 uses 16): the penalty on every r1_every-th D step only, r1_every times
    as heavy, saving most of its double backward through D."""
    d_steps: int = 1
    """Discriminator steps before each generator step."""
    lr_g: float = 2e-4
    """Adam learning rate of the generator."""
    lr_d: float = 2e-4
    """Adam learning rate of the discriminator."""
    beta1: float = 0.5
    """Adam beta1 of both optimizers."""
    beta2: float = 0.999
    """Adam beta2 of both optimizers."""
    batch_size: int = 64
    """Real and fake images per D and G step."""
    ema: bool = True
    """Evaluate, sample and export an exponential moving average of G's weights."""
    ema_decay: float = 0.999
    """Decay of the EMA per G step, warmed up as min(ema_decay, (1 + t) / (10 + t)) at step t so
    that short runs do not average in the random initialisation."""
    augment: str = "none"
    """DiffAugment policy for every image D sees, real and fake, in both steps
    (trainers/augment.py): none, translation, translation_cutout or color_translation_cutout.
    R1 is taken on the augmented real images D scores."""

    def __post_init__(self) -> None:
        check_core_config(self, NAME)
        for field in ("n_blocks", "base_width"):
            check(getattr(self, field) >= 1, NAME, field, "must be >= 1", getattr(self, field))
        check(
            self.n_blocks <= MAX_BLOCKS,
            NAME,
            "n_blocks",
            f"must be <= {MAX_BLOCKS} (log2 of the largest image size, {max(IMAGE_SIZES)}, - 1)",
            self.n_blocks,
        )
        for field, choices in (("g_norm", G_NORMS), ("d_norm", D_NORMS),
                               ("activation", ACTIVATIONS), ("augment", AUGMENTS)):
            value = getattr(self, field)
            check(value in choices, NAME, field, f"must be one of {sorted(choices)}", value)


class DCGANTrainer(AdversarialTrainer):
    """Trains a DCGAN on `data`: anything with `.train` (N, C, H, W) uint8, `.channels`, `.size`
    and `.n_eval` (an ImageTask). Same seed and config give bitwise identical metrics on CPU.
    `evaluate` returns `data.n_eval` images for the FD metrics and the sample grid."""

    NAME = NAME
    Config = DCGANConfig
    DATA_KIND = "image"
    IMAGE_SIZES = IMAGE_SIZES  # the square sides it trains on, checked with the spec
    # `_augment` reads the DiffAugment policy from self.config at every step: PBT may change it
    MUTABLE = (*AdversarialTrainer.MUTABLE, "augment")

    def __init__(self, config: dict | DCGANConfig, data, seed: int, device: str = "cpu"):
        _check_data(data)
        super().__init__(config, seed, device, amp=True)
        cfg = self.config
        limit = conv_max_blocks(data.size)
        check(
            cfg.n_blocks <= limit,
            NAME,
            "n_blocks",
            f"must be <= {limit} for {data.size}x{data.size} images (smallest map 2x2)",
            cfg.n_blocks,
        )
        self.data = data

        def make_models() -> tuple[nn.Module, nn.Module]:
            g = ConvGenerator(cfg.z_dim, data.channels, data.size, cfg.n_blocks, cfg.base_width,
                              cfg.g_norm, G_ACTIVATION)
            d = ConvDiscriminator(data.channels, data.size, cfg.n_blocks, cfg.base_width,
                                  cfg.d_norm, cfg.activation)
            return g, d
        self._build(make_models, int(data.n_eval))

    def _train_step(self, means: Means) -> None:
        cfg = self.config
        for i in range(cfg.d_steps):
            # D step: minimise loss.d(D(x), D(G(z))) [+ gp_weight * GP]
            # [+ r1_weight * r1_every / 2 * R1 on every r1_every-th step], scoring real images
            # above fakes.
            real = self._batch_real()  # (B, C, H, W) in [-1, 1]
            z = self._batch_z()  # (B, z_dim)
            with torch.no_grad(), self._autocast():
                fake = self.g(z).float()  # (B, C, H, W), no gradient into G
            seen = self._augment(torch.cat([real, fake]))  # (2B, C, H, W): D sees these
            with self._autocast():
                scores = self.d(seen)  # (2B, C, H, W) -> (2B, 1)
            d_real, d_fake = scores.float().chunk(2)  # (B, 1) each
            loss = self._loss.d(d_real, d_fake)
            loss, penalties = self._penalized(loss, self.d, *seen.chunk(2),
                                              self.step * cfg.d_steps + i)
            self._update(self.opt_d, loss)
            # losses stay on the device: train_for reads them once per chunk
            real_acc, fake_acc = d_accuracy(d_real, d_fake)  # scored before this update
            means.add({key: value.detach() for key, value in {
                "d_loss": loss, **penalties, "d_real_acc": real_acc,
                "d_fake_acc": fake_acc}.items()})
        # G step: minimise loss.g(D(G(z))), moving samples to where D scores them as real.
        self.d.requires_grad_(False)  # D is a fixed critic here: skip its weight gradients
        with self._autocast():
            fake = self.g(self._batch_z())  # (B, z_dim) -> (B, C, H, W)
            d_fake = self.d(self._augment(fake))  # (B, 1): G's gradient flows through T
        g_loss = self._loss.g(d_fake.float())
        self._update(self.opt_g, g_loss)
        self.d.requires_grad_(True)
        self._g_stepped()
        means.add({"g_loss": g_loss.detach()})

    def _augment(self, images: Tensor) -> Tensor:
        """The batch D is shown: the config's DiffAugment policy, drawn from the private RNG."""
        out = augment(images, self.config.augment, self._rng)
        return out if out is images else out.contiguous(memory_format=self._memory_format)

    def _batch_real(self) -> Tensor:
        """A batch of training images, sampled with replacement, converted on the device."""
        idx = torch.randint(len(self.data.train), (self.config.batch_size,), generator=self._rng)
        batch = torch.from_numpy(self.data.train[idx.numpy()])  # (B, C, H, W) uint8: a copy
        batch = batch.to(self.device).float().div_(127.5).sub_(1.0)  # [0, 255] -> [-1, 1]
        return batch.contiguous(memory_format=self._memory_format)


def _check_data(data) -> None:
    """Fail early, naming what is wrong, when `data` is not a batch of square uint8 images."""
    train = getattr(data, "train", None)
    if not isinstance(train, np.ndarray):
        raise TypeError(
            f"{NAME} trains on images (an object with .train, .channels, .size and .n_eval), "
            f"got {data!r}"
        )
    expected = (data.channels, data.size, data.size)
    if train.dtype != np.uint8 or train.ndim != 4 or train.shape[1:] != expected or not len(train):
        raise ValueError(
            f"{NAME}: data.train must be (N, {', '.join(map(str, expected))}) uint8 "
            f"with N >= 1, got {train.shape} {train.dtype}"
        )
    if data.size not in IMAGE_SIZES:
        raise ValueError(f"{NAME}: image size must be one of {IMAGE_SIZES}, got {data.size}")
