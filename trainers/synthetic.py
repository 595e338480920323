"""A trainer with no model: a known function of its params and step, at a chosen cost per step.

For orchestration benchmarks and scheduler tests: its optimum (x=1, y=-0.5) and its learning
curve are known exactly, and `sleep_s` sets how long a step takes.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from trainers.base import Evaluation, build_config
from trainers.params import check, check_mutable_change, check_same_config, state_header

NAME = "synthetic"


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the synthetic objective. Non-finite x or y give a NaN loss: a divergence."""

    x: float = 0.0
    """First coordinate; the loss is lowest at x = 1."""
    y: float = 0.0
    """Second coordinate; the loss is lowest at y = -0.5."""
    sleep_s: float = 0.0
    """Seconds slept per training step."""
    fail_at: int = -1
    """Raise RuntimeError once training reaches this step (-1: never); tests the failure path."""
    die_at: int = -1
    """Kill the whole process once training reaches this step (-1: never): a lost worker."""
    nan_at: int = -1
    """From this step on the loss is NaN (-1: never): a run that diverges."""

    def __post_init__(self) -> None:
        check(
            math.isfinite(self.sleep_s) and self.sleep_s >= 0,
            NAME,
            "sleep_s",
            "must be >= 0",
            self.sleep_s,
        )


class SyntheticTrainer:
    """loss(step) = (x - 1)^2 + (y + 0.5)^2 + 1 / (1 + step): decreasing to a floor set by x, y."""

    Config = SyntheticConfig
    DATA_KIND = "none"
    METRICS = ("eval/loss", "eval/x_loss")
    MUTABLE = ("x", "y")  # population-based training moves the point: the loss follows at once
    z_dim = 0  # no generator

    def __init__(self, config: dict | SyntheticConfig, data: None, seed: int, device: str = "cpu"):
        if not isinstance(config, SyntheticConfig):
            config = build_config(SyntheticTrainer, config, NAME)
        self.config = config
        self.data = data
        self.seed = seed
        self.device = device
        self.step = 0

    def reconfigure(self, config: dict | SyntheticConfig) -> None:
        """Go on from this step with a new x and y (a Config or a params dict); any other field
        changed is a ValueError naming it. The loss is theirs from the next call on."""
        if not isinstance(config, SyntheticConfig):
            config = build_config(SyntheticTrainer, config, NAME)
        check_mutable_change(self.config, config, self.MUTABLE, NAME)
        self.config = config

    def _loss(self) -> float:
        cfg = self.config
        if 0 <= cfg.nan_at <= self.step:
            return math.nan
        return (cfg.x - 1.0) ** 2 + (cfg.y + 0.5) ** 2 + 1.0 / (1.0 + self.step)

    def train_for(self, n: int) -> dict[str, float]:
        cfg = self.config
        stop_at = min((s for s in (cfg.fail_at, cfg.die_at, cfg.nan_at) if s >= self.step),
                      default=-1)
        if 0 <= stop_at <= self.step + n:  # fails part-way through this chunk
            n = max(0, stop_at - self.step)
        time.sleep(n * self.config.sleep_s)  # one call: n tiny sleeps would overshoot
        self.step += n
        if self.step == self.config.die_at:
            os._exit(1)  # no cleanup, no exception: as if the OOM killer struck
        if self.step == self.config.fail_at:
            raise RuntimeError(f"synthetic failure at step {self.step}")
        return {"train/loss": self._loss()}

    def evaluate(self) -> Evaluation:
        """eval/loss, and eval/x_loss: the same without its y term (a second metric, e.g. to
        prune on); no samples."""
        loss = self._loss()
        return Evaluation({"eval/loss": loss, "eval/x_loss": loss - (self.config.y + 0.5) ** 2})

    def generator(self) -> None:
        return None

    def state_dict(self) -> dict:
        return state_header(NAME, self.config, self.seed, self.step)

    def load_state_dict(self, sd: dict) -> None:
        check_same_config(sd, self.config)
        self.step = int(sd["step"])
