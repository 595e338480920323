"""No credential is stored or shown: a sweep run against a study storage and a tracking server
whose URIs hold a planted password, then resumed, leaves that password nowhere gansweep writes:
not in the study storage, not in any checkpoint, not in any MLflow param, tag, metric or
artifact (the server's whole backend and artifact store are searched), not in the Ray Job's
entrypoint, and not in anything printed."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.cluster.jobs import job_entrypoint, job_runtime_env
from orchestrator.spec.sweep import SweepSpec
from tests.conftest import SYNTHETIC

PLANTED = "PLANTED-pw-5c1e9"


def _with_password(url: str, user: str = "gansweep") -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{PLANTED}@{rest.split('@', 1)[-1]}"


def _database_text(url: str) -> str:
    """Every row of every table in the study's database, as text."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    rows = []
    with engine.connect() as conn:
        meta = sa.MetaData()
        meta.reflect(bind=conn)
        for table in meta.sorted_tables:
            rows += [repr(tuple(row)) for row in conn.execute(sa.select(table))]
    assert len(rows) > 20  # the sweep really is in there
    return "\n".join(rows)


def _files_holding(folder: Path, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.cluster  # CLI sweeps on postgres and an MLflow server (~28 s): make test-cluster
def test_a_planted_password_is_stored_and_shown_nowhere(tmp_path, ray_local, postgres_url,
                                                        mlflow_server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    storage = _with_password(postgres_url)  # trust auth: any password is let in
    tracking = _with_password(mlflow_server, "alice")  # the server ignores it; requests sends it
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SYNTHETIC.replace("name: synth", "name: redact")
                         .replace("trials: 4", "trials: 2"))
    runner = CliRunner()
    printed = []

    def gansweep(*args: str, env: dict | None = None):
        result = runner.invoke(main, list(args), env=env)
        printed.append(result.output)
        return result

    ckpt = tmp_path / "ckpt"
    done = gansweep("launch", str(spec_path), "--storage", storage, "--tracking-uri", tracking,
                    "--checkpoint-root", str(ckpt))
    assert done.exit_code == 0, done.output[-2000:]

    refused = gansweep("resume", "redact", "--trials", "3", "--storage", storage)
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "gansweep: error: --tracking-uri: the sweep was launched with "
        f"{tracking.replace(PLANTED, '***')}, whose secret gansweep does not keep: set "
        "MLFLOW_TRACKING_URI (or pass --tracking-uri) to that URI")
    resumed = gansweep("resume", "redact", "--trials", "3", "--storage", storage,
                       env={"MLFLOW_TRACKING_URI": tracking})
    assert resumed.exit_code == 0, resumed.output[-2000:]
    listed = gansweep("status", "redact", "--json", "--storage", storage)
    assert listed.exit_code == 0 and listed.output.count('"state": "COMPLETE"') == 3

    assert PLANTED not in _database_text(postgres_url)  # study, trials, attributes, lease
    assert sorted(p.name for p in ckpt.rglob("*.pt"))  # checkpoints were written...
    assert _files_holding(ckpt, PLANTED) == []  # ...and hold no password
    server = tmp_path  # the fixture's: server.db (params, tags, metrics), server-artifacts
    assert any((server / "server-artifacts").rglob("final.pt"))
    assert _files_holding(server, PLANTED) == []
    assert [t for t in printed if PLANTED in t] == []  # MLflow printed "View run" URLs

    spec = SweepSpec.load(spec_path)
    entrypoint = job_entrypoint(spec, str(tmp_path), str(ckpt), 3, False, None)
    env = job_runtime_env(str(tmp_path), storage, tracking, (), install=False)["env_vars"]
    assert PLANTED not in entrypoint  # argv is shown by the dashboard and `ray job list`
    assert env["GANSWEEP_STORAGE"] == storage  # the stores travel in the job's environment



@pytest.mark.parametrize("how", ["flag", "RAY_ADDRESS"])
@pytest.mark.parametrize("address", ["ray://sweeper:Pl4nted-S3cret@127.0.0.1:1",
                                     "sweeper:Pl4nted-S3cret@127.0.0.1:1"])
def test_a_ray_address_with_a_password_is_refused_without_printing_it(tmp_path, monkeypatch,
                                                                      address, how):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synth.yaml").write_text(SYNTHETIC)
    args = ["launch", "synth.yaml"] + (["--address", address] if how == "flag" else [])
    env = {"RAY_ADDRESS": address} if how == "RAY_ADDRESS" else {}
    result = CliRunner(env=env).invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Pl4nted-S3cret" not in result.output
    assert result.stderr.strip() == (
        f"gansweep: error: --address: cannot connect to Ray at "
        f"{address.replace('Pl4nted-S3cret', '***')}: Connection refused (is a Ray head running "
        f"there? `ray start --head` prints its address)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth.yaml"]  # nothing made
