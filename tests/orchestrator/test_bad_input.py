"""Bad input, as data: each case is a spec (or file bytes) `gansweep launch` must refuse in one
line naming the field, with exit code 2 and nothing created. A new input bug gets a row."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from tests.conftest import SYNTHETIC

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(  # 9**9 x's when expanded
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def _swap(old: str, new: str) -> bytes:
    assert old in SYNTHETIC, old
    return SYNTHETIC.replace(old, new).encode()


CASES = [  # (id, spec bytes, what the one line must start with after "gansweep: error: ")
    ("latin-1 bytes", _swap("name: synth", "name: synth # caf\xe9").decode().encode("latin-1"),
     "{path}: not UTF-8 text"),
    ("binary", b"\x00\xff\xfe garbage", "{path}: not UTF-8 text"),
    ("alias bomb in name", LAUGHS.encode() + b"name: *i\n", "spec.yaml: yaml: line 1: anchors"),
    ("alias in experiment", _swap("name: synth", "name: &n synth\nexperiment: *n"),
     "spec.yaml: yaml: line 1: anchors and aliases"),
    ("duplicate key", _swap("name: synth", "name: synth\nname: other"),
     "spec.yaml: name: line 2: the key appears twice"),
    ("name with trailing newline", _swap("name: synth", 'name: "synth\\n"'),
     "spec.yaml: name: use letters"),
    ("500-char name", _swap("name: synth", "name: " + "n" * 500),
     "spec.yaml: name: at most 100 characters, got 500"),
    ("experiment not a string", _swap("name: synth", "name: synth\nexperiment: [1, 2]"),
     "spec.yaml: experiment: must be a non-empty string"),
    ("inf gpus", _swap("cpus_per_trial: 1", "cpus_per_trial: 1, gpus_per_trial: .inf"),
     "spec.yaml: resources.gpus_per_trial: must be a finite number"),
    ("nan cpus", _swap("cpus_per_trial: 1", "cpus_per_trial: .nan"),
     "spec.yaml: resources.cpus_per_trial: must be a finite number"),
    ("inf range end", _swap("high: 2.0}\n  y", "high: .inf}\n  y"),
     "spec.yaml: space.x.high: must be a finite number"),
    ("nan choice", _swap("  y: {type: float, low: -2.0, high: 2.0}",
                         "  y: {type: categorical, choices: [1.0, .nan]}"),
     "spec.yaml: space.y.choices: numbers must be finite"),
    ("1 and 1.0", _swap("  y: {type: float, low: -2.0, high: 2.0}",
                        "  y: {type: categorical, choices: [1, 1.0]}"),
     "spec.yaml: space.y.choices: must not repeat a value: 1.0 twice"),
    ("seed above 2**32-1", _swap("seed: 0", "seed: 4294967296"),
     "spec.yaml: sampler.seed: must be an integer in [0, 2**32 - 1]"),
    ("budget.time 0s", _swap("log_every: 1}", "log_every: 1, time: 0s}"),
     "spec.yaml: budget.time: must be longer than 0"),
    ("budget.time inf", _swap("log_every: 1}", "log_every: 1, time: .inf}"),
     "spec.yaml: budget.time: must be a duration"),
    ("negative seed", _swap("seed: 0", "seed: -1"),
     "spec.yaml: sampler.seed: must be an integer in [0, 2**32 - 1]"),
]


@pytest.mark.parametrize("spec, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_spec_is_one_line_exit_2_and_nothing_is_created(tmp_path, monkeypatch, spec,
                                                              expected):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "spec.yaml"
    path.write_bytes(spec)
    result = CliRunner().invoke(main, ["launch", str(path)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("gansweep: error: " + expected.format(path=path)), lines[0]
    assert len(lines[0]) < 400  # a value is never printed in full
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no db, no checkpoints


def test_resume_with_trials_0_is_refused_not_ignored(ray_local, settings, write_spec):
    from orchestrator.launch import launch
    from orchestrator.spec import SweepSpec

    spec = SweepSpec.load(write_spec(SYNTHETIC.replace("trials: 4", "trials: 1")))
    assert launch(spec, settings, notice=lambda m: None).done == 1
    result = CliRunner().invoke(main, ["resume", "synth", "--trials", "0", "--storage",
                                       settings.storage])
    assert result.exit_code == 2
    assert result.stderr.strip() == "gansweep: error: --trials: must be >= 1, got 0"


@pytest.mark.parametrize("name, why", [("a'b", "must not contain \"'\""),
                                       ("a\nb", "must not contain '\\n'"),
                                       ("", "must be 1 to 200 printable characters")])
def test_promote_refuses_a_model_name_a_filter_cannot_hold(tmp_path, monkeypatch, name, why):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["promote", "synth", "--model-name", name])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gansweep: error: --model-name: {why}"), result.stderr
    assert list(tmp_path.iterdir()) == []
