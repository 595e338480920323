"""The names gansweep writes, each defined once (orchestrator/layout.py): no other
module of orchestrator/ spells a `gansweep.` name out, and the names built from parts read as
users and MLflow's UI see them."""

from __future__ import annotations

import ast

from orchestrator import layout
from tests.orchestrator.test_import_graph import ROOT


def test_no_module_but_the_layout_spells_out_a_gansweep_name():
    found = []
    for file in sorted((ROOT / "orchestrator").rglob("*.py")):
        if file == ROOT / "orchestrator" / "layout.py":
            continue
        tree = ast.parse(file.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docstrings and "gansweep." in node.value:
                found.append(f"{file.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_names_built_from_parts():
    assert layout.trial_run_name(7) == "trial-0007"
    assert layout.trial_run_name(3, layout.ROLE_CONFIRM) == "confirm-0003"
    assert layout.per_objective(layout.HISTORY_PNG, 1) == "optuna/history-1.png"
    assert layout.floor_metric("eval/fd") == "floor/fd"
    assert layout.role_metric(layout.SWEEP_COMPLETED, layout.ROLE_CONFIRM) == "confirm/completed"
    assert layout.role_metric(layout.SWEEP_COMPLETED, layout.ROLE_TRIAL) == "sweep/completed"
    assert layout.run_tags({layout.CONFIRMS_ATTR: 4, layout.SEED_INDEX_ATTR: 1, "seed": 9}) == {
        "gansweep.confirms_trial": "4", "gansweep.seed_index": "1"}
    assert set(layout.RUN_STATUS) == {"COMPLETE", "PRUNED", "FAIL", "RUNNING"}
