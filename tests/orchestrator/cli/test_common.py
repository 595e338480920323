"""What every command shares: strict JSON for scripts."""

from __future__ import annotations

import pytest


def test_json_output_is_strict_json_when_a_value_is_not_finite():
    import json

    from orchestrator.cli.common import to_json as _json

    text = _json({"value": float("nan"), "front": [{"fid": float("inf")}, {"fid": 1.5}]})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON {c}")) == {
        "value": None, "front": [{"fid": None}, {"fid": 1.5}]}
