"""One driver per sweep, for real: driver processes released by one barrier, on sqlite, an Optuna
journal file and PostgreSQL; dead, expired, released and renewed leases."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
import uuid

import optuna
import pytest

from orchestrator.driver.lease import DriverLease
from orchestrator.layout import LEASE_ATTR
from orchestrator.spec.sweep import SpecError
from orchestrator.study.studies import open_storage

ROUNDS = 20


@pytest.fixture(params=["sqlite", "journal", "postgres"])
def storage(request, tmp_path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path}/optuna.db" if request.param == "sqlite" else str(
        tmp_path / "optuna.journal")


@pytest.fixture
def study(storage) -> optuna.Study:
    return optuna.create_study(study_name=f"lease-{uuid.uuid4().hex[:8]}",
                               storage=open_storage(storage))


def _driver(storage: str, name: str, barrier, orders, results) -> None:
    """A driver process: on each "go", a new lease tries to acquire right after the barrier,
    reports, and holds until the next order."""
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    results.put(("ready", os.getpid(), ""))
    while orders.get() == "go":
        lease = DriverLease(storage, study.study_name)
        barrier.wait()
        try:
            lease.acquire()
            results.put(("won", os.getpid(), ""))
        except SpecError as exc:
            results.put(("refused", os.getpid(), str(exc)))
        orders.get()  # "release"
        lease.release()  # nothing to release for the one refused
        results.put(("released", os.getpid(), ""))


def _start(storage: str, study: optuna.Study, n: int):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    orders = [ctx.Queue() for _ in range(n)]
    procs = [ctx.Process(target=_driver, args=(storage, study.study_name, barrier, q, results),
                         daemon=True) for q in orders]
    for proc in procs:
        proc.start()
    assert all(results.get(timeout=120)[0] == "ready" for _ in procs)
    return procs, orders, results


def _stop(procs, orders) -> None:
    for q in orders:
        q.put("stop")
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()


def test_two_drivers_started_at_the_same_instant_one_wins(storage, study):
    procs, orders, results = _start(storage, study, 2)
    outcomes = []
    try:
        for _ in range(ROUNDS):
            for q in orders:
                q.put("go")
            outcomes.append(sorted(results.get(timeout=60) for _ in procs))
            for q in orders:
                q.put("release")
            assert all(results.get(timeout=60)[0] == "released" for _ in procs)
    finally:
        _stop(procs, orders)
    both = sum(1 for got in outcomes if [o[0] for o in got] == ["won", "won"])
    assert both == 0, f"two winners in {both}/{ROUNDS} rounds"
    for (refused, loser, error), (won, winner, _) in outcomes:
        assert (refused, won) == ("refused", "won") and loser != winner
        assert f"is being driven by pid {winner} on " in error
    assert study.user_attrs[LEASE_ATTR] is None  # each winner released


def test_a_dead_drivers_lease_is_taken_at_once(storage, study):
    procs, orders, results = _start(storage, study, 1)
    try:
        orders[0].put("go")
        assert results.get(timeout=60)[:2] == ("won", procs[0].pid)
        with pytest.raises(SpecError, match=f"driven by pid {procs[0].pid} on "):
            DriverLease(storage, study.study_name).acquire()
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].join(timeout=30)
    finally:
        _stop(procs, orders)
    lease = DriverLease(storage, study.study_name)  # the default 30 s expiry is far away
    lease.acquire()
    assert study.user_attrs[LEASE_ATTR]["pid"] == os.getpid()
    lease.release()


def test_an_expired_lease_is_taken_and_its_driver_does_not_take_it_back(storage, study, caplog):
    first = DriverLease(storage, study.study_name, every_s=1.5)
    first.acquire()
    with pytest.raises(SpecError, match=f"driven by pid {os.getpid()} on "):
        DriverLease(storage, study.study_name, ttl_s=60).acquire()
    second = DriverLease(storage, study.study_name, ttl_s=0.0)  # first's beats come too late
    with caplog.at_level(logging.WARNING, logger="orchestrator.driver.lease"):
        second.acquire()  # expired
        assert first.lost.wait(timeout=30)  # its next beat finds the lease taken...
    assert study.user_attrs[LEASE_ATTR]["id"] == second.id  # ...and does not take it back
    assert f"sweep {study.study_name!r}: this driver's lease lapsed" in caplog.text
    first.release()  # not its lease any more: left alone
    assert study.user_attrs[LEASE_ATTR]["id"] == second.id
    second.release()
    assert study.user_attrs[LEASE_ATTR] is None


def test_release_lets_the_next_driver_in(storage, study):
    first, second = (DriverLease(storage, study.study_name) for _ in range(2))
    first.acquire()
    with pytest.raises(SpecError, match=r"heartbeat 0s ago\); wait for it"):
        second.acquire()
    first.release()
    second.acquire()
    assert study.user_attrs[LEASE_ATTR]["id"] == second.id
    second.release()


def test_the_heartbeat_keeps_a_lease_beyond_its_ttl(storage, study):
    first = DriverLease(storage, study.study_name, ttl_s=2.0, every_s=0.1)
    first.acquire()
    acquired = study.user_attrs[LEASE_ATTR]["renewed"]
    time.sleep(2.5)  # past its ttl: without the beats the lease would have lapsed
    assert study.user_attrs[LEASE_ATTR]["renewed"] > acquired
    with pytest.raises(SpecError, match="is being driven by pid"):
        DriverLease(storage, study.study_name, ttl_s=2.0).acquire()
    first.release()


def test_a_driver_whose_lease_was_taken_over_stops_and_leaves_its_trials_resumable(
        ray_local, settings, write_spec, monkeypatch):
    """A driver cut off from the storage past the ttl loses its lease to another; on its next
    beat it starts no more chunks, so no trial goes on being driven by two drivers."""
    import threading

    from optuna.trial import TrialState

    from orchestrator.driver import lease as lease_module
    from orchestrator.driver.launch import launch
    from orchestrator.spec.sweep import SweepSpec
    from tests.conftest import SYNTHETIC, wait_for

    monkeypatch.setattr(lease_module, "EVERY_S", 0.2)
    spec = SweepSpec.load(write_spec(SYNTHETIC.replace("steps: 4", "steps: 400").replace(
        "log_every: 1}", "log_every: 1}\nfixed: {sleep_s: 0.05}")))

    done: list[str] = []  # how far the other driver got: said if the launch does not stop
    other: list[DriverLease] = []

    def take_over():  # what a second driver does once the first one's lease has expired
        storage = open_storage(settings.storage)
        study_id = wait_for("the study", lambda: storage.get_study_id_from_name("synth"), 240)
        done.append(f"saw the study at {time.monotonic() - t0:.1f} s")
        wait_for("a running trial", lambda: storage.get_all_trials(
            study_id, states=(TrialState.RUNNING,)), 240)
        done.append(f"saw a running trial at {time.monotonic() - t0:.1f} s")
        other.append(DriverLease(settings.storage, "synth", ttl_s=0.0))  # sees it expired
        other[0].acquire()  # under the storage's lock, as a real second driver takes it
        done.append(f"took the lease at {time.monotonic() - t0:.1f} s")

    t0 = time.monotonic()
    thief = threading.Thread(target=take_over, daemon=True)
    thief.start()
    with pytest.raises(SpecError, match="another driver took the sweep over; this one stopped"):
        launch(spec, settings, notice=lambda m: None)
        pytest.fail(f"the launch ended {time.monotonic() - t0:.1f} s in; the other driver: "
                    f"{done}")
    thief.join()
    trials = optuna.load_study(study_name="synth", storage=settings.storage).get_trials()
    assert len(trials) < 4 and TrialState.RUNNING in {t.state for t in trials}  # no new ones
    lease = optuna.load_study(study_name="synth", storage=settings.storage).user_attrs[LEASE_ATTR]
    assert lease["id"] == other[0].id  # not taken back, not cleared
    other[0].release()
