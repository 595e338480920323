"""A small feature network per image dataset, for Fréchet distances in its space ("FD-cls").

Labeled data: a CNN classifier whose 64-d penultimate layer is the feature. Unlabeled data: a
conv autoencoder whose 32-d bottleneck is the feature. Trained once per dataset, deterministically
(the driver caches it on disk by the dataset's content hash: orchestrator/driver/data.py); FDs are
only comparable under the same net, so every net has an id derived from its weights (`net_id`)
for runs to record.
"""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.frechet import class_coverage, class_kl, frechet_distance, gaussian_stats
from trainers.image_data import to_float
from trainers.image_metrics import SAMPLE_METRICS, sample_metrics

CLASSIFIER_DIM = 64
AUTOENCODER_DIM = 32
EVAL_BATCH = 256
RECIPE_VERSION = "v1"  # bump when the architecture or the training recipe changes: caches key on it


class FeatureNet(nn.Module):
    """Conv trunk -> adaptive pool -> linear to `feature_dim`; then a class head or a decoder.

    Input (N, C, H, W) float in [-1, 1], square, 8..64 px. The adaptive pool makes the trunk and
    the head independent of H; only the autoencoder's decoder needs `size` to rebuild the image.
    """

    def __init__(self, kind: str, channels: int, n_classes: int, feature_dim: int, size: int):
        super().__init__()
        if kind not in ("classifier", "autoencoder"):
            raise ValueError(f"kind must be classifier or autoencoder, got {kind!r}")
        self.kind, self.channels, self.n_classes = kind, channels, n_classes
        self.feature_dim, self.size = feature_dim, size
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),  # H/2
            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(),  # H/4
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),  # (N, 128 * 16)
            nn.Linear(128 * 16, feature_dim),  # (N, D): the feature, pre-activation
        )
        if kind == "classifier":
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(feature_dim, n_classes))
        else:
            self._q = math.ceil(size / 4)  # decoder starts at H/4 and doubles twice
            self.expand = nn.Linear(feature_dim, 64 * self._q * self._q)
            self.decoder = nn.Sequential(
                nn.ReLU(),
                nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),  # 2q
                nn.ConvTranspose2d(32, channels, 4, 2, 1),  # 4q >= size
            )

    def features(self, x: Tensor) -> Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, feature_dim)."""
        return self.trunk(x)

    def logits(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, n_classes); classifiers only."""
        if self.kind != "classifier":
            raise TypeError("an autoencoder feature net has no logits")
        return self.head(self.features(x))

    def reconstruct(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, size, size) in [-1, 1]; autoencoders only."""
        h = self.expand(self.features(x)).view(-1, 64, self._q, self._q)
        return torch.tanh(self.decoder(h)[:, :, : self.size, : self.size])

    def constructor_args(self) -> dict:
        return {"kind": self.kind, "channels": self.channels, "n_classes": self.n_classes,
                "feature_dim": self.feature_dim, "size": self.size}


def fit_feature_net(train: np.ndarray, labels: np.ndarray | None, n_classes: int,
                    seed: int = 0, epochs: int = 15, device: str = "cpu", *,
                    batch_size: int = 64, max_steps: int = 3_000) -> FeatureNet:
    """Train a classifier (labels given) or an autoencoder (labels None) on uint8 (N, C, H, W).

    Deterministic: init under a forked, seeded global RNG (the caller's RNG is left untouched),
    shuffling from a private generator, no dropout. Work is `epochs` passes capped at `max_steps`
    Adam steps. On 8x8 digits (1,437 images) the default takes ~2 s on 2 CPU cores and scores
    ~97% held-out accuracy.
    """
    n, channels, height, width = train.shape
    if height != width:
        raise ValueError(f"feature net needs square images, got {height}x{width}")
    kind = "classifier" if labels is not None else "autoencoder"
    dim = CLASSIFIER_DIM if labels is not None else AUTOENCODER_DIM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FeatureNet(kind, channels, n_classes, dim, height)
    net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    images = torch.from_numpy(np.ascontiguousarray(train))  # (N, C, H, W) uint8, CPU
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64)) if labels is not None else None
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(n / batch_size)
    total = min(epochs * steps_per_epoch, max_steps)
    step = 0
    while step < total:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            if step >= total:
                break
            idx = order[start : start + batch_size]
            x = to_float(images[idx]).to(device)  # (B, C, H, W) in [-1, 1]
            if targets is not None:
                loss = F.cross_entropy(net.logits(x), targets[idx].to(device))
            else:
                loss = F.mse_loss(net.reconstruct(x), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
    return net.eval()


def feature_net_state(net: FeatureNet) -> dict:
    """Constructor args plus CPU weights: loadable with torch.load(weights_only=True)."""
    weights = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return {**net.constructor_args(), "weights": weights}


def feature_net_from_state(state: dict) -> FeatureNet:
    args = {k: v for k, v in state.items() if k != "weights"}
    with torch.random.fork_rng(devices=[]):  # scoring leaves a trainer's global RNG alone
        net = FeatureNet(**args)
    net.load_state_dict(state["weights"])
    return net.eval()


def net_id(state: dict) -> str:
    """Kind + dim, then sha256 of the weights (names, shapes, bytes)[:12]: cls64-1a2b3c4d5e6f."""
    digest = hashlib.sha256()
    for name in sorted(state["weights"]):
        tensor = state["weights"][name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.numpy().tobytes())
    prefix = "cls" if state["kind"] == "classifier" else "ae"
    return f"{prefix}{state['feature_dim']}-{digest.hexdigest()[:12]}"


class ImageEvaluator:
    """FD-cls (and FID when an extractor is given) of generated images against held-out real ones,
    and the sample-based metrics in the same feature space (trainers/image_metrics.py).

    Reference statistics are computed once, from all of `held_out`. `evaluate_images` returns
    eval/fd, eval/kid (and eval/kid_std), eval/precision, eval/recall, eval/density and
    eval/coverage, plus eval/class_coverage and eval/class_kl for a classifier net, plus eval/fid
    when `extractor` (TorchScript bytes: (N, C, H, W) in [-1, 1] -> (N, D)) is given. All metrics
    are NaN when the fakes hold non-finite pixels (a diverged G).
    """

    def __init__(self, state: dict, held_out: np.ndarray, held_out_labels: np.ndarray | None,
                 n_classes: int, extractor: bytes | None = None, n_eval: int = 1000,
                 device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.n_eval, self.n_classes = n_eval, n_classes
        self.net = feature_net_from_state(state).to(self.device)
        self.labeled = self.net.kind == "classifier" and held_out_labels is not None
        self.extractor = None
        if extractor is not None:
            self.extractor = torch.jit.load(io.BytesIO(extractor), map_location=self.device)
            self.extractor.eval()
        real = to_float(held_out)  # (M, C, H, W), moved to device batch by batch
        features, _, extracted = self._embed(real)
        self.ref_stats = gaussian_stats(features)
        self.ref_features = torch.from_numpy(features).to(self.device)  # (M, D) float64
        self.ref_extracted = gaussian_stats(extracted) if extracted is not None else None
        self.real_hist = (np.bincount(np.asarray(held_out_labels), minlength=n_classes)
                          if self.labeled else None)

    def evaluate_images(self, fake: Tensor) -> dict[str, float]:
        """Metrics of `fake` (N, C, H, W) float in [-1, 1] (any device), N >= 2."""
        keys = ["eval/fd", *SAMPLE_METRICS]
        if self.labeled:
            keys += ["eval/class_coverage", "eval/class_kl"]
        if self.extractor is not None:
            keys.append("eval/fid")
        if not torch.isfinite(fake).all():
            return dict.fromkeys(keys, math.nan)
        features, pred, extracted = self._embed(fake)
        metrics = {"eval/fd": frechet_distance(*gaussian_stats(features), *self.ref_stats)}
        metrics.update(sample_metrics(self.ref_features,
                                      torch.from_numpy(features).to(self.device)))
        if self.labeled:
            metrics["eval/class_coverage"] = class_coverage(pred, self.n_classes)
            metrics["eval/class_kl"] = class_kl(pred, self.real_hist)
        if self.extractor is not None:
            metrics["eval/fid"] = frechet_distance(*gaussian_stats(extracted),
                                                   *self.ref_extracted)
        return metrics

    def floor(self, train: np.ndarray) -> dict[str, float]:
        """The same metrics with up to `n_eval` real training images (a fixed subset) as fakes."""
        n = min(self.n_eval, len(train))
        idx = np.sort(np.random.default_rng(0).choice(len(train), n, replace=False))
        return self.evaluate_images(to_float(train[idx]))

    @torch.no_grad()
    def _embed(self, x: Tensor) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Features (N, D), predicted classes (N,) or None, extractor features or None."""
        feats, preds, extra = [], [], []
        for start in range(0, len(x), EVAL_BATCH):
            batch = x[start : start + EVAL_BATCH].to(self.device, torch.float32)
            f = self.net.features(batch)  # (B, D)
            feats.append(f.cpu())
            if self.labeled:
                preds.append(self.net.head(f).argmax(dim=1).cpu())
            if self.extractor is not None:
                extra.append(self.extractor(batch).float().cpu())
        return (torch.cat(feats).double().numpy(),
                torch.cat(preds).numpy() if preds else None,
                torch.cat(extra).double().numpy() if extra else None)
