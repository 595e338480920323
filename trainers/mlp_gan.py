"""MLP GAN on a 2D Gaussian mixture: the canonical alternating D/G loop, as a stateful object.

No I/O and no printing: `train_for` returns metrics and `evaluate` points; the caller scores and
logs them. The parts shared with dcgan (Adam pair, EMA, penalties, RNGs, state) are in
trainers/adversarial.py; the training step is written out here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from trainers.adversarial import AdversarialTrainer, check_core_config
from trainers.clustering import kmeans, nearest
from trainers.losses import Means, d_accuracy
from trainers.mixtures import Mixture
from trainers.models import ACTIVATIONS, ClusterGenerator, Discriminator, Generator
from trainers.params import check

NAME = "mlp_gan"
N_EVAL = 2_500  # PacGAN protocol: metrics on 2,500 generated points
N_POOL = 10_000  # real points that self-conditioning clusters


@dataclass(frozen=True)
class MLPGANConfig:
    """Hyperparameters of an MLP GAN. The defaults are a known-good baseline for ring8.

    Measured on CPU, seeds 0-6: all 8 modes and high_quality 0.92-0.94 after 3,000 G steps
    (~20 s on 2 cores). Metrics still dip now and then mid-run, as GANs oscillate. d_steps=1 is
    ~1.6x faster per step but its high_quality at 3,000 steps ranged 0.6-0.9. With R1, an EMA
    of G and `clusters` (search_spaces/ring8.yaml), one D step reaches score ~0.998 instead.
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
    """GAN objective: ns (non-saturating), hinge, lsgan or wgan_gp."""
    gp_weight: float = 10.0
    """Weight of the gradient penalty; used only by wgan_gp."""
    d_steps: int = 2
    """Discriminator steps before each generator step (2 damps ring8's oscillations without R1)."""
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
        check_core_config(self, NAME)
        for field in ("g_depth", "g_width", "d_depth", "d_width"):
            check(getattr(self, field) >= 1, NAME, field, "must be >= 1", getattr(self, field))
        most = N_POOL // 10  # ten real points a cluster on average
        value = self.clusters
        check(0 <= value <= most, NAME, "clusters", f"must be in [0, {most}]", value)
        check(
            self.activation in ACTIVATIONS,
            NAME,
            "activation",
            f"must be one of {sorted(ACTIVATIONS)}",
            self.activation,
        )


class MLPGANTrainer(AdversarialTrainer):
    """Trains an MLP GAN on a 2D mixture; same seed and config give bitwise identical metrics on
    CPU. `evaluate` returns 2,500 points for the PacGAN metrics and the scatter plot."""

    NAME = NAME
    Config = MLPGANConfig
    DATA_KIND = "mixture"
    EVAL_BATCH = N_EVAL  # the eval points in one pass

    def __init__(self, config: dict | MLPGANConfig, data: Mixture, seed: int, device: str = "cpu"):
        if not isinstance(data, Mixture):
            raise TypeError(f"{NAME} trains on a 2D mixture (ring8, grid25), got {data!r}")
        super().__init__(config, seed, device)
        self.data = data
        cfg = self.config
        self.centroids: Tensor | None = None  # (clusters, 2) with self-conditioning
        weights = None
        if cfg.clusters:
            pool = data.sample(N_POOL, torch.Generator().manual_seed(seed))  # (N_POOL, 2)
            centroids = kmeans(pool, cfg.clusters, torch.Generator().manual_seed(seed))
            weights = torch.bincount(nearest(pool, centroids), minlength=cfg.clusters) / N_POOL
            self.centroids = centroids.to(self.device)

        def make_models() -> tuple[nn.Module, nn.Module]:
            if weights is None:
                g = Generator(cfg.z_dim, cfg.g_width, cfg.g_depth, cfg.activation, cfg.batchnorm)
            else:
                g = ClusterGenerator(cfg.z_dim, cfg.g_width, cfg.g_depth, cfg.activation,
                                     cfg.batchnorm, weights)
            return g, Discriminator(cfg.d_width, cfg.d_depth, cfg.activation, cfg.clusters)
        self._build(make_models, data.n_eval, fused=True)

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
            d_real, d_fake = critic(real), critic(fake)  # D: (B, 2) -> (B, 1)
            loss = self._loss.d(d_real, d_fake)  # scalar
            loss, penalties = self._penalized(loss, critic, real, fake,
                                              self.step * cfg.d_steps + i)
            self._update(self.opt_d, loss)
            real_acc, fake_acc = d_accuracy(d_real, d_fake)  # scored before this update
            means.add({key: value.item() for key, value in {
                "d_loss": loss, **penalties, "d_real_acc": real_acc,
                "d_fake_acc": fake_acc}.items()})
        # G step: minimise loss.g(D(G(z))), moving samples to where D scores them as real.
        self.d.requires_grad_(False)  # D is a fixed critic here: skip its weight gradients
        z = self._batch_z()  # (B, z_dim)
        if self.centroids is None:
            d_fake = self.d(self.g(z))  # (B, z_dim) -> (B, 2) -> (B, 1)
        else:
            cluster = self.g.cluster(z)  # (B,), in the clusters' real proportions
            d_fake = self.d(self.g.decode(z[:, :-1], cluster), cluster)  # (B, 1)
        g_loss = self._loss.g(d_fake)  # (B, 1) -> scalar
        self._update(self.opt_g, g_loss)
        self.d.requires_grad_(True)
        self._g_stepped()
        means.add({"g_loss": g_loss.item()})

    def _batch_real(self) -> Tensor:
        return self.data.sample(self.config.batch_size, self._rng).to(self.device)  # (B, 2)

    def state_dict(self) -> dict:
        """The shared state, plus the self-conditioning centroids."""
        centroids = None if self.centroids is None else self.centroids.cpu()
        return {**super().state_dict(), "centroids": centroids}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.centroids is not None:
            self.centroids = state["centroids"].to(self.device)
