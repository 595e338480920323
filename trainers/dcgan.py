"""DCGAN-family GAN on square images: the canonical alternating D/G loop, as a stateful object.

No I/O and no printing: `train_for` and `evaluate` return metrics; the caller logs them. On CUDA the
forward passes run under bf16 autocast with channels_last tensors; penalties stay in fp32.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from trainers.conv import D_NORMS, G_NORMS, IMAGE_SIZES, ConvDiscriminator, ConvGenerator
from trainers.conv import max_blocks as conv_max_blocks
from trainers.grids import image_grid_png
from trainers.losses import LOSSES, Means, r1_due, r1_penalty
from trainers.models import ACTIVATIONS, n_params, update_ema
from trainers.params import check, check_same_config, config_from_params, state_header

NAME = "dcgan"
G_ACTIVATION = "relu"  # G's hidden activation, as in DCGAN; `activation` is D's
GRID_N = 64  # images in the sample grid, 8 per row
EVAL_BATCH = 500  # images generated per forward pass in evaluate()
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

    def __post_init__(self) -> None:
        for field in ("n_blocks", "base_width", "z_dim", "d_steps", "batch_size", "r1_every"):
            check(getattr(self, field) >= 1, NAME, field, "must be >= 1", getattr(self, field))
        check(
            self.n_blocks <= MAX_BLOCKS,
            NAME,
            "n_blocks",
            f"must be <= {MAX_BLOCKS} (log2 of the largest image size, {max(IMAGE_SIZES)}, - 1)",
            self.n_blocks,
        )
        for field in ("lr_g", "lr_d"):
            value = getattr(self, field)
            check(math.isfinite(value) and value > 0, NAME, field, "must be > 0", value)
        for field in ("beta1", "beta2", "ema_decay"):
            value = getattr(self, field)
            check(0 <= value < 1, NAME, field, "must be in [0, 1)", value)
        for field in ("gp_weight", "r1_weight"):
            value = getattr(self, field)
            check(math.isfinite(value) and value >= 0, NAME, field, "must be >= 0", value)
        for field, choices in (
            ("g_norm", G_NORMS),
            ("d_norm", D_NORMS),
            ("activation", ACTIVATIONS),
            ("loss", LOSSES),
        ):
            value = getattr(self, field)
            check(value in choices, NAME, field, f"must be one of {sorted(choices)}", value)

    @classmethod
    def from_params(cls, params: dict) -> DCGANConfig:
        return config_from_params(cls, params, NAME)


class DCGANTrainer:
    """Trains a DCGAN on `data`: anything with `.train` (N, C, H, W) uint8, `.channels`, `.size`,
    `.n_eval` and `.evaluate_images(fake) -> dict`. Same seed and config give bitwise identical
    metrics on CPU."""

    Config = DCGANConfig
    DATA_KIND = "image"

    def __init__(self, config: dict | DCGANConfig, data, seed: int, device: str = "cpu"):
        if not isinstance(config, DCGANConfig):
            config = DCGANConfig.from_params(config)
        _check_data(data)
        cfg = self.config = config
        limit = conv_max_blocks(data.size)
        check(
            cfg.n_blocks <= limit,
            NAME,
            "n_blocks",
            f"must be <= {limit} for {data.size}x{data.size} images (smallest map 2x2)",
            cfg.n_blocks,
        )
        self.data = data
        self.seed = seed
        self.device = torch.device(device)
        self.step = 0
        self._loss = LOSSES[cfg.loss]
        # bf16 needs no loss scaling; channels_last is what tensor-core convolutions want.
        self._amp = self.device.type == "cuda"
        self._memory_format = torch.channels_last if self._amp else torch.contiguous_format
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(seed)
            self.g = ConvGenerator(
                cfg.z_dim,
                data.channels,
                data.size,
                cfg.n_blocks,
                cfg.base_width,
                cfg.g_norm,
                G_ACTIVATION,
            )
            self.d = ConvDiscriminator(
                data.channels, data.size, cfg.n_blocks, cfg.base_width, cfg.d_norm, cfg.activation
            )
        self.g.to(self.device, memory_format=self._memory_format).train()
        self.d.to(self.device, memory_format=self._memory_format).train()
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if cfg.ema else None
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr_d, betas=betas)
        # Noise, batch indices and penalty draws come from this private CPU generator, so they
        # neither depend on nor disturb anyone else's use of the global RNG, and match on GPU.
        self._rng = torch.Generator().manual_seed(seed)
        # Fixed per trial, drawn once: metrics and grids compare across steps and trials.
        fixed = torch.Generator().manual_seed(seed)
        self.eval_z = torch.randn(int(data.n_eval), cfg.z_dim, generator=fixed)  # (n_eval, z)
        self.grid_z = torch.randn(GRID_N, cfg.z_dim, generator=fixed)  # (64, z_dim)

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    def train_for(self, n: int) -> dict[str, float]:
        """n generator steps, each after d_steps D steps; losses are means over the steps that
        computed them (a lazy R1 skips some)."""
        means = Means()
        start = time.perf_counter()
        for _ in range(n):
            self._train_step(means)
        # Losses stay on the device until here: one synchronisation per call, not per step.
        metrics = {f"train/{key}": mean.item() for key, mean in means.means().items()}
        elapsed = time.perf_counter() - start
        metrics["perf/steps_per_s"] = n / elapsed if elapsed > 0 else math.nan
        return metrics

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
            with self._autocast():
                scores = self.d(torch.cat([real, fake]))  # (2B, C, H, W) -> (2B, 1)
            d_real, d_fake = scores.float().chunk(2)  # (B, 1) each
            loss = self._loss.d(d_real, d_fake)
            penalties = {}
            with self._fp32():  # double backward through bf16 activations is too coarse
                if self._loss.penalty is not None:
                    penalties["gp"] = self._loss.penalty(self.d, real, fake, self._rng)
                    loss = loss + cfg.gp_weight * penalties["gp"]
                if r1_due(cfg.r1_weight, cfg.r1_every, self.step * cfg.d_steps + i):
                    penalties["r1"] = r1_penalty(self.d, real, fake, self._rng)
                    loss = loss + cfg.r1_weight * cfg.r1_every / 2 * penalties["r1"]
            terms = {"d_loss": loss, **penalties}
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_d.step()
            means.add({key: value.detach() for key, value in terms.items()})
        # G step: minimise loss.g(D(G(z))), moving samples to where D scores them as real.
        self.d.requires_grad_(False)  # D is a fixed critic here: skip its weight gradients
        with self._autocast():
            fake = self.g(self._batch_z())  # (B, z_dim) -> (B, C, H, W)
            d_fake = self.d(fake)  # (B, 1)
        g_loss = self._loss.g(d_fake.float())
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)
        self.step += 1
        self._update_ema()
        means.add({"g_loss": g_loss.detach()})

    def _update_ema(self) -> None:
        if self.g_ema is not None:
            update_ema(self.g_ema, self.g, self.step, self.config.ema_decay)

    def _batch_real(self) -> Tensor:
        """A batch of training images, sampled with replacement, converted on the device."""
        idx = torch.randint(len(self.data.train), (self.config.batch_size,), generator=self._rng)
        batch = torch.from_numpy(self.data.train[idx.numpy()])  # (B, C, H, W) uint8: a copy
        batch = batch.to(self.device).float().div_(127.5).sub_(1.0)  # [0, 255] -> [-1, 1]
        return batch.contiguous(memory_format=self._memory_format)

    def _batch_z(self) -> Tensor:
        z = torch.randn(self.config.batch_size, self.config.z_dim, generator=self._rng)
        return z.to(self.device)  # (B, z_dim)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._amp)

    def _fp32(self):
        if not self._amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, enabled=False)

    def _sampler(self) -> nn.Module:
        return self.g_ema if self.g_ema is not None else self.g

    @torch.no_grad()
    def _generate(self, z: Tensor) -> Tensor:
        """Images (n, C, H, W) float32 on CPU from z (n, z_dim), by G or its EMA in eval mode."""
        g = self._sampler()
        was_training = g.training
        g.eval()  # batch norm uses running statistics: an image depends on its z alone
        try:
            with self._autocast():
                chunks = [g(part.to(self.device)).float().cpu() for part in z.split(EVAL_BATCH)]
        finally:
            g.train(was_training)
        return torch.cat(chunks).contiguous()

    def evaluate(self) -> dict[str, float]:
        """The data's metrics of data.n_eval images from the fixed eval noise, plus G's size."""
        metrics = {
            key: float(value)
            for key, value in self.data.evaluate_images(self._generate(self.eval_z)).items()
        }
        metrics["model/g_params"] = float(n_params(self.g))
        return metrics

    def sample_image(self) -> bytes:
        """PNG grid of 64 images (8 per row) from the fixed grid noise."""
        return image_grid_png(self._generate(self.grid_z), nrow=8)

    def generator(self) -> ConvGenerator:
        """A CPU copy of G (its EMA when ema is on) in eval mode: z (n, z_dim) -> (n, C, H, W)."""
        g = copy.deepcopy(self._sampler()).cpu()
        return g.to(memory_format=torch.contiguous_format).eval()

    def state_dict(self) -> dict:
        """Everything needed to resume bitwise: loads with torch.load(..., weights_only=True)."""
        return {
            **state_header(NAME, self.config, self.seed, self.step),
            "g": self.g.state_dict(),
            "d": self.d.state_dict(),
            "g_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "eval_z": self.eval_z.clone(),
            "grid_z": self.grid_z.clone(),
            "rng": self._rng.get_state(),
        }

    def load_state_dict(self, sd: dict) -> None:
        check_same_config(sd, self.config)
        self.g.load_state_dict(sd["g"])
        self.d.load_state_dict(sd["d"])
        if self.g_ema is not None:
            self.g_ema.load_state_dict(sd["g_ema"])
        self.opt_g.load_state_dict(sd["opt_g"])
        self.opt_d.load_state_dict(sd["opt_d"])
        self.step = int(sd["step"])
        self.eval_z = sd["eval_z"].cpu().clone()
        self.grid_z = sd["grid_z"].cpu().clone()
        self._rng.set_state(sd["rng"].cpu())


def _check_data(data) -> None:
    """Fail early, naming what is wrong, when `data` is not a batch of square uint8 images."""
    train = getattr(data, "train", None)
    if not isinstance(train, np.ndarray) or not hasattr(data, "evaluate_images"):
        raise TypeError(
            f"{NAME} trains on images (an object with .train, .channels, .size, "
            f".n_eval and .evaluate_images), got {data!r}"
        )
    expected = (data.channels, data.size, data.size)
    if train.dtype != np.uint8 or train.ndim != 4 or train.shape[1:] != expected or not len(train):
        raise ValueError(
            f"{NAME}: data.train must be (N, {', '.join(map(str, expected))}) uint8 "
            f"with N >= 1, got {train.shape} {train.dtype}"
        )
    if data.size not in IMAGE_SIZES:
        raise ValueError(f"{NAME}: image size must be one of {IMAGE_SIZES}, got {data.size}")
