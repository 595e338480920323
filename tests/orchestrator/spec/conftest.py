"""Fixtures shared by the spec tests."""

import pytest


@pytest.fixture
def pbt_synthetic(monkeypatch):
    """The synthetic trainer as one that supports population-based training and can change x
    mid-run, and nothing else, whatever the built-in declares: y stands for an architecture
    parameter (trainers/base.py: MUTABLE, reconfigure)."""
    from trainers.synthetic import SyntheticTrainer

    monkeypatch.setattr(SyntheticTrainer, "MUTABLE", ("x",), raising=False)
    monkeypatch.setattr(SyntheticTrainer, "reconfigure", lambda self, config: None,
                        raising=False)
    return SyntheticTrainer
