"""Launching without Ray: the launch record `resume` reads back, the stores it takes from it,
the extractor check, and the Ray address check against local sockets.

(`shared_store_problems` is tested in test_cluster.py, outside its `cluster` tests.)
"""

from __future__ import annotations

import contextlib
import socket
import threading

import optuna
import pytest

from orchestrator.driver.launch import Settings, check_address
from orchestrator.spec.sweep import SpecError, SweepSpec
from orchestrator.study.record import (
    LAUNCH_ATTR,
    LaunchRecord,
    check_same_extractor,
    digest,
    recorded_store,
    stored_extractor,
)
from tests.conftest import SYNTHETIC

SECRET_URI = "postgresql://gansweep:hunter2@db:5432/mlflow"
MASKED_URI = "postgresql://gansweep:***@db:5432/mlflow"
# what the first gansweep with `resume` wrote: no extractor, spec_path None, the URI as given
OLD_RECORD = {"spec": SYNTHETIC, "spec_path": None, "trials": 4,
              "tracking_uri": "sqlite:////tmp/mlflow.db", "checkpoint_root": "/tmp/ck"}


# -- the launch record -------------------------------------------------------------------------
def test_a_record_keeps_the_spec_and_masked_stores_and_reads_back_the_same(write_spec, tmp_path):
    spec = SweepSpec.load(write_spec(SYNTHETIC))
    settings = Settings(storage=f"sqlite:///{tmp_path}/o.db", tracking_uri=SECRET_URI,
                        checkpoint_root=str(tmp_path / "ck"), feature_extractor="/x/fx.pt")
    record = LaunchRecord.of(spec, settings, b"weights")
    stored = record.to_dict()
    assert stored == {"spec": SYNTHETIC, "trials": 4, "spec_path": str(tmp_path / "spec.yaml"),
                      "tracking_uri": MASKED_URI, "checkpoint_root": str(tmp_path / "ck"),
                      "feature_extractor": "/x/fx.pt",
                      "feature_extractor_sha256": digest(b"weights")}
    assert LaunchRecord.from_dict(stored) == record


def test_an_old_record_without_the_extractor_reads_back_and_writes_as_it_was():
    record = LaunchRecord.from_dict({**OLD_RECORD, "written_by": "a later version"})
    assert record.spec_path == "" and record.trials == 4 and not record.extractor_recorded
    assert record.feature_extractor is None and record.feature_extractor_sha256 is None
    assert record.to_dict() == {**OLD_RECORD, "spec_path": ""}


def test_a_record_launched_without_an_extractor_says_so():
    record = LaunchRecord.from_dict({**OLD_RECORD, "feature_extractor": None,
                                     "feature_extractor_sha256": None})
    assert record.extractor_recorded and record.feature_extractor_sha256 is None


# -- the stores and the extractor `resume` uses ------------------------------------------------
def test_resume_takes_the_flag_else_the_record_else_the_matching_variable(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert recorded_store("http://flag", MASKED_URI, "--tracking-uri",
                          "MLFLOW_TRACKING_URI") == "http://flag"
    assert recorded_store(None, "sqlite:////m.db", "--tracking-uri",
                          "MLFLOW_TRACKING_URI") == "sqlite:////m.db"
    with pytest.raises(SpecError, match=r"^--tracking-uri: the sweep was launched with "
                                        r"postgresql://gansweep:\*\*\*@db.*set "
                                        r"MLFLOW_TRACKING_URI"):
        recorded_store(None, MASKED_URI, "--tracking-uri", "MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", SECRET_URI.replace("@db", "@other"))
    with pytest.raises(SpecError):  # a secret URI of another store is not taken
        recorded_store(None, MASKED_URI, "--tracking-uri", "MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", SECRET_URI)
    assert recorded_store(None, MASKED_URI, "--tracking-uri",
                          "MLFLOW_TRACKING_URI") == SECRET_URI


def test_resume_uses_the_recorded_extractor_while_it_is_there(tmp_path):
    fx = tmp_path / "fx.pt"
    record = LaunchRecord.from_dict({**OLD_RECORD, "feature_extractor": str(fx),
                                     "feature_extractor_sha256": digest(b"weights")})
    assert stored_extractor(record, "/given.pt") == "/given.pt"
    with pytest.raises(SpecError, match=f"extractor {fx} is gone.*sha256 "
                                        f"{digest(b'weights')[:12]}"):
        stored_extractor(record, None)
    fx.write_bytes(b"weights")
    assert stored_extractor(record, None) == str(fx)
    assert stored_extractor(LaunchRecord.from_dict(OLD_RECORD), None) is None


def _study_launched_with(record: dict | None, trials: int = 1) -> optuna.Study:
    study = optuna.create_study(study_name="synth")
    if record is not None:
        study.set_user_attr(LAUNCH_ATTR, record)
    for _ in range(trials):
        study.tell(study.ask(), 1.0)
    return study


def test_a_sweep_goes_on_only_with_the_extractor_it_was_launched_with():
    with_fx = {**OLD_RECORD, "feature_extractor": "/x/fx.pt",
               "feature_extractor_sha256": digest(b"weights")}
    check_same_extractor(_study_launched_with(with_fx), b"weights")
    with pytest.raises(SpecError, match=r"launched with --feature-extractor /x/fx.pt \(sha256 "
                                        r"\w{12}\), given none"):
        check_same_extractor(_study_launched_with(with_fx), None)
    without = {**OLD_RECORD, "feature_extractor": None, "feature_extractor_sha256": None}
    with pytest.raises(SpecError, match="launched without --feature-extractor, given sha256"):
        check_same_extractor(_study_launched_with(without), b"weights")
    # nothing to compare with: an old record, no record, or no trial yet
    check_same_extractor(_study_launched_with(OLD_RECORD), b"weights")
    check_same_extractor(_study_launched_with(None), b"weights")
    check_same_extractor(_study_launched_with(with_fx, trials=0), None)


# -- the Ray address ----------------------------------------------------------------------------
class _Listener:
    """A local TCP server that answers each connection's first bytes with `reply`."""

    def __init__(self, reply: bytes):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(64)
            conn.sendall(self.reply)
            with contextlib.suppress(OSError):  # until the client hangs up
                conn.recv(64)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("address", [None, "", "local", "auto"])
def test_no_address_or_a_local_ray_is_not_checked(address):
    check_address(address)


@pytest.mark.parametrize("address", ["headnode", "headnode:", ":6379", "ray://h:port"])
def test_an_address_without_host_and_port_is_refused(address):
    with pytest.raises(SpecError, match="expected HOST:PORT"):
        check_address(address)


def test_a_grpc_server_passes_as_a_ray_head(monkeypatch):
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    settings_frame = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
    with _Listener(settings_frame) as head:
        check_address(head.address)
    with _Listener(settings_frame) as head:
        check_address(f"ray://{head.address}")


def test_another_service_or_nothing_listening_is_refused(monkeypatch):
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    with _Listener(b"HTTP/1.1 400 Bad Request\r\n\r\n") as dashboard, pytest.raises(
            SpecError, match="answers, but not as a Ray head"):
        check_address(dashboard.address, timeout_s=2)
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(SpecError, match=f"cannot connect to Ray at 127.0.0.1:{port}"):
        check_address(f"127.0.0.1:{port}", timeout_s=2)
