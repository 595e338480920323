"""One driver per sweep: a lease with a heartbeat, kept in the study storage.

A driver writes `{id, host, pid, renewed}` into the study's user attributes and renews it every
few seconds from a background thread. A second driver refuses to start while the lease is fresh.
A lease expires when its driver stops renewing it (killed, machine gone); on the same host a
lease whose process is gone is taken over at once, so `gansweep resume` right after a crash
does not wait out the expiry.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import optuna

from orchestrator.spec import SpecError
from orchestrator.study import open_storage

LEASE_ATTR = "gansweep.driver"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class DriverLease:
    def __init__(self, storage_url: str, study: optuna.Study, ttl_s: float = 30.0,
                 every_s: float = 5.0):
        self.url, self.study_name, self.study_id = storage_url, study.study_name, study._study_id
        self.storage = study._storage
        self.ttl_s, self.every_s = ttl_s, every_s
        self.id = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict | None:
        """The current lease, if someone else holds a live one."""
        lease = self.storage.get_study_user_attrs(self.study_id).get(LEASE_ATTR)
        if not lease or lease.get("id") == self.id:
            return None
        age = time.time() - float(lease.get("renewed", 0))
        if age > self.ttl_s:
            return None
        if lease.get("host") == socket.gethostname() and not _alive(int(lease.get("pid", 0))):
            return None  # its driver died on this machine: no need to wait for the expiry
        return {**lease, "age_s": age}

    def acquire(self) -> None:
        held = self.holder()
        if held is not None:
            raise SpecError(
                f"sweep {self.study_name!r} is being driven by pid {held['pid']} on "
                f"{held['host']} (heartbeat {held['age_s']:.0f}s ago); wait for it, or stop it "
                f"and run `gansweep resume {self.study_name}`")
        self._write(self.storage)
        self._thread = threading.Thread(target=self._beat, name="gansweep-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            lease = self.storage.get_study_user_attrs(self.study_id).get(LEASE_ATTR)
            if lease and lease.get("id") == self.id:
                self.storage.set_study_user_attr(self.study_id, LEASE_ATTR, None)
        except Exception:  # expires on its own
            pass

    def _write(self, storage) -> None:
        storage.set_study_user_attr(self.study_id, LEASE_ATTR, {
            "id": self.id, "host": socket.gethostname(), "pid": os.getpid(),
            "renewed": time.time()})

    def _beat(self) -> None:
        storage = open_storage(self.url)  # its own connections, off the loop's
        while not self._stop.wait(self.every_s):
            try:
                self._write(storage)
            except Exception:  # a missed beat; the next one may get through
                continue
