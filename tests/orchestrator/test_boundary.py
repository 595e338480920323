"""The Ray boundary (orchestrator/boundary.py) imports only the standard library, and the
driver's decision table reads without Ray, MLflow, torch or Optuna."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from orchestrator import boundary
from orchestrator.boundary import ActorLost, ChunkResult, TrialSpec
from tests.orchestrator.test_import_graph import ROOT, imported

HEAVY = ("torch", "ray", "optuna", "mlflow")


def test_the_boundary_module_imports_only_the_standard_library():
    names = imported("orchestrator.boundary", ROOT / "orchestrator" / "boundary.py")
    tops = {name.split(".")[0] for name in names}
    assert tops and tops <= set(sys.stdlib_module_names) | {"__future__"}, tops


def _imports_heavy(module: str) -> list[str]:
    code = (f"import sys, {module}\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_decision_table_and_the_boundary_import_no_heavy_library():
    assert _imports_heavy("orchestrator.driver.decide") == []
    assert _imports_heavy("orchestrator.boundary") == []


def test_what_crosses_the_boundary_is_plain_data():
    spec = TrialSpec(sweep="s", number=3, trainer="synthetic", params={"x": 1.0}, seed=7,
                     run_id="r", checkpoint_root="/ck", total_steps=10, log_every=2)
    assert spec.run_params == {"x": 1.0, "seed": 7}
    assert dataclasses.asdict(spec)["params"] == {"x": 1.0}  # a checkpoint keeps it as a dict
    assert ChunkResult(3, 10, {"eval/loss": 0.5}).error is None
    lost = ActorLost("ActorDiedError", "The actor died unexpectedly")
    assert (lost.what, str(lost)) == ("ActorDiedError", "The actor died unexpectedly")
    assert str(ActorLost("ActorDiedError")) == "ActorDiedError"


def test_an_actor_preloads_the_trainers_and_not_mlflow():
    assert "trainers" in boundary.ACTOR_PRELOAD
    assert not any(name.startswith("mlflow") for name in boundary.ACTOR_PRELOAD)
    assert {boundary.COMPLETE, boundary.PRUNED, boundary.FAIL} == {"COMPLETE", "PRUNED", "FAIL"}
