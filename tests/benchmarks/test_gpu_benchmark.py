"""benchmarks/gpu.py runs on CPU as a smoke run (its figures are meant for a GPU box) and imports
nothing a bare GPU box lacks."""

import subprocess
import sys

import pytest

from tests.benchmarks.test_orchestration_benchmark import ROOT, run_benchmark

FORBIDDEN = ("ray", "optuna", "mlflow", "click")


@pytest.mark.cluster  # the whole quick matrix on CPU (~16 s): make test-cluster
def test_gpu_benchmark_quick_on_cpu_reports_matrix_sharing_and_checks():
    result = run_benchmark("gpu.py", "--device", "cpu", "--quick")
    variants = {(r["precision"], r["channels_last"]) for r in result["matrix"]}
    assert variants == {("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)}
    assert all(r["images_per_s"] > 0 and r["finite"] for r in result["matrix"])
    assert [r["procs"] for r in result["sharing"]] == [1, 2]
    assert all(r["total_images_per_s"] > 0 and r["finite"] for r in result["sharing"])
    assert all(len(r["per_proc_images_per_s"]) == r["procs"] for r in result["sharing"])
    assert [r["augment"] for r in result["augment"]] == [
        "none", "translation_cutout", "color_translation_cutout"]
    assert all(r["images_per_s"] > 0 and r["finite"] for r in result["augment"])
    metrics = result["metrics"]
    assert metrics["samples"] == 500 and metrics["sample_metrics_s"] > 0
    assert 0 < metrics["recall"] <= 1 and metrics["kid"] > 0  # the fakes are spread wider
    [check] = result["checks"]
    assert check["passed"] and check["bitwise_default"] and check["bitwise_deterministic"]
    assert check["round_trip_default"]["finite"]
    assert check["evaluation"]["samples_finite"] and check["evaluation"]["scored_finite"]
    assert check["evaluation"]["scored_on"] == "cpu"  # the device asked for: cuda on a GPU


def test_gpu_benchmark_imports_no_orchestration_library():
    code = ("import runpy, sys\n"
            "runpy.run_path('benchmarks/gpu.py', run_name='not_main')\n"
            f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
