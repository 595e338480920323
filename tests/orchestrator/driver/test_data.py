"""The driver's data: the feature network cached on disk by the dataset's content hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from orchestrator.driver.data import cached_feature_net
from trainers import feature_net as fn


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    """64 uint8 (1, 8, 8) noise images of 4 classes: enough to fit a net, fast."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (64, 1, 8, 8), np.uint8), np.arange(64) % 4


@pytest.fixture(scope="module")
def trained(images, tmp_path_factory):
    """(state, net_id, cache_dir) from a first, training call of cached_feature_net."""
    train, labels = images
    cache = tmp_path_factory.mktemp("featnet")
    state, nid, trained_now = cached_feature_net(train, labels, 4, "ab" * 32, cache)
    assert trained_now
    return state, nid, cache


def test_cached_feature_net_loads_from_cache_without_training(images, trained, monkeypatch):
    state, nid, cache = trained
    assert [p.name for p in cache.iterdir()] == [f"featnet-{'ab' * 8}-v1.pt"]

    def no_training(*args, **kwargs):
        raise AssertionError("fit_feature_net called despite a cached net")

    monkeypatch.setattr(fn, "fit_feature_net", no_training)
    train, labels = images
    again, again_id, trained_now = cached_feature_net(train, labels, 4, "ab" * 32, cache)
    assert not trained_now
    assert again_id == nid and nid.startswith("cls64-") and len(nid) == len("cls64-") + 12
    assert again.keys() == state.keys()
    assert all(torch.equal(again["weights"][k], v) for k, v in state["weights"].items())


def test_unlabeled_data_trains_and_caches_an_autoencoder(images, tmp_path):
    state, nid, trained_now = cached_feature_net(images[0], None, 0, "cd" * 32, tmp_path)
    assert trained_now and nid.startswith("ae32-") and state["kind"] == "autoencoder"
    assert [p.name for p in tmp_path.iterdir()] == [f"featnet-{'cd' * 8}-v1.pt"]
