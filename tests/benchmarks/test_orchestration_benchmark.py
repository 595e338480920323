"""The benchmarks run end to end and report what they promise (figures are read by people from
the full runs, not asserted here)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str) -> list[dict]:
    """The JSON a benchmark script prints, run quick as a user would run it."""
    done = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.cluster  # the benchmark, steady and end to end (~40 s): make test-cluster
def test_orchestration_benchmark_reports_utilization_as_json():
    """Also end to end: `gansweep launch` as a user runs it, starting its own local Ray (on a
    thread of its own) and exiting once every run is written."""
    [result] = run_benchmark("orchestration.py", "--trials", "4", "--sleep", "0.01",
                             "--eval-every", "5", "--end-to-end")
    assert result["completed"] == 4 and result["trials"] == 4 and result["actors"] == 2
    assert 0 < result["utilization"] <= 1.05
    assert result["ideal_s"] == 4 * 5 * 0.01 / 2
    assert result["runs"] == 4 and 0 < result["end_to_end_utilization"] < result["utilization"]
    assert 0 < result["time_to_first_step_s"] < result["end_to_end_wall_s"]
    assert 0 < result["exit_after_last_step_s"] < result["end_to_end_wall_s"]


@pytest.mark.cluster  # both arms of the benchmark (~35 s): make test-cluster
def test_trainer_overhead_benchmark_compares_both_arms_as_json():
    [result] = run_benchmark("trainer_overhead.py", "--only", "mlp_gan", "--repeats", "1",
                             "--steps", "40")
    assert result["trainer"] == "mlp_gan" and result["steps"] == 40
    [bare], [trial] = result["bare_steps_per_s"], result["trial_steps_per_s"]
    assert bare > 0 and trial > 0
    assert result["ratio"] == pytest.approx(trial / bare, rel=0.01)  # of the unrounded figures
    assert 0 <= result["outside_train_for"][0] < 1
