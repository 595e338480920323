"""A test session stopped by SIGTERM (a CI timeout, `timeout make test`) stops what its fixtures
started: the PostgreSQL server and the local Ray are gone once pytest exits, no orphan left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for

REPO = Path(__file__).resolve().parents[1]

PROBE = """\
import os
import pathlib
import time


def test_holds_a_server_and_ray(postgres_url, ray_local):
    pathlib.Path(os.environ["PROBE_OUT"]).write_text(postgres_url)
    time.sleep(300)


def test_the_next_one(postgres_url, ray_local):  # a session that went on would sleep here
    time.sleep(300)
"""


def _descendants(root: int) -> set[int]:
    """The processes under `root`, from /proc (Linux)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.cluster  # a pytest session with PostgreSQL and Ray, stopped (~30 s)
def test_a_sigtermed_test_session_leaves_no_server_or_ray_behind(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    out = tmp_path / "postgres_url"
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
        cwd=REPO, env={**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
                       "PROBE_OUT": str(out)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("the probe test to hold its fixtures", out.exists, timeout=180)
        started = _descendants(session.pid)
        assert len(started) >= 3, started  # postgres and its workers, Ray's processes
        session.send_signal(signal.SIGTERM)
        output, _ = session.communicate(timeout=90)  # not the next test's 300 s
    finally:
        if session.poll() is None:
            session.kill()
    assert session.returncode != 0, output  # interrupted, not passed
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(pid) for pid in started):
        time.sleep(0.5)
    left = sorted(pid for pid in started if _alive(pid))
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:100] for pid in left]
