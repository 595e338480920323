import subprocess
import sys

FORBIDDEN = ("ray", "optuna", "mlflow", "click", "matplotlib", "torchvision")


def test_importing_trainers_pulls_in_no_orchestration_library():
    # every module a bare GPU box runs: the contract, the built-ins, scoring and the checker
    code = (
        "import sys, trainers, trainers.base, trainers.conformance, trainers.scoring\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
