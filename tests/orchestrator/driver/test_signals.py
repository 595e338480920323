"""Ctrl-C once stops a sweep gracefully, twice at once; the previous handlers come back."""

from __future__ import annotations

import os
import signal

import pytest

from orchestrator.driver.signals import Interrupted, StopOnSignal


def test_a_first_signal_asks_for_a_stop_and_a_second_interrupts_at_once():
    asked, notices = [], []
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignal(asked.append, lambda: bool(asked), notices.append) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert asked == ["stopped by SIGTERM"] and stop.signum == signal.SIGTERM
        assert notices[0].startswith("SIGTERM: no new chunks")
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_interrupted_sweep_says_which_signal_and_keeps_its_suspended_trials():
    done = Interrupted("ring8", signal.SIGINT, [1, 2])
    assert (str(done), done.suspended, done.signum) == ("ring8: stopped by SIGINT", [1, 2], 2)
