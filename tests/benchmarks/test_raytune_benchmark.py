"""benchmarks/raytune.py runs both arms end to end (figures are read by people from full runs)."""

import pytest

from tests.benchmarks.test_orchestration_benchmark import run_benchmark


@pytest.mark.cluster  # two Ray arms, a warm-up round each: slow
def test_raytune_benchmark_runs_gansweep_and_tune_on_the_same_work():
    result = run_benchmark("raytune.py", "--trials", "4", "--sleep", "0.01", "--rounds", "1")
    assert result["trials"] == 4 and result["actors"] == 2 and result["ideal_s"] == 0.1
    for arm in ("gansweep", "raytune"):
        [measured] = result[arm]["rounds"]
        assert measured["completed"] == 4, arm
        assert measured["wall_s"] > result["ideal_s"] and 0 < measured["utilization"] < 1
        assert measured["driver_cpu_per_trial_ms"] > 0 and measured["machine_cpu_per_trial_ms"] > 0
        assert result[arm]["median"]["wall_s"] == measured["wall_s"]
    assert all(v > 0 for v in result["ratios_raytune_over_gansweep"].values())
