"""Sweep specs are validated once: one line naming file and field, exit 2, nothing created."""

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.spec.sweep import SpecError, SweepSpec
from tests.conftest import RING8_TINY, SYNTHETIC


def test_shipped_ring8_spec_loads():
    spec = SweepSpec.load("search_spaces/ring8.yaml")
    assert spec.name == spec.experiment == "ring8"
    assert spec.objective.metric == "eval/score" and spec.objective.direction == "maximize"
    assert spec.budget.steps % spec.budget.eval_every == 0
    assert {p.name for p in spec.space} >= {"lr_g", "lr_d", "loss", "r1_weight", "clusters"}
    confirm = spec.budget.confirm  # `make demo` promotes a config confirmed on fresh seeds
    assert (confirm.top, confirm.seeds) == (2, 3)


@pytest.mark.parametrize("path", ["search_spaces/ring8.yaml", "search_spaces/ring8-pbt.yaml",
                                  "search_spaces/grid25.yaml", "search_spaces/digits-dcgan.yaml"])
def test_every_shipped_spec_loads_and_its_params_build_a_trainer_config(path):
    import optuna

    from orchestrator.study.samplers import suggest_all
    from trainers import TRAINERS, build_config

    spec = SweepSpec.load(path)
    assert spec.budget.steps % spec.budget.eval_every == 0
    trial = optuna.create_study().ask()  # one random point of the space
    build_config(TRAINERS[spec.trainer], {**spec.fixed, **suggest_all(spec.space, trial)})


def test_defaults_and_overrides(write_spec):
    spec = SweepSpec.load(write_spec(SYNTHETIC))
    assert spec.sampler.name == "tpe" and spec.resources.gpus_per_trial == 1.0
    assert spec.with_trials(9).budget.trials == 9
    assert spec.max_retries == 2 and spec.storage.keep_checkpoints == 2
    assert spec.storage.checkpoints is None  # --checkpoint-root, else ./checkpoints
    with pytest.raises(SpecError, match="--trials: must be >= 1"):
        spec.with_trials(0)




@pytest.mark.parametrize("edit, expected", [
    (lambda t: t + "colour: red\n", "bad.yaml: colour: unknown field"),
    (lambda t: t.replace("low: 1.0e-4, high: 1.0e-3, log: true", "low: 0.0, high: 1.0e-3, "
                         "log: true"), "bad.yaml: space.lr_g.low: must be > 0 with log: true"),
    (lambda t: t.replace("low: 1.0e-4, high: 1.0e-3, log: true", "low: -1.0e-4, high: 1.0e-3"),
     "bad.yaml: space.lr_g.low: invalid value for mlp_gan parameter 'lr_g': must be > 0"),
    (lambda t: t.replace("dataset: ring8", "dataset: ring9"),
     "bad.yaml: dataset: unknown dataset 'ring9'"),
    (lambda t: t.replace("dataset: ring8", "dataset: parquet:nowhere.parquet"),
     "bad.yaml: dataset: nowhere.parquet: no such file"),
    (lambda t: t.replace("dataset: ring8", "dataset: digits"),
     "bad.yaml: dataset: trainer mlp_gan trains on mixture data, and 'digits' is image data"),
    (lambda t: t.replace("trainer: mlp_gan", "trainer: mlp_gun"),
     "bad.yaml: trainer: unknown trainer 'mlp_gun'"),
    (lambda t: t.replace("g_depth:", "g_deep:"), "bad.yaml: space.g_deep: not a parameter"),
    (lambda t: t.replace("choices: [ns, wgan_gp]", "choices: [ns, wgan_gp, hinged]"),
     "bad.yaml: space.loss.choices:"),
    (lambda t: t.replace("batch_size: 64", "batch_size: -1"), "bad.yaml: fixed:"),
    (lambda t: t.replace("eval_every: 20", "eval_every: 200"),
     "bad.yaml: budget.eval_every: must be <= budget.steps"),
    (lambda t: t.replace("direction: minimize", "direction: down"),
     "bad.yaml: objective.direction"),
    (lambda t: t.replace("name: ring8-tiny", "name: 'ring 8'"), "bad.yaml: name:"),
    (lambda t: t.replace("eval/reverse_kl", "eval/fd"),  # an image metric on 2D points
     "bad.yaml: objective.metric: trainer mlp_gan does not report 'eval/fd' (it reports "
     "eval/modes, eval/high_quality, eval/reverse_kl, eval/score, eval/coverage)"),
    (lambda t: t.replace("high: 1.0e-3, log: true", "high: 1.0e-3, step: 1.0e-2"),
     "bad.yaml: space.lr_g.step: 0.01 is wider than the range 0.0001 to 0.001"),
    (lambda t: t + "  [", "bad.yaml: line"),
    (lambda t: t + "max_retries: -1\n", "bad.yaml: max_retries: must be >= 0"),
    (lambda t: t + "storage: {keep_checkpoints: 0}\n",
     "bad.yaml: storage.keep_checkpoints: must be >= 1"),
    (lambda t: t + "storage: {checkpoints: 3}\n", "bad.yaml: storage.checkpoints: must be a path"),
    (lambda t: t + "storage: {bucket: x}\n", "bad.yaml: storage.bucket: unknown field"),
])
def test_bad_spec_is_one_line_naming_file_and_field(write_spec, edit, expected):
    path = write_spec(edit(RING8_TINY), "bad.yaml")
    with pytest.raises(SpecError) as err:
        SweepSpec.load(path)
    assert str(err.value).startswith(expected), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit", [
    lambda t: t + "colour: red\n",
    lambda t: t.replace("dataset: ring8", "dataset: ring9"),
    lambda t: t.replace("high: 1.0e-3, log: true", "high: 1.0e-5, log: true"),
])
def test_cli_refuses_bad_spec_with_exit_2_and_creates_nothing(tmp_path, write_spec, edit,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_spec(edit(RING8_TINY), "bad.yaml")
    result = CliRunner().invoke(main, ["launch", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gansweep: error: bad.yaml: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no study, no run


def test_cli_refuses_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["launch", "nowhere.yaml"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "gansweep: error: nowhere.yaml: no such file"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag, value, expected", [
    ("--storage", "nosuchdb://x/y", "gansweep: error: --storage: cannot open nosuchdb://x/y"),
    ("--checkpoint-root", "foo://x", "gansweep: error: --checkpoint-root: cannot open foo://x"),
    ("--trials", "0", "gansweep: error: --trials: must be >= 1"),
])
def test_cli_refuses_bad_flags_with_exit_2(tmp_path, write_spec, monkeypatch, flag, value,
                                           expected):
    monkeypatch.chdir(tmp_path)
    path = write_spec(SYNTHETIC, "ok.yaml")
    result = CliRunner().invoke(main, ["launch", str(path), flag, value])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert not (tmp_path / "optuna.db").exists()


def test_status_of_a_missing_store_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["status", "ring8"])
    assert result.exit_code == 2
    assert "no sweep named 'ring8'" in result.stderr and list(tmp_path.iterdir()) == []


def test_resume_of_an_unknown_sweep_is_one_line_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["resume", "ring8"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"gansweep: error: no sweep named 'ring8': sqlite:///{tmp_path}/optuna.db does not exist"]
    assert list(tmp_path.iterdir()) == []


def test_settings_make_store_files_absolute_and_leave_other_uris_alone(tmp_path, monkeypatch):
    from orchestrator.stores.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings.resolve("sweeps/optuna.journal", "databricks")
    assert settings.storage == str(tmp_path / "sweeps" / "optuna.journal")
    assert settings.tracking_uri == "databricks"  # a bare word, not a file here
    settings = Settings.resolve("sqlite:///optuna.db", "sqlite:///mlflow.db")
    assert settings.storage == f"sqlite:///{tmp_path}/optuna.db"
    assert settings.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
