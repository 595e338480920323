"""MLP GAN on a 2D Gaussian mixture: the canonical alternating D/G loop, as a stateful object.

No I/O and no printing: `train_for` and `evaluate` return metrics; the caller logs them.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from trainers.clustering import kmeans, nearest
from trainers.losses import LOSSES, Means, r1_due, r1_penalty
from trainers.mixtures import Mixture, mixture_metrics
from trainers.models import (
    ACTIVATIONS,
    ClusterGenerator,
    Discriminator,
    Generator,
    n_params,
    update_ema,
)
from trainers.params import check, check_same_config, config_from_params, state_header
from trainers.plots import scatter_png

NAME = "mlp_gan"
N_EVAL = 2_500  # PacGAN protocol: metrics on 2,500 generated points
N_POOL = 10_000  # real points that self-conditioning clusters


@dataclass(frozen=True)
class MLPGANConfig:
    """Hyperparameters of an MLP GAN. The defaults are a known-good baseline for ring8.

    Measured on CPU, seeds 0-6: all 8 modes and high_quality 0.92-0.94 after 3,000 G steps
    (~20 s on 2 cores). Metrics still dip now and then mid-run, as GANs oscillate. d_steps=1 is
    ~1.6x faster per step but its high_quality at 3,000 steps ranged 0.6-0.9.
    """

    g_depth: int = 3
    """Hidden layers in the generator."""
    g_width: int = 128
    """Units per hidden layer of the generator."""
    d_depth: int = 3
    """Hidden layers in the discriminator."""
    d_width: int = 128
    """Units per hidden layer of the discriminator."""
    activation: str = "relu"
    """Hidden activation of G and D: relu, leaky_relu, elu, tanh or silu."""
    batchnorm: bool = False
    """BatchNorm1d after each hidden layer of G only (D stays per-sample, as WGAN-GP needs)."""
    z_dim: int = 2
    """Dimension of the Gaussian latent z."""
    lr_g: float = 1e-3
    """Adam learning rate of the generator."""
    lr_d: float = 1e-3
    """Adam learning rate of the discriminator."""
    beta1: float = 0.5
    """Adam beta1 of both optimizers."""
    beta2: float = 0.999
    """Adam beta2 of both optimizers."""
    batch_size: int = 256
    """Real and fake points per D and G step."""
    loss: str = "ns"
    """GAN objective: ns (non-saturating), hinge or wgan_gp."""
    gp_weight: float = 10.0
    """Weight of the gradient penalty; used only by wgan_gp."""
    d_steps: int = 2
    """Discriminator steps before each generator step (2 damps ring8's oscillations)."""
    r1_weight: float = 0.0
    """R1 penalty on real points, r1_weight / 2 * E||grad D(x)||^2, with any loss; 0 is off."""
    r1_every: int = 1
    """Lazy R1 (StyleGAN2): the penalty on every r1_every-th D step only, r1_every times as
    heavy. Its double backward is about a third of a grid25 step (3x256 D, batch 512)."""
    ema: bool = False
    """Evaluate, plot and export an exponential moving average of G's weights."""
    ema_decay: float = 0.999
    """Decay of the EMA per G step, warmed up as min(ema_decay, (1 + t) / (10 + t))."""
    clusters: int = 0
    """Self-conditioning (Liu et al. 2020) on this many k-means clusters of the real points; 0 is
    off. D and G are told each point's cluster, fakes come in the clusters' real proportions, so G
    learns one piece per cluster and needs no bridges between modes. The generator then takes
    z_dim + 1 noise coordinates, the last picking the cluster."""

    def __post_init__(self) -> None:
        for field in ("g_depth", "g_width", "d_depth", "d_width", "z_dim", "batch_size", "d_steps",
                      "r1_every"):
            check(getattr(self, field) >= 1, NAME, field, "must be >= 1", getattr(self, field))
        most = N_POOL // 10  # ten real points a cluster on average
        value = self.clusters
        check(0 <= value <= most, NAME, "clusters", f"must be in [0, {most}]", value)
        for field in ("lr_g", "lr_d"):
            value = getattr(self, field)
            check(math.isfinite(value) and value > 0, NAME, field, "must be > 0", value)
        for field in ("beta1", "beta2", "ema_decay"):
            value = getattr(self, field)
            check(0 <= value < 1, NAME, field, "must be in [0, 1)", value)
        for field in ("gp_weight", "r1_weight"):
            value = getattr(self, field)
            check(math.isfinite(value) and value >= 0, NAME, field, "must be >= 0", value)
        check(
            self.activation in ACTIVATIONS,
            NAME,
            "activation",
            f"must be one of {sorted(ACTIVATIONS)}",
            self.activation,
        )
        check(self.loss in LOSSES, NAME, "loss", f"must be one of {sorted(LOSSES)}", self.loss)

    @classmethod
    def from_params(cls, params: dict) -> MLPGANConfig:
        return config_from_params(cls, params, NAME)


class MLPGANTrainer:
    """Trains an MLP GAN on `data`; same seed and config give bitwise identical metrics on CPU."""

    Config = MLPGANConfig
    DATASETS = ("ring8", "grid25")
    DATA_KIND = "mixture"

    def __init__(self, config: dict | MLPGANConfig, data: Mixture, seed: int, device: str = "cpu"):
        if not isinstance(data, Mixture):
            known = ", ".join(self.DATASETS)
            raise TypeError(f"{NAME} trains on a 2D mixture ({known}), got {data!r}")
        if not isinstance(config, MLPGANConfig):
            config = MLPGANConfig.from_params(config)
        self.config = config
        self.data = data
        self.seed = seed
        self.device = torch.device(device)
        self.step = 0
        cfg = self.config
        self._loss = LOSSES[cfg.loss]
        self.centroids: Tensor | None = None  # (clusters, 2) with self-conditioning
        torch.manual_seed(seed)  # module initialisation draws from the global RNG
        if cfg.clusters:
            pool = data.sample(N_POOL, torch.Generator().manual_seed(seed))  # (N_POOL, 2)
            centroids = kmeans(pool, cfg.clusters, torch.Generator().manual_seed(seed))
            counts = torch.bincount(nearest(pool, centroids), minlength=cfg.clusters)
            self.g = ClusterGenerator(cfg.z_dim, cfg.g_width, cfg.g_depth, cfg.activation,
                                      cfg.batchnorm, counts / N_POOL)
            self.centroids = centroids.to(self.device)
        else:
            self.g = Generator(cfg.z_dim, cfg.g_width, cfg.g_depth, cfg.activation, cfg.batchnorm)
        self.d = Discriminator(cfg.d_width, cfg.d_depth, cfg.activation, cfg.clusters)
        self.g.to(self.device).train()
        self.d.to(self.device).train()
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if cfg.ema else None
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr_g, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr_d, betas=betas, fused=True)
        # Noise, data and penalty draws come from this private CPU generator, so they neither
        # depend on nor disturb anyone else's use of the global RNG, and match across devices.
        self._rng = torch.Generator().manual_seed(seed)
        # Fixed per trial, drawn once: metrics and images compare across steps and trials.
        fixed = torch.Generator().manual_seed(seed)
        self.eval_z = torch.randn(N_EVAL, self.z_dim, generator=fixed)  # (2500, z_dim)
        self._real_plot = data.sample(N_EVAL, fixed).numpy()  # (2500, 2)

    @property
    def z_dim(self) -> int:
        """Noise coordinates the generator takes: z_dim, plus one with self-conditioning."""
        return self.g.z_dim

    def train_for(self, n: int) -> dict[str, float]:
        """n generator steps, each after d_steps D steps; losses are means over the steps that
        computed them (a lazy R1 skips some)."""
        means = Means()
        start = time.perf_counter()
        for _ in range(n):
            self._train_step(means)
        elapsed = time.perf_counter() - start
        metrics = {f"train/{key}": mean for key, mean in means.means().items()}
        metrics["perf/steps_per_s"] = n / elapsed if elapsed > 0 else math.nan
        return metrics

    def _train_step(self, means: Means) -> None:
        cfg = self.config
        for i in range(cfg.d_steps):
            # D step: minimise loss.d(D(x), D(G(z))) [+ gp_weight * GP]
            # [+ r1_weight * r1_every / 2 * R1 on every r1_every-th step], scoring real above fake.
            # Self-conditioned: D(x, cluster), the fakes drawn in the real points' clusters.
            real = self._batch_real()  # (B, 2)
            critic = self.d
            with torch.no_grad():  # no gradient into G
                if self.centroids is None:
                    fake = self.g(self._batch_z())  # (B, z_dim) -> (B, 2)
                else:
                    cluster = nearest(real, self.centroids)  # (B,)
                    fake = self.g.decode(self._batch_z()[:, :-1], cluster)  # (B, 2)
                    critic = partial(self.d, cluster=cluster)
            loss = self._loss.d(critic(real), critic(fake))  # D: (B, 2) -> (B, 1); loss scalar
            penalties = {}
            if self._loss.penalty is not None:
                penalties["gp"] = self._loss.penalty(critic, real, fake, self._rng)  # scalar
                loss = loss + cfg.gp_weight * penalties["gp"]
            if r1_due(cfg.r1_weight, cfg.r1_every, self.step * cfg.d_steps + i):
                penalties["r1"] = r1_penalty(critic, real, fake, self._rng)  # scalar
                loss = loss + cfg.r1_weight * cfg.r1_every / 2 * penalties["r1"]
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_d.step()
            means.add({key: value.item() for key, value in {"d_loss": loss, **penalties}.items()})
        # G step: minimise loss.g(D(G(z))), moving samples to where D scores them as real.
        self.d.requires_grad_(False)  # D is a fixed critic here: skip its weight gradients
        z = self._batch_z()  # (B, z_dim)
        if self.centroids is None:
            d_fake = self.d(self.g(z))  # (B, z_dim) -> (B, 2) -> (B, 1)
        else:
            cluster = self.g.cluster(z)  # (B,), in the clusters' real proportions
            d_fake = self.d(self.g.decode(z[:, :-1], cluster), cluster)  # (B, 1)
        g_loss = self._loss.g(d_fake)  # (B, 1) -> scalar
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)
        self.step += 1
        if self.g_ema is not None:
            update_ema(self.g_ema, self.g, self.step, cfg.ema_decay)
        means.add({"g_loss": g_loss.item()})

    def _batch_real(self) -> Tensor:
        return self.data.sample(self.config.batch_size, self._rng).to(self.device)  # (B, 2)

    def _batch_z(self) -> Tensor:
        z = torch.randn(self.config.batch_size, self.z_dim, generator=self._rng)
        return z.to(self.device)  # (B, z_dim)

    def _sampler(self) -> Generator | ClusterGenerator:
        return self.g_ema if self.g_ema is not None else self.g

    @torch.no_grad()
    def _eval_points(self) -> Tensor:
        g = self._sampler()
        was_training = g.training
        g.eval()  # batchnorm uses running statistics: the points depend on z alone
        try:
            return g(self.eval_z.to(self.device)).cpu()  # (2500, z_dim) -> (2500, 2)
        finally:
            g.train(was_training)

    def evaluate(self) -> dict[str, float]:
        """PacGAN metrics of G on the fixed eval noise, plus the generator's size."""
        scores = mixture_metrics(self._eval_points(), self.data)
        metrics = {f"eval/{key}": float(value) for key, value in scores.items()}
        metrics["model/g_params"] = float(n_params(self.g))
        return metrics

    def sample_image(self) -> bytes:
        """PNG scatter of real (grey) and generated (red) points on axes fixed by the mixture."""
        extent = 1.25 * self.data.extent + 0.25  # a margin around the outermost modes
        return scatter_png(self._real_plot, self._eval_points().numpy(), extent)

    def generator(self) -> Generator | ClusterGenerator:
        """A CPU copy of G (its EMA when ema is on) in eval mode: z (n, z_dim) float32 -> (n, 2)."""
        return copy.deepcopy(self._sampler()).cpu().eval()

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
            "centroids": None if self.centroids is None else self.centroids.cpu(),
            "rng": self._rng.get_state(),
            "torch_rng": torch.get_rng_state(),
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
        self.eval_z = sd["eval_z"].clone()
        if self.centroids is not None:
            self.centroids = sd["centroids"].to(self.device)
        self._rng.set_state(sd["rng"])
        torch.set_rng_state(sd["torch_rng"])
