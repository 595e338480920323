"""The process's global RNGs (python, numpy, torch CPU and CUDA): seeded per trial, saved in every
checkpoint and restored on resume, so a trainer that draws from them (dropout, torch.randn without
a generator, a numpy shuffle) resumes bitwise too. The built-in trainers use private generators.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global RNGs (every CUDA device included) with `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def process_rng_state() -> dict[str, Any]:
    """The global RNG states, in types `torch.load(weights_only=True)` reads."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_process_rng_state(state: dict[str, Any]) -> None:
    """Restore `process_rng_state()`; torch's and CUDA's states are restored when the state has
    them (a checkpoint of an older gansweep has only python's and numpy's)."""
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])

