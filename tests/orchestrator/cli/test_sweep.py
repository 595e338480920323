"""Bad input, as data: each case is a spec (or file bytes) `gansweep launch` must refuse in one
line naming the field, with exit code 2 and nothing created. A new input bug gets a row."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from tests.conftest import RING8_TINY, SYNTHETIC

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(  # 9**9 x's when expanded
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True))


PLANTED = "PLANTED-pw-7f3a"  # a password no message may show


def _swap(old: str, new: str) -> bytes:
    assert old in SYNTHETIC, old
    return SYNTHETIC.replace(old, new).encode()


def _pbt(fields: str, spec: str = SYNTHETIC) -> bytes:
    """`spec` (4 trials of 4 steps, or of 60 for RING8_TINY) as a pbt sweep with these fields."""
    return (spec + f"scheduler: {{name: pbt, population: 4, {fields}}}\n").encode()


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
    ("range the sampler overflows", _swap("low: -2.0, high: 2.0}\n  y",
                                          "low: -1.0e308, high: 1.0e308}\n  y"),
     "spec.yaml: space.x.high: high - low overflows a float"),
    ("int beyond 2**53", _swap("  y: {type: float, low: -2.0, high: 2.0}",
                               "  y: {type: int, low: 0, high: 1.0e30}"),
     "spec.yaml: space.y.high: must be within +-2**53"),
    ("a list as a key", _swap("name: synth", "name: synth\n? [a, b]\n: 1"),
     "spec.yaml: yaml: line 2: a key must be a name, not a list or a mapping"),
    ("a mapping as a key", b"? {a: 1}\n: 2\n" + SYNTHETIC.encode(),
     "spec.yaml: yaml: line 1: a key must be a name, not a list or a mapping"),
    ("10,000 levels of nesting", _swap("name: synth", "name: synth\nfixed: {a: "
                                       + "[" * 10_000 + "]" * 10_000 + "}"),
     "spec.yaml: yaml: line 2: nested more than 16 levels deep"),
    ("a 2 MiB spec", _swap("name: synth", "name: synth\n" + "#" * (2 << 20)),
     "{path}: larger than 1 MiB: a spec is a short YAML file"),
    ("60,000 choices", _swap("  y: {type: float, low: -2.0, high: 2.0}",
                             f"  y: {{type: categorical, choices: {list(range(60_000))}}}"),
     "spec.yaml: space.y.choices: at most 1000 values, got 60000"),
    ("5,000 enqueued points", _swap("space:", "enqueue: [" + ", ".join(["{x: 0.0}"] * 5000)
                                    + "]\nspace:"),
     "spec.yaml: enqueue: at most 1000 points, got 5000"),
    ("hyperband min_resource 0", _swap("space:", "pruner: {name: hyperband, "
                                       "min_resource: 0}\nspace:"),
     "spec.yaml: pruner.hyperband: min_resource: must be an int >= 1 (steps) or 'auto', got 0"),
    ("halving reduction_factor 1", _swap("space:", "pruner: {name: successive_halving, "
                                         "reduction_factor: 1}\nspace:"),
     "spec.yaml: pruner.successive_halving: reduction_factor: must be an int >= 2, got 1"),
    ("a step wider than its range", _swap("high: 2.0}\n  y", "high: 2.0, step: 5.0}\n  y"),
     "spec.yaml: space.x.step: 5.0 is wider than the range -2.0 to 2.0"),
    ("an objective the trainer does not report", _swap("eval/loss", "eval/fd"),
     "spec.yaml: objective.metric: trainer synthetic does not report 'eval/fd' (it reports "
     "eval/loss, eval/x_loss)"),
    ("an objective logged between evaluations", _swap("eval/loss", "train/lost"),
     "spec.yaml: objective.metric: 'train/lost' is not measured at an evaluation: an objective "
     "is an eval/ metric (or model/, perf/); train/ metrics are logged between evaluations"),
    ("cpus_per_trial no node has", _swap("cpus_per_trial: 1", "cpus_per_trial: 64"),
     "spec.yaml: resources.cpus_per_trial: a trial needs 64 CPUs, and no node of the Ray "
     "cluster has that many (the largest has 2;"),
    ("unknown health rule", _swap("name: synth", "name: synth\nhealth: {mode_collapse: {}}"),
     "spec.yaml: health.mode_collapse: unknown health rule (known: collapse, d_wins, "
     "stagnation)"),
    ("health patience 0", _swap("name: synth", "name: synth\nhealth: {stagnation: {patience: 0}}"),
     "spec.yaml: health.stagnation.patience: must be >= 1"),
    ("credential in storage.checkpoints",
     _swap("name: synth", f"name: synth\nstorage: {{checkpoints: 's3://b/c?secret_key={PLANTED}'}}"),
     "spec.yaml: storage.checkpoints: s3://b/c?secret_key=***: holds a credential"),
    ("pbt population 1", _pbt("interval: 2").replace(b"population: 4", b"population: 1"),
     "spec.yaml: scheduler.population: must be >= 2, got 1"),
    ("pbt quantile 0.7", _pbt("interval: 2, quantile: 0.7"),
     "spec.yaml: scheduler.quantile: must be in (0, 0.5], got 0.7"),
    ("pbt interval between evals", _pbt("interval: 3"),
     "spec.yaml: scheduler.interval: must be a multiple of budget.eval_every (2), got 3"),
    ("pbt perturb factor <= 0", _pbt("interval: 2, perturb: [-0.5, 1.2]"),
     "spec.yaml: scheduler.perturb: factors must be > 0, got -0.5"),
    ("pbt mutable not in the space", _pbt("interval: 2, mutable: [lr_x]"),
     "spec.yaml: scheduler.mutable: lr_x is not a searched parameter (space: x, y)"),
    ("pbt mutable architecture", _pbt("interval: 20, mutable: [g_depth]", RING8_TINY),
     "spec.yaml: scheduler.mutable: g_depth cannot change mid-run in trainer mlp_gan (it can "
     "change: lr_g, lr_d"),
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
    assert len(lines[0]) < 400 and PLANTED not in result.output  # never in full, never a secret
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no db, no checkpoints


def test_a_fifo_as_the_spec_is_refused_without_blocking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "spec.yaml")  # reading it would wait for a writer forever
    result = CliRunner().invoke(main, ["launch", "spec.yaml"])
    assert result.exit_code == 2
    assert result.stderr == "gansweep: error: spec.yaml: not a regular file: a spec is a YAML " \
                            "text file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


@pytest.fixture(scope="module")
def not_ray():
    """HOST:PORT of a TCP service that is not a Ray head: it answers any bytes with HTML."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        def serve():
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = server.accept()
                    with conn:
                        conn.recv(1024)
                        conn.sendall(b"<!DOCTYPE html>")
        threading.Thread(target=serve, daemon=True).start()
        yield f"127.0.0.1:{server.getsockname()[1]}"


FLAG_CASES = [  # (id, flags after `launch spec.yaml`, the start of the one line)
    ("unknown tracking scheme", ["--tracking-uri", "foo://bar"],
     "--tracking-uri: foo://bar: MLflow has no tracking store for 'foo'"),
    ("tracking file in a missing folder", ["--tracking-uri", "sqlite:////nonexistent/m.db"],
     "--tracking-uri: sqlite:////nonexistent/m.db: /nonexistent is not a folder"),
    ("tracking server down, password in URI",
     ["--tracking-uri", f"http://u:{PLANTED}@127.0.0.1:1"],
     "--tracking-uri: cannot reach the MLflow tracking server at http://u:***@127.0.0.1:1"),
    ("in-memory storage", ["--storage", "sqlite://"],
     "--storage: sqlite:// is an in-memory database: the study would be gone"),
    ("in-memory storage, spelt out", ["--storage", "sqlite:///:memory:"],
     "--storage: sqlite:///:memory: is an in-memory database"),
    ("storage file in a missing folder", ["--storage", "sqlite:////nonexistent/o.db"],
     "--storage: cannot use sqlite:////nonexistent/o.db: /nonexistent is not a folder"),
    ("journal that is a folder", ["--storage", "{tmp}"], "--storage: cannot use {tmp}: {tmp} "
                                                         "is a folder"),
    ("storage server down, password in URI",
     ["--storage", f"postgresql://u:{PLANTED}@127.0.0.1:1/optuna"],
     "--storage: cannot open postgresql://u:***@127.0.0.1:1/optuna: OperationalError"),
    ("storage file that is not a journal", ["--storage", "{user_file}"],
     "--storage: cannot use {user_file}: {user_file} exists and is not an Optuna journal"),
    ("storage file that is not sqlite", ["--storage", "sqlite:///{user_file}"],
     "--storage: cannot use sqlite:///{user_file}: {user_file} exists and is not a SQLite "
     "database"),
    ("tracking file that is not sqlite", ["--tracking-uri", "sqlite:///{user_file}"],
     "--tracking-uri: sqlite:///{user_file}: {user_file} exists and is not a SQLite database"),
    ("checkpoint root under a file", ["--checkpoint-root", "{user_file}/ckpt"],
     "--checkpoint-root: {user_file}/ckpt: {user_file} is a file, not a folder"),
    ("--require-gpu on a CPU cluster", ["--require-gpu"],
     "--require-gpu: the Ray cluster has no GPU (resources: 2 CPUs)"),
    ("nothing listens at --address", ["--address", "127.0.0.1:1"],
     "--address: cannot connect to Ray at 127.0.0.1:1: Connection refused"),
    ("--address is not a Ray head", ["--address", "{not_ray}"],
     "--address: {not_ray} answers, but not as a Ray head"),
    ("--address without a port", ["--address", "headnode"],
     "--address: 'headnode': expected HOST:PORT"),
    ("unknown --enqueue-from run", ["--enqueue-from", "0123456789abcdef"],
     "--enqueue-from: no MLflow run '0123456789abcdef' in sqlite:///"),
    ("credential in --checkpoint-root",
     ["--checkpoint-root", f"s3://b/c?endpoint_override=h:9000&secret_key={PLANTED}"],
     "--checkpoint-root: s3://b/c?endpoint_override=h%3A9000&secret_key=***: holds a "
     "credential"),
    ("password in --checkpoint-root", ["--checkpoint-root", f"s3://key:{PLANTED}@b/c"],
     "--checkpoint-root: s3://key:***@b/c: holds a credential"),
]


@pytest.mark.parametrize("flags, expected", [c[1:] for c in FLAG_CASES],
                         ids=[c[0] for c in FLAG_CASES])
def test_a_bad_flag_is_one_line_exit_2_and_nothing_is_created(tmp_path, tmp_path_factory,
                                                              monkeypatch, not_ray, flags,
                                                              expected):
    """Each store and address is checked before anything is created: no optuna.db, no
    mlflow.db, no checkpoints, no study or experiment, nothing added to a file of the user's
    given by mistake; `ray.init` never waits minutes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SYNTHETIC)
    user_file = tmp_path_factory.mktemp("elsewhere") / "notes.txt"
    user_file.write_text("my notes\n")
    fill = {"tmp": str(tmp_path), "not_ray": not_ray, "user_file": str(user_file)}
    started = time.monotonic()
    result = CliRunner().invoke(main, ["launch", "spec.yaml"] + [f.format(**fill) for f in flags])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output[-2000:]
    assert lines[0].startswith("gansweep: error: " + expected.format(**fill)), lines[0]
    assert PLANTED not in result.output
    assert time.monotonic() - started < 60  # `ray.init` alone retried for over ten minutes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]
    assert user_file.read_text() == "my notes\n"
    assert [p.name for p in user_file.parent.iterdir()] == ["notes.txt"]


def test_a_deleted_experiment_of_the_same_name_is_refused_saying_how_to_restore_it(
        tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SYNTHETIC)
    uri = f"sqlite:///{tmp_path}/mlflow.db"  # given: an earlier mlflow.set_tracking_uri in
    client = MlflowClient(uri)  # this process sets MLFLOW_TRACKING_URI
    client.delete_experiment(client.create_experiment("synth"))
    result = CliRunner().invoke(main, ["launch", "spec.yaml", "--tracking-uri", uri])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [  # before Ray: no notice of its own
        "gansweep: error: spec.yaml: experiment: MLflow experiment 'synth' (id 1) is deleted: "
        "restore it (mlflow experiments restore --experiment-id 1), purge it (mlflow gc "
        "--experiment-ids 1), or name another experiment"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db", "spec.yaml"]
    assert client.search_runs(["1"], run_view_type=3) == []  # no run made in it


def test_resume_with_trials_0_is_refused_not_ignored(settings, write_spec):
    from orchestrator.layout import LAUNCH_ATTR
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.study.record import LaunchRecord
    from orchestrator.study.studies import open_study

    spec = SweepSpec.load(write_spec(SYNTHETIC.replace("trials: 4", "trials: 1")))
    study = open_study(spec, settings.storage)  # the sweep's study, as its launch leaves it
    study.set_user_attr(LAUNCH_ATTR, LaunchRecord.of(spec, settings, None).to_dict())
    result = CliRunner().invoke(main, ["resume", "synth", "--trials", "0", "--storage",
                                       settings.storage])
    assert result.exit_code == 2
    assert result.stderr.strip() == "gansweep: error: --trials: must be >= 1, got 0"






def test_relaunching_a_changed_space_is_refused_naming_the_field_unless_allowed(
        tmp_path, monkeypatch):
    """A sweep's second launch with another range would continue its study silently, feeding
    the sampler trials from two spaces: refused before anything is made or started, unless
    --allow-changed-spec."""
    from orchestrator.layout import LAUNCH_ATTR
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.stores.settings import Settings
    from orchestrator.study.record import LaunchRecord, check_same_spec, existing_study
    from orchestrator.study.studies import open_study

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SYNTHETIC)
    first = SweepSpec.load("spec.yaml")
    settings = Settings.resolve()
    study = open_study(first, settings.storage)  # as the first launch leaves it: a trial ran
    study.set_user_attr(LAUNCH_ATTR, LaunchRecord.of(first, settings, None).to_dict())
    study.tell(study.ask(), 1.0)
    (tmp_path / "spec.yaml").write_text(SYNTHETIC.replace("high: 2.0}\n  y", "high: 3.0}\n  y"))
    before = (tmp_path / "optuna.db").read_bytes()

    result = CliRunner().invoke(main, ["launch", "spec.yaml"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "gansweep: error: spec.yaml: space.x.high: was 2.0, now 3.0 since sweep 'synth' was "
        "launched, and its 1 trial(s) came from that spec: launch with --allow-changed-spec to "
        "continue anyway, or rename the sweep"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optuna.db", "spec.yaml"]
    assert (tmp_path / "optuna.db").read_bytes() == before

    changed = SweepSpec.load("spec.yaml")
    study = existing_study("synth", settings.storage)
    assert check_same_spec(study, changed, allowed=True) == "space.x.high: was 2.0, now 3.0"
    assert check_same_spec(study, first, allowed=False) is None  # as launched: goes on


def test_a_met_budget_is_answered_before_ray_starts_saying_what_to_type(tmp_path, monkeypatch):
    """Launching a finished sweep again answers from the study alone: no Ray is started or
    reached (here none listens at --address), and the line says how to run more."""
    from orchestrator.layout import LAUNCH_ATTR
    from orchestrator.spec.sweep import SweepSpec
    from orchestrator.stores.settings import Settings
    from orchestrator.study.record import LaunchRecord
    from orchestrator.study.studies import open_study

    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SYNTHETIC.replace("trials: 4", "trials: 2"))
    spec = SweepSpec.load("spec.yaml")
    settings = Settings.resolve()
    study = open_study(spec, settings.storage)
    study.set_user_attr(LAUNCH_ATTR, LaunchRecord.of(spec, settings, None).to_dict())
    for _ in range(2):
        study.tell(study.ask(), 1.0)
    started = time.monotonic()
    result = CliRunner().invoke(main, ["launch", "spec.yaml", "--address", "127.0.0.1:1"])
    assert result.exit_code == 0, result.output
    assert "synth: budget met, 2 of 2 trials done; --trials 4 runs 2 more" in result.stderr
    assert time.monotonic() - started < 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optuna.db", "spec.yaml"]
