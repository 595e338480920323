"""The GAN core the built-in trainers share: everything but their models and their training step.

`AdversarialTrainer` holds G, D, their Adam pair, the EMA of G, the loss and its penalties, the
private RNGs, the fixed eval noise, the chunk loop, evaluation, export and the state dict. A
subclass builds its models (`_build`) and writes out its own `_train_step`, the D step and the G
step each under a comment stating its objective.

RNG handling, the same for every subclass: models are initialised from the trial seed inside
`torch.random.fork_rng` (the global CPU RNG is neither read nor changed; CUDA's is reseeded, and
the built-ins never draw from it); batches, noise and penalty
draws come from a private CPU generator seeded with the trial seed (`_rng`), so runs match across
devices; the eval noise is drawn once, per trial, from a second generator seeded the same way.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from trainers.base import Evaluation, build_config
from trainers.losses import LOSSES, Critic, Means, r1_due, r1_penalty
from trainers.models import n_params, update_ema
from trainers.noise import eval_noise
from trainers.params import check, check_mutable_change, check_same_config, state_header


def check_core_config(config: Any, name: str) -> None:
    """The checks of the fields every AdversarialTrainer config has (its Config's
    __post_init__ calls this, then checks its architecture)."""
    for field in ("z_dim", "batch_size", "d_steps", "r1_every"):
        value = getattr(config, field)
        check(value >= 1, name, field, "must be >= 1", value)
    for field in ("lr_g", "lr_d"):
        value = getattr(config, field)
        check(math.isfinite(value) and value > 0, name, field, "must be > 0", value)
    for field in ("beta1", "beta2", "ema_decay"):
        value = getattr(config, field)
        check(0 <= value < 1, name, field, "must be in [0, 1)", value)
    for field in ("gp_weight", "r1_weight"):
        value = getattr(config, field)
        check(math.isfinite(value) and value >= 0, name, field, "must be >= 0", value)
    check(config.loss in LOSSES, name, "loss", f"must be one of {sorted(LOSSES)}", config.loss)


class AdversarialTrainer:
    """A G/D pair trained with alternating Adam steps. Its config has the fields loss,
    gp_weight, r1_weight, r1_every, lr_g, lr_d, beta1, beta2, batch_size, d_steps, ema and
    ema_decay; the subclass's Config adds its architecture."""

    NAME: ClassVar[str]
    Config: ClassVar[type]
    EVAL_BATCH: ClassVar[int] = 500  # samples generated per forward pass in evaluate()
    METRICS: ClassVar[tuple[str, ...]] = ()  # eval/ metrics: only those scored from samples
    # What population-based training may change mid-run: all read from self.config at each step
    # or pushed into the optimizers by `reconfigure`; the models' shapes, the loss and the EMA's
    # presence are fixed when the trainer is built.
    MUTABLE: ClassVar[tuple[str, ...]] = ("lr_g", "lr_d", "beta1", "beta2", "gp_weight",
                                          "r1_weight", "r1_every", "d_steps", "ema_decay")

    def __init__(self, config: Any, seed: int, device: str, amp: bool = False):
        if not isinstance(config, self.Config):
            config = build_config(type(self), config, self.NAME)
        self.config = config
        self.seed = seed
        self.device = torch.device(device)
        self.step = 0
        self._loss = LOSSES[config.loss]
        # bf16 autocast needs no loss scaling; channels_last is what tensor-core convolutions want
        self._amp = amp and self.device.type == "cuda"
        self._memory_format = torch.channels_last if self._amp else torch.contiguous_format
        # Noise, data and penalty draws come from this private CPU generator, so they neither
        # depend on nor disturb anyone else's use of the global RNG, and match across devices.
        self._rng = torch.Generator().manual_seed(seed)

    def _build(self, make_models: Callable[[], tuple[nn.Module, nn.Module]], n_eval: int,
               fused: bool = False) -> None:
        """G and D from `make_models`, initialised from the seed without touching the global RNG,
        then the EMA copy of G, the Adam pair and the fixed eval noise (n_eval, z_dim)."""
        cfg = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.g, self.d = make_models()
        self.g.to(self.device, memory_format=self._memory_format).train()
        self.d.to(self.device, memory_format=self._memory_format).train()
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if cfg.ema else None
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr_g, betas=betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr_d, betas=betas, fused=fused)
        # The sweep's shared noise bank: metrics and images compare across steps and trials.
        self.eval_z = eval_noise(n_eval, self.z_dim)  # (n_eval, z_dim)

    @property
    def z_dim(self) -> int:
        """Noise coordinates the generator takes."""
        return self.g.z_dim

    def _configure_optimizers(self) -> None:
        """Set the Adam pair's learning rates and betas to the config's; their moments stay."""
        cfg = self.config
        for optimizer, lr in ((self.opt_g, cfg.lr_g), (self.opt_d, cfg.lr_d)):
            for group in optimizer.param_groups:
                group["lr"], group["betas"] = lr, (cfg.beta1, cfg.beta2)

    def reconfigure(self, config: Any) -> None:
        """Train from the next step on with `config` (a Config or a params dict), which may
        differ from the current one in MUTABLE fields only (else ValueError naming the field).
        Models, Adam moments, EMA, step and RNG states are kept; state_dict() then records
        `config`, so a trainer built with it resumes from that checkpoint."""
        if not isinstance(config, self.Config):
            config = build_config(type(self), config, self.NAME)
        check_mutable_change(self.config, config, self.MUTABLE, self.NAME)
        self.config = config
        self._configure_optimizers()

    # -- training ------------------------------------------------------------------------------
    def train_for(self, n: int) -> dict[str, float]:
        """n generator steps, each after d_steps D steps; losses are means over the steps that
        computed them (a lazy R1 skips some)."""
        means = Means()
        start = time.perf_counter()
        for _ in range(n):
            self._train_step(means)
        # Device tensors are read here: one synchronisation per call, not per step.
        metrics = {f"train/{key}": float(mean) for key, mean in means.means().items()}
        elapsed = time.perf_counter() - start
        metrics["perf/steps_per_s"] = n / elapsed if elapsed > 0 else math.nan
        return metrics

    def _train_step(self, means: Means) -> None:
        raise NotImplementedError

    def _penalized(self, loss: Tensor, critic: Critic, real: Tensor, fake: Tensor,
                   d_step: int) -> tuple[Tensor, dict[str, Tensor]]:
        """D's loss plus gp_weight * GP (wgan_gp) and, on every r1_every-th D step (`d_step`
        counts D steps over the whole run), r1_weight * r1_every / 2 * R1; and those terms."""
        cfg, penalties = self.config, {}
        with self._fp32():  # a double backward through bf16 activations is too coarse
            if self._loss.penalty is not None:
                penalties["gp"] = self._loss.penalty(critic, real, fake, self._rng)  # scalar
                loss = loss + cfg.gp_weight * penalties["gp"]
            if r1_due(cfg.r1_weight, cfg.r1_every, d_step):
                penalties["r1"] = r1_penalty(critic, real, fake, self._rng)  # scalar
                loss = loss + cfg.r1_weight * cfg.r1_every / 2 * penalties["r1"]
        return loss, penalties

    @staticmethod
    def _update(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def _g_stepped(self) -> None:
        """Count a finished G step and move the EMA of G towards G."""
        self.step += 1
        if self.g_ema is not None:
            update_ema(self.g_ema, self.g, self.step, self.config.ema_decay)

    def _batch_z(self) -> Tensor:
        z = torch.randn(self.config.batch_size, self.z_dim, generator=self._rng)
        return z.to(self.device)  # (B, z_dim)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._amp)

    def _fp32(self):
        if not self._amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, enabled=False)

    # -- evaluation and export -----------------------------------------------------------------
    def _sampler(self) -> nn.Module:
        return self.g_ema if self.g_ema is not None else self.g

    @torch.no_grad()
    def _generate(self, z: Tensor) -> Tensor:
        """Samples (n, ...) float32 on CPU from z (n, z_dim), by G or its EMA in eval mode."""
        g = self._sampler()
        was_training = g.training
        g.eval()  # batch norm uses running statistics: a sample depends on its z alone
        try:
            with self._autocast():
                parts = [g(part.to(self.device)).float().cpu() for part in z.split(self.EVAL_BATCH)]
        finally:
            g.train(was_training)
        return torch.cat(parts).contiguous()

    def evaluate(self) -> Evaluation:
        """Samples from the fixed eval noise, for gansweep to score, and G's size."""
        return Evaluation(metrics={"model/g_params": float(n_params(self.g))},
                          samples=self._generate(self.eval_z))

    def generator(self) -> nn.Module:
        """A CPU copy of G (its EMA when ema is on) in eval mode: z (n, z_dim) -> samples."""
        g = copy.deepcopy(self._sampler()).cpu()
        return g.to(memory_format=torch.contiguous_format).eval()

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume bitwise: loads with torch.load(..., weights_only=True)."""
        return {
            **state_header(self.NAME, self.config, self.seed, self.step),
            "g": self.g.state_dict(),
            "d": self.d.state_dict(),
            "g_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "eval_z": self.eval_z.clone(),
            "rng": self._rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        check_same_config(state, self.config)
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])
        if self.g_ema is not None:
            self.g_ema.load_state_dict(state["g_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self._configure_optimizers()  # the config is the truth, not what the optimizers saved
        self.step = int(state["step"])
        self.eval_z = state["eval_z"].cpu().clone()
        self._rng.set_state(state["rng"].cpu())
