"""A sweep stopped from outside: SIGINT / SIGTERM once stop it gracefully (the chunks in flight
finish and checkpoint, their trials stay resumable; one still out after the watchdog's
STOP_GRACE_S is stopped, its trial resumable from its last checkpoint); twice, at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from orchestrator.driver.watchdog import STOP_GRACE_S


class Interrupted(Exception):  # noqa: N818 - what happened to the sweep, as KeyboardInterrupt
    """The sweep stopped on a signal after its in-flight chunks checkpointed; it resumes."""

    def __init__(self, sweep: str, signum: int, suspended: list[int]):
        super().__init__(f"{sweep}: stopped by {signal.Signals(signum).name}")
        self.sweep, self.signum, self.suspended = sweep, signum, suspended


class StopOnSignal:
    """SIGINT / SIGTERM once: `request_stop` (no new chunks; in-flight ones checkpoint).
    Twice: KeyboardInterrupt at once. Installed only on the main thread, where Python allows."""

    def __init__(self, request_stop: Callable[[str], None], stopping: Callable[[], bool],
                 notice: Callable[[str], None]):
        self.request_stop, self.stopping, self.notice = request_stop, stopping, notice
        self.signum = signal.SIGINT
        self.previous: dict = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.stopping():
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.signum = signum
        name = signal.Signals(signum).name
        self.request_stop(f"stopped by {name}")
        self.notice(f"{name}: no new chunks; the ones in flight get {STOP_GRACE_S:.0f}s to finish "
                    f"and checkpoint (send it again to stop at once)")
