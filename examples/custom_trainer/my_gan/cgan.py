"""A conditional GAN on small labelled images, written against gansweep's trainer contract.

The user's code: gansweep is only named for `Evaluation` (what `evaluate` returns). It draws its
noise and batches from torch's global RNG, as most GAN code does; gansweep seeds that RNG for
each trial and saves and restores it with every checkpoint, so a resumed trial continues
bitwise.

The exported generator takes noise alone, as gansweep's contract asks: the last noise coordinate
picks the class (uniformly, through the normal CDF) and the rest feed the MLP, so samples come in
equal class proportions. `g.decode(z, labels)` draws a chosen class.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.base import Evaluation

LOSSES = ("ns", "hinge")


@dataclass(frozen=True)
class CGANConfig:
    """The sweepable parameters. With the defaults, on 8x8 digits on one CPU thread (seeds 0, 1):
    all 10 classes, class KL 0.01-0.02 and FD 58-71 (floor 19) after 3,000 steps, ~15 s."""

    z_dim: int = 32
    """Gaussian noise coordinates besides the one that picks the class."""
    width: int = 256
    """Units per hidden layer of G and D."""
    depth: int = 2
    """Hidden layers of G and D."""
    loss: str = "ns"
    """ns (non-saturating) or hinge."""
    lr_g: float = 2e-4
    """Adam learning rate of G."""
    lr_d: float = 2e-4
    """Adam learning rate of D."""
    beta1: float = 0.5
    """Adam beta1 of both optimizers."""
    batch_size: int = 64
    """Real and fake images per step."""

    def __post_init__(self) -> None:
        for name in ("z_dim", "width", "depth", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr_g", "lr_d"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.beta1 < 1:
            raise ValueError(f"beta1 must be in [0, 1), got {self.beta1}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")


def mlp(d_in: int, width: int, depth: int, d_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, nn.Linear(width, d_out))


class ConditionalGenerator(nn.Module):
    """noise (n, z_dim + 1) -> images (n, C, S, S) in [-1, 1]; the last coordinate is the class."""

    def __init__(self, z_dim: int, n_classes: int, shape: tuple[int, int, int], width: int,
                 depth: int):
        super().__init__()
        self.z_dim, self.n_classes, self.shape = z_dim + 1, n_classes, shape
        self.register_buffer("classes", torch.arange(n_classes))  # (K,)
        self.net = mlp(z_dim + n_classes, width, depth, math.prod(shape))

    def label(self, z: Tensor) -> Tensor:
        """The class (n,) that noise z (n, z_dim + 1) picks, uniformly."""
        uniform = torch.special.ndtr(z[:, -1])  # (n,) in (0, 1)
        return (uniform * self.n_classes).long().clamp(max=self.n_classes - 1)

    def decode(self, z: Tensor, label: Tensor) -> Tensor:
        """Images (n, C, S, S) of classes `label` (n,) from noise z (n, z_dim)."""
        onehot = (label[:, None] == self.classes).to(z.dtype)  # (n, K)
        x = self.net(torch.cat([z, onehot], dim=1))  # (n, C * S * S)
        return torch.tanh(x).view(-1, *self.shape)

    def forward(self, z: Tensor) -> Tensor:
        return self.decode(z[:, :-1], self.label(z))


class ConditionalDiscriminator(nn.Module):
    """images (n, C, S, S) and classes (n,) -> raw scores (n, 1)."""

    def __init__(self, n_classes: int, shape: tuple[int, int, int], width: int, depth: int):
        super().__init__()
        self.n_classes = n_classes
        self.net = mlp(math.prod(shape) + n_classes, width, depth, 1)

    def forward(self, x: Tensor, label: Tensor) -> Tensor:
        onehot = F.one_hot(label, self.n_classes).to(x.dtype)  # (n, K)
        return self.net(torch.cat([x.flatten(1), onehot], dim=1))


class ConditionalGAN:
    """gansweep's contract: Config, DATA_KIND, step, z_dim, train_for, evaluate, generator,
    state_dict, load_state_dict."""

    Config = CGANConfig
    DATA_KIND = "image"  # a trainers.ImageTask: .train, .train_labels, .n_classes, .n_eval

    def __init__(self, config: CGANConfig, data, seed: int, device: str = "cpu"):
        if data.train_labels is None:
            raise ValueError("a conditional GAN needs labelled images")
        self.config, self.seed, self.device, self.step = config, seed, torch.device(device), 0
        images = torch.from_numpy(data.train.copy()).float().div(127.5).sub(1.0)
        self.images = images.to(self.device)  # (N, C, S, S) in [-1, 1]
        self.labels = torch.from_numpy(data.train_labels.copy()).to(self.device)  # (N,)
        shape, k = tuple(images.shape[1:]), data.n_classes
        self.g = ConditionalGenerator(config.z_dim, k, shape, config.width, config.depth)
        self.d = ConditionalDiscriminator(k, shape, config.width, config.depth)
        self.g.to(self.device)
        self.d.to(self.device)
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=config.lr_d, betas=betas)
        # the same eval noise at every evaluation, so scores compare across steps
        self.eval_z = torch.randn(data.n_eval, self.g.z_dim,
                                  generator=torch.Generator().manual_seed(seed))

    @property
    def z_dim(self) -> int:
        """What generator() takes: z_dim Gaussian coordinates plus the one picking the class."""
        return self.g.z_dim

    def _sample_z(self, n: int) -> Tensor:
        return torch.randn(n, self.g.z_dim, device=self.device)  # the global RNG

    def train_for(self, n: int) -> dict[str, float]:
        d_sum = g_sum = 0.0
        for _ in range(n):
            # D: score real (image, label) pairs above generated ones of the same labels
            idx = torch.randint(len(self.images), (self.config.batch_size,), device=self.device)
            real, label = self.images[idx], self.labels[idx]
            with torch.no_grad():
                fake = self.g.decode(self._sample_z(len(idx))[:, :-1], label)
            d_real, d_fake = self.d(real, label), self.d(fake, label)
            if self.config.loss == "ns":
                d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            else:
                d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            # G: make D score generated pairs as real
            z = self._sample_z(self.config.batch_size)
            label = self.g.label(z)
            d_fake = self.d(self.g.decode(z[:, :-1], label), label)
            g_loss = F.softplus(-d_fake).mean() if self.config.loss == "ns" else -d_fake.mean()
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            self.step += 1
            d_sum, g_sum = d_sum + d_loss.item(), g_sum + g_loss.item()
        return {"train/d_loss": d_sum / max(n, 1), "train/g_loss": g_sum / max(n, 1)}

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        # Images for gansweep to score (FD, class coverage, class KL) and draw as a grid.
        images = self.g(self.eval_z.to(self.device)).cpu()
        return Evaluation(metrics={"model/g_params": float(sum(p.numel()
                                                               for p in self.g.parameters()))},
                          samples=images)

    def generator(self) -> nn.Module:
        return copy.deepcopy(self.g).cpu().eval()

    def state_dict(self) -> dict:
        return {"step": self.step, "g": self.g.state_dict(), "d": self.d.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
