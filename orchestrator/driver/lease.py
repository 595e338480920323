"""One driver per sweep: a lease with a heartbeat, kept in the study storage.

A driver writes `{id, host, pid, renewed}` into the study's user attribute `gansweep.driver` and
renews it every few seconds from a background thread. A second driver refuses to start while the
lease is fresh. A lease expires when its driver stops renewing it (killed, machine gone); on the
same host a lease whose process is gone is taken over at once, so `gansweep resume` right after
a crash does not wait out the expiry.

Each read-check-write of the lease holds a lock in the storage itself, so two drivers started at
the same instant cannot both take it: for a sqlite file or a journal an exclusive `flock` of
`<file>.lease.lock` beside it (on NFS, Linux turns it into a POSIX lock, which needs the server's
lock manager); for a database server the study's row in gansweep's own table
`gansweep_lease_lock`, held `SELECT ... FOR UPDATE` until the transaction ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import sqlalchemy as sa

from orchestrator.errors import SpecError
from orchestrator.layout import LEASE_ATTR
from orchestrator.stores.uris import is_journal
from orchestrator.study.studies import open_storage

log = logging.getLogger(__name__)

_LOCKS = sa.Table("gansweep_lease_lock", sa.MetaData(),
                  sa.Column("study_name", sa.String(512), primary_key=True))  # Optuna's length


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextlib.contextmanager
def _flock(path: str) -> Iterator[None]:
    with open(path, "a") as file:  # closing it, or the process dying, releases the lock
        fcntl.flock(file, fcntl.LOCK_EX)
        yield


class _RowLock:
    """The study's row in `gansweep_lease_lock` of a database server, locked for a transaction."""

    def __init__(self, url: str, study_name: str):
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)  # nothing left open
        self.row = sa.select(_LOCKS.c.study_name).where(_LOCKS.c.study_name == study_name)
        try:
            _LOCKS.create(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:  # another driver created it at the same instant
            if not sa.inspect(self.engine).has_table(_LOCKS.name):
                raise
        try:
            with self.engine.begin() as conn:
                if conn.execute(self.row).first() is None:
                    conn.execute(_LOCKS.insert().values(study_name=study_name))
        except sa.exc.IntegrityError:  # another driver inserted it at the same instant
            pass

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self.engine.begin() as conn:
            conn.execute(self.row.with_for_update())
            yield


def _storage_lock(url: str, study_name: str) -> Callable[[], AbstractContextManager[None]]:
    """The lock that serializes read-check-writes of the lease, one per study."""
    if is_journal(url):
        return functools.partial(_flock, f"{url}.lease.lock")
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _RowLock(url, study_name)
    if not parsed.database or parsed.database == ":memory:":  # one process: nobody to race
        return contextlib.nullcontext
    # a second sqlite connection cannot hold the database's lock while Optuna's writes: a file
    return functools.partial(_flock, f"{parsed.database}.lease.lock")


TTL_S, EVERY_S = 30.0, 5.0  # a lease expires after TTL_S without a beat; one beat every EVERY_S


class DriverLease:
    """The lease of sweep `study_name` in the study storage at `storage_url`: `acquire` it (or
    be refused in one line), beat while the sweep runs, `release` it."""

    def __init__(self, storage_url: str, study_name: str, ttl_s: float | None = None,
                 every_s: float | None = None):
        self.url, self.study_name = storage_url, study_name
        self.storage = open_storage(storage_url)  # its own: the study's stays the loop's
        self.study_id = self.storage.get_study_id_from_name(study_name)
        self.ttl_s = TTL_S if ttl_s is None else ttl_s
        self.every_s = EVERY_S if every_s is None else every_s
        self.on_lost: Callable[[], None] | None = None  # called once another driver took it
        self.lost = threading.Event()
        self.id = uuid.uuid4().hex
        self._lock = _storage_lock(storage_url, study_name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict | None:
        """The current lease, if someone else holds a live one."""
        lease = self._read(self.storage)
        if not lease or lease.get("id") == self.id:
            return None
        age = time.time() - float(lease.get("renewed", 0))
        if age > self.ttl_s:
            return None
        if lease.get("host") == socket.gethostname() and not _alive(int(lease.get("pid", 0))):
            return None  # its driver died on this machine: no need to wait for the expiry
        return {**lease, "age_s": age}

    def acquire(self) -> None:
        with self._lock():
            held = self.holder()
            if held is None:
                self._write(self.storage)
        if held is not None:
            raise SpecError(
                f"sweep {self.study_name!r} is being driven by pid {held['pid']} on "
                f"{held['host']} (heartbeat {held['age_s']:.0f}s ago); wait for it, or stop it "
                f"and run `gansweep resume {self.study_name}`")
        self._thread = threading.Thread(target=self._beat, name="gansweep-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            with self._lock():
                if self._mine(self.storage):
                    self.storage.set_study_user_attr(self.study_id, LEASE_ATTR, None)
        except Exception:  # expires on its own
            pass

    def _read(self, storage) -> dict | None:
        return storage.get_study_user_attrs(self.study_id).get(LEASE_ATTR)

    def _mine(self, storage) -> bool:
        lease = self._read(storage)
        return bool(lease) and lease.get("id") == self.id

    def _write(self, storage) -> None:
        storage.set_study_user_attr(self.study_id, LEASE_ATTR, {
            "id": self.id, "host": socket.gethostname(), "pid": os.getpid(),
            "renewed": time.time()})

    def _beat(self) -> None:
        storage = open_storage(self.url)  # its own connections, off the loop's
        while not self._stop.wait(self.every_s):
            try:
                with self._lock():
                    mine = self._mine(storage)
                    if mine:
                        self._write(storage)
            except Exception:  # a missed beat; the next one may get through
                continue
            if not mine:  # it expired while no beat got through: not ours to take back
                log.warning("sweep %r: this driver's lease lapsed and was taken over or "
                            "cleared; it no longer renews it", self.study_name)
                self.lost.set()
                if self.on_lost is not None:
                    self.on_lost()
                return
