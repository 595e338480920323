"""The watchdog's limits (pure: no Ray, no clock): which chunk is hung, and when."""

from __future__ import annotations

from orchestrator.driver.watchdog import (
    BUDGET_GRACE_S,
    CHUNK_FLOOR_S,
    FIRST_CHUNK_S,
    HUNG,
    STOP_GRACE_S,
    STOPPING,
    TIMEOUT,
    Watchdog,
)


def test_a_sweeps_first_chunks_get_half_an_hour_then_ten_times_their_trials_pace():
    watch = Watchdog()
    watch.start("a", trial=0, step=0, steps=100, now=0.0)
    assert watch.overdue(FIRST_CHUNK_S - 1) == []
    watch.back("a", 100, now=50.0)  # 0.5 s a step
    watch.start("b", trial=0, step=100, steps=100, now=50.0)
    assert watch.limit(watch.sent["b"]) == 500.0  # 10 x 0.5 s x 100 steps
    watch.start("c", trial=1, step=0, steps=100, now=50.0)  # a new trial: 2 x the sweep's pace
    assert watch.limit(watch.sent["c"]) == 1000.0
    watch.back("b", 200, now=1050.0)  # slower now: 10 s a step
    watch.start("d", trial=0, step=200, steps=100, now=1050.0)
    assert watch.limit(watch.sent["d"]) == 10_000.0  # its slowest pace counts
    assert watch.limit(watch.sent["c"]) == 20_000.0  # the sweep's slowest pace moved too
    late = watch.overdue(now=1050.0 + 10_000.0)
    assert [(o.ref, o.kind, o.reason) for o in late] == [
        ("d", HUNG, "no progress for 10000 s at step 200")]
    assert [o.ref for o in watch.overdue(now=50.0 + 20_000.0)] == ["c"]
    assert "c" not in watch.sent  # told once


def test_the_floor_holds_for_fast_chunks_and_a_failed_chunk_teaches_no_pace():
    watch = Watchdog()
    watch.start("a", trial=0, step=0, steps=10, now=0.0)
    watch.back("a", None, now=1.0)  # failed: no step reached
    assert watch.sweep_pace is None
    watch.start("b", trial=0, step=0, steps=10, now=1.0)
    watch.back("b", 10, now=2.0)
    watch.start("c", trial=0, step=10, steps=10, now=2.0)
    assert watch.limit(watch.sent["c"]) == CHUNK_FLOOR_S


def test_a_chunk_timeout_in_the_spec_is_the_limit_of_every_chunk():
    watch = Watchdog(chunk_timeout_s=5.0)
    watch.start("a", trial=0, step=40, steps=20, now=0.0)
    assert watch.overdue(4.9) == []
    assert [o.reason for o in watch.overdue(5.0)] == ["no progress for 5 s at step 40"]


def test_budget_time_and_a_stop_end_chunks_whatever_their_limit():
    watch = Watchdog()
    watch.start("a", trial=0, step=0, steps=10, now=0.0)
    watch.start("b", trial=1, step=0, steps=10, now=1.0)
    assert watch.overdue(100.0, deadline=100.0 - BUDGET_GRACE_S + 1) == []
    assert [(o.ref, o.kind, o.reason) for o in watch.overdue(100.0, deadline=95.0)] == [
        ("a", TIMEOUT, "timeout"), ("b", TIMEOUT, "timeout")]
    watch.start("c", trial=2, step=30, steps=10, now=0.0)
    assert watch.overdue(STOP_GRACE_S - 1, stop_since=0.0) == []
    stopped = watch.overdue(STOP_GRACE_S, stop_since=0.0)
    assert [(o.ref, o.kind) for o in stopped] == [("c", STOPPING)]
    assert "resumes from step 30" in stopped[0].reason
