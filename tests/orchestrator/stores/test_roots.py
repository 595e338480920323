"""Checkpoints on an S3-compatible store: a real S3 server (moto) on 127.0.0.1 stands in for
MinIO. The endpoint comes from the environment or the URI, never from AWS, and what is written is
looked up in the server with another client (boto3), so nothing passes by landing in a folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid

import boto3
import optuna
import pytest
import torch
from mlflow import MlflowClient
from optuna.trial import TrialState

from orchestrator.actor.checkpoints import TrialCheckpoints
from orchestrator.layout import LAUNCH_ATTR
from orchestrator.stores.roots import ENDPOINT_VARS, pinned_root, resolve_root
from tests.orchestrator.driver.test_fault_tolerance import (
    ROOT,
    _assert_every_step_once,
    _finish,
    _spec_text,
    _trial_runs,
    _wait_for,
)

AWS_VARS = (*ENDPOINT_VARS, "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE",
            "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """http://127.0.0.1:PORT of a moto S3 server running in its own process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"

    def answers():
        assert server.poll() is None, f"moto_server exited, see {log.name}"
        with contextlib.suppress(OSError):
            return urllib.request.urlopen(endpoint, timeout=1).status == 200
    try:
        _wait_for("moto_server to answer", answers, timeout=30)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


class Bucket:
    """A fresh bucket in the moto server, read through boto3 rather than the code under test."""

    def __init__(self, endpoint: str):
        self.endpoint, self.name = endpoint, f"ckpt-{uuid.uuid4().hex[:12]}"
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        self.client.create_bucket(Bucket=self.name)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name,
                                                                      Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture
def aws_env(monkeypatch) -> None:
    """Fake credentials in the environment, and no other AWS setting."""
    for var in AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookups


@pytest.fixture
def bucket(moto_endpoint, aws_env) -> Bucket:
    return Bucket(moto_endpoint)


def _payload(step: int) -> dict:
    return {"step": step, "weights": torch.full((3,), float(step)), "run_id": "abc"}


@pytest.mark.parametrize("where", ["AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL", "uri",
                                   "uri over a dead AWS_ENDPOINT_URL"])
def test_checkpoints_round_trip_through_the_s3_compatible_store(bucket, monkeypatch, where):
    root = f"s3://{bucket.name}/ckpt"
    if where.startswith("uri"):
        root += f"?endpoint_override={bucket.endpoint.split('://')[1]}&scheme=http"
        if "dead" in where:  # the URI's endpoint wins
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{s.getsockname()[1]}")
    else:
        monkeypatch.setenv(where, bucket.endpoint)
    ckpts = TrialCheckpoints(root, "sweep", 7, keep=2)
    for step in (10, 20, 30):
        ckpts.save(_payload(step), step)
    assert ckpts.steps() == [20, 30]
    latest = ckpts.load_latest()
    assert latest["step"] == 30 and torch.equal(latest["weights"], torch.full((3,), 30.0))
    files = [k for k in bucket.keys("ckpt/") if not k.endswith("/")]  # not directory markers
    assert files == ["ckpt/sweep/trial-0007/step-00000020.pt",
                     "ckpt/sweep/trial-0007/step-00000030.pt"]


@pytest.mark.parametrize("uri, environ, pinned", [
    ("s3://b/ckpt", {"MLFLOW_S3_ENDPOINT_URL": "http://minio:9000"},
     "s3://b/ckpt?endpoint_override=minio:9000&scheme=http&region=us-east-1"),
    ("s3://b/ckpt", {"AWS_ENDPOINT_URL_S3": "https://s3.one:1", "AWS_ENDPOINT_URL": "http://two",
                     "MLFLOW_S3_ENDPOINT_URL": "http://three", "AWS_REGION": "eu-west-3"},
     "s3://b/ckpt?endpoint_override=s3.one:1&scheme=https&region=eu-west-3"),
    ("s3://b/ckpt", {"AWS_ENDPOINT_URL": "http://two/", "MLFLOW_S3_ENDPOINT_URL": "http://3",
                     "AWS_DEFAULT_REGION": "eu-north-1", "AWS_REGION": "eu-west-3"},
     "s3://b/ckpt?endpoint_override=two&scheme=http&region=eu-north-1"),
    ("s3://b/ckpt?region=r1", {"AWS_ENDPOINT_URL": "minio:9000", "AWS_REGION": "r2"},
     "s3://b/ckpt?region=r1&endpoint_override=minio:9000"),  # no scheme given: pyarrow's https
    ("s3://b/ckpt", {"AWS_ENDPOINT_URL": "http://user:pw@minio:9000",
                     "AWS_SECRET_ACCESS_KEY": "pw"},
     "s3://b/ckpt?endpoint_override=minio:9000&scheme=http&region=us-east-1"),  # no secrets
    ("s3://b/ckpt?endpoint_override=m:1&scheme=http", {"AWS_ENDPOINT_URL": "http://other:2"},
     "s3://b/ckpt?endpoint_override=m:1&scheme=http"),  # the URI's own endpoint wins
    ("s3://b/ckpt?endpoint_override=minio:9000&scheme=http&region=us-east-1",
     {"AWS_ENDPOINT_URL": "http://minio:9000"},
     "s3://b/ckpt?endpoint_override=minio:9000&scheme=http&region=us-east-1"),  # idempotent
    ("s3://b/ckpt", {"AWS_ENDPOINT_URL": " "}, "s3://b/ckpt"),  # AWS itself
    ("gs://b/ckpt", {"AWS_ENDPOINT_URL": "http://minio:9000"}, "gs://b/ckpt"),
    ("/data/ckpt", {"AWS_ENDPOINT_URL": "http://minio:9000"}, "/data/ckpt"),
])
def test_the_driver_pins_the_endpoint_of_its_environment_into_the_root(uri, environ, pinned):
    assert pinned_root(uri, environ) == pinned


def test_an_actor_without_the_endpoint_in_its_environment_reaches_the_store_by_the_pinned_root(
        bucket, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", bucket.endpoint)
    root = pinned_root(f"s3://{bucket.name}/ckpt")
    TrialCheckpoints(root, "sweep", 1).save(_payload(10), 10)
    env = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARS}
    read = subprocess.run([sys.executable, "-c", "import sys; from orchestrator.actor.checkpoints "
                           "import TrialCheckpoints as T; "
                           "print(T(sys.argv[1], 'sweep', 1).load_latest()['step'])", root],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert read.stdout.strip() == "10", read.stderr


def test_errors_show_no_secret(aws_env, monkeypatch):
    for uri in ("s3://AKID:SUPERSECRET@a bucket/x", "s3://AKID:SUPER%2FSECRET@a bucket/x",
                "s3://b/x?secret_key=SUPERSECRET&session_token=SUPERSECRET&bogus=1"):
        with pytest.raises(ValueError) as info:
            resolve_root(uri)
        assert "SUPER" not in str(info.value) and "SECRET" not in str(info.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "ftp://user:SUPERSECRET@minio:21")
    with pytest.raises(ValueError, match=r"\$AWS_ENDPOINT_URL: expected http\(s\)://") as info:
        resolve_root("s3://b/x")
    assert "SUPERSECRET" not in str(info.value)


# The driver's process starts Ray first, and only then learns the endpoint: its raylet, and so
# every actor, has the credentials (as a cluster's secrets give them) but no endpoint.
DRIVER = ("import os, sys, ray; ray.init(address='local', num_cpus=2, include_dashboard=False, "
          "logging_level='ERROR'); os.environ['MLFLOW_S3_ENDPOINT_URL'] = sys.argv.pop(1); "
          "from orchestrator.cli import main; main(prog_name='gansweep')")


@pytest.mark.cluster  # a sweep subprocess and a killed actor: make test-cluster
def test_a_killed_actor_resumes_from_its_s3_checkpoint_on_a_store_only_the_driver_knows(
        bucket, tmp_path):
    """MLFLOW_S3_ENDPOINT_URL, the one variable pyarrow alone does not read, is the driver's
    only; the actors reach the store through the root the driver pinned."""
    # 6 s trials: the actor tags its run once its logging thread has imported MLflow; the kill
    # must come while trial 0 still has chunks to go
    (tmp_path / "ft.yaml").write_text(_spec_text(trials=3, steps=60, sleep=0.1))
    root = f"s3://{bucket.name}/sweep-ckpts"
    pinned = pinned_root(root, {"MLFLOW_S3_ENDPOINT_URL": bucket.endpoint})
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, bucket.endpoint, "launch", "ft.yaml",
         "--checkpoint-root", root, "--storage", storage, "--tracking-uri", tracking],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=open(tmp_path / "driver.log", "w"), stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        def victim():  # trial 0 once it has checkpointed, with the PID its actor tagged
            runs = [r for r in _trial_runs(tracking) if r.data.tags.get("gansweep.trial") == "0"
                    and "gansweep.pid" in r.data.tags]
            if runs and TrialCheckpoints(pinned, "ft", 0).steps():
                return runs[0]
            assert driver.poll() is None, driver.stderr.read()
        run = _wait_for("trial 0 to checkpoint to S3", victim)
        pid = int(run.data.tags["gansweep.pid"])
        if sys.platform == "linux":  # the premise: the actor has no endpoint of its own
            assert b"S3_ENDPOINT_URL" not in open(f"/proc/{pid}/environ", "rb").read()
        os.kill(pid, signal.SIGKILL)
        code, err = _finish(driver, timeout=90)
    finally:
        _finish(driver)
    assert code == 0, err

    study = optuna.load_study(study_name="ft", storage=storage)
    assert study.user_attrs[LAUNCH_ATTR]["checkpoint_root"] == pinned  # what resume will use
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    assert trials[0].user_attrs["attempt"] == 2
    assert len([r for r in _trial_runs(tracking) if r.data.tags["gansweep.trial"] == "0"]) == 1
    client = MlflowClient(tracking)
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["gansweep.attempt"] == "2" and int(tags["gansweep.resumed_from_step"]) >= 10
    assert tags["gansweep.pid"] != run.data.tags["gansweep.pid"]
    _assert_every_step_once(client, run.info.run_id, 60)
    files = [k for k in bucket.keys("sweep-ckpts/") if not k.endswith("/")]
    assert files == [f"sweep-ckpts/ft/trial-{n:04d}/step-{s:08d}.pt"
                     for n in range(3) for s in (50, 60)]  # the newest two of each
