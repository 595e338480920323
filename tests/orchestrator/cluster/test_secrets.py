"""No credential is ever shown or stored: a password planted in each store flag and environment
variable a user sets, a whole sweep run with it (`launch`, then `status`, `best` and `resume`
as a user follows the printed hints), and the password is looked for in everything the commands
printed and every file they wrote: the sweep's folder, the MLflow server's database and
artifacts, Ray's session logs, and the study in PostgreSQL.

The stores accept the password and ignore it (PostgreSQL with trust auth, an MLflow server
without auth), so each sweep really runs with the secret in its URIs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SYNTHETIC

PLANTED = "PLANTED-pw-9c4e"
GANSWEEP = str(Path(sys.executable).parent / "gansweep")


def _with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1) if "@" in rest else ("u", rest)
    return f"{scheme}://{user}:{PLANTED}@{host}"


CASES = [  # (id, flags of `launch`, environment, store flags of the later commands)
    ("in the flags", lambda pg, ml: ["--storage", pg, "--tracking-uri", ml], lambda pg, ml: {},
     lambda pg, ml: ["--storage", pg, "--tracking-uri", ml]),
    ("in the environment", lambda pg, ml: [],
     lambda pg, ml: {"GANSWEEP_STORAGE": pg, "MLFLOW_TRACKING_URI": ml,
                     "MLFLOW_TRACKING_PASSWORD": PLANTED, "MLFLOW_TRACKING_TOKEN": PLANTED,
                     "AWS_SECRET_ACCESS_KEY": PLANTED},
     lambda pg, ml: []),
]


def _files_holding(folder: Path, secret: bytes) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if secret in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


@pytest.mark.cluster  # two whole CLI sweeps on PostgreSQL and an MLflow server (~60 s)
@pytest.mark.parametrize("flags, env, later", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_planted_password_is_in_no_output_and_no_file(tmp_path, postgres_url, mlflow_server,
                                                        flags, env, later):
    name = f"secret-{len(flags(postgres_url, mlflow_server))}"  # one study per case
    pg, ml = _with_password(postgres_url), _with_password(mlflow_server)
    work = tmp_path / "work"
    work.mkdir()
    (work / "spec.yaml").write_text(SYNTHETIC.replace("name: synth", f"name: {name}")
                                    .replace("trials: 4", "trials: 2"))
    environ = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, **env(pg, ml)}
    for var in ("GANSWEEP_STORAGE", "MLFLOW_TRACKING_URI"):
        if var not in env(pg, ml):
            environ.pop(var, None)
    store_flags = later(pg, ml)  # status and best read the study only
    printed = []
    for args in (["launch", "spec.yaml", *flags(pg, ml)], ["status", name, *store_flags[:2]],
                 ["best", name, *store_flags[:2]], ["resume", name, *store_flags]):
        done = subprocess.run([GANSWEEP, *args], cwd=work, env=environ, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, (args[0], done.stderr[-3000:])
        printed.append(done.stdout + done.stderr)
    assert "done 2" in printed[0] and "budget met" in printed[3]
    assert not [p for p in printed if PLANTED in p], printed

    secret = PLANTED.encode()
    assert _files_holding(tmp_path, secret) == []  # the sweep's folder and the MLflow server's
    ray_logs = Path("/tmp/ray/session_latest/logs")
    assert _files_holding(ray_logs.resolve(), secret) == []
    stored = _database_text(postgres_url)  # the study: every row of every table
    assert name in stored and PLANTED not in stored
    assert list(tmp_path.glob("server-artifacts/*/*/artifacts/checkpoints"))  # runs went there


def _database_text(url: str) -> str:
    """Every row of every table of the database at `url`, as text."""
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return repr([list(conn.execute(f'SELECT * FROM "{table}"')) for table in tables])
