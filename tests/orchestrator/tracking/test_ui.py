"""`gansweep ui` and the links into MLflow's UI: the real server on a real sqlite store, a real
tracking server, the links as MLflow 3's UI reads them, and a store whose folder moved (mended
by orchestrator/stores/relocate.py, tested in tests/orchestrator/stores/test_relocate.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from orchestrator.actor.runlog import metric_rows
from orchestrator.cli.ui import ui as ui_command
from orchestrator.errors import SpecError
from orchestrator.layout import LAUNCH_ATTR, RUN_ATTR
from orchestrator.tracking import ui
from orchestrator.tracking.runs import metrics, params_of
from orchestrator.tracking.tracker import SweepTracker
from tests.conftest import SYNTHETIC, free_port, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
SPEC = SYNTHETIC.replace("name: synth\n", "name: synth\nexperiment: gan-exp\n")


def _query(url: str) -> dict[str, str]:
    """The params of a hash-routed link: what MLflow's UI reads after `#/route?`."""
    route = urlsplit(url).fragment
    return {k: v[0] for k, v in parse_qs(route.partition("?")[2]).items()}


def _sweep(folder: Path, uri: str | None = None) -> tuple[SweepTracker, optuna.Study]:
    """A sweep as `launch` leaves it: experiment `gan-exp`, a parent run holding the spec, two
    trial runs with eval metrics, and its study with the launch record."""
    folder.mkdir(exist_ok=True)
    uri = uri or f"sqlite:///{folder}/mlflow.db"
    tracker = SweepTracker(uri, "gan-exp", "synth")
    tracker.open_sweep_run(SPEC, "synth.yaml")
    study = optuna.create_study(storage=f"sqlite:///{folder}/optuna.db", study_name="synth")
    study.set_metric_names(["eval/loss"])
    study.set_user_attr(LAUNCH_ATTR, {"spec": SPEC, "tracking_uri": ui.redact_uri(uri)})
    for number, (x, loss) in enumerate(((0.5, 0.4), (-1.0, 0.1))):
        run_id = tracker.create_trial_run(number)
        tracker.client.log_batch(run_id, params=params_of({"x": x}), metrics=metrics(
            metric_rows([(2, {"eval/loss": loss, "eval/modes": 8.0 - number})])))
        study.add_trial(create_trial(params={"x": x}, distributions={
            "x": FloatDistribution(-2, 2)}, value=loss, user_attrs={RUN_ATTR: run_id}))
    return tracker, study


# -- links --------------------------------------------------------------------------------------
def test_a_sweeps_view_sorts_its_trials_best_first_with_eval_metrics_and_params_as_columns():
    view = ui.SweepView("ring8", "eval/reverse_kl", True, ("eval/reverse_kl", "eval/modes"),
                        ("lr_g",))
    key, value = view.tag(now_ms=1000)
    envelope = json.loads(value)
    state = json.loads(envelope["state"])
    assert key == "mlflow.sharedViewState.gansweep-ring8"
    assert (envelope["name"], envelope["createdAt"]) == ("gansweep ring8", 1000)
    assert state["selectedColumns"] == ["metrics.`eval/reverse_kl`", "metrics.`eval/modes`",
                                        "params.`lr_g`"]
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`eval/reverse_kl`", True)
    assert state["searchFilter"] == ("tags.`gansweep.sweep` = 'ring8' AND "
                                     "tags.`gansweep.role` = 'trial'")


def test_links_open_the_training_view_of_the_runs_table():
    base = "http://127.0.0.1:5000"
    saved = ui.runs_url(base, "7", view_key="gansweep-ring8")
    assert saved.startswith(f"{base}/#/experiments/7/runs?")
    assert _query(saved) == {"viewStateShareKey": "gansweep-ring8",
                             "workflowType": "machine_learning"}
    view = ui.SweepView("ring8", "eval/modes", False, ("eval/modes",), ())
    plain = ui.runs_url(base, "7", facets=view.facets())  # no saved view: filter and order only
    assert _query(plain) == {**view.facets(), "workflowType": "machine_learning"}
    assert _query(plain)["orderByAsc"] == "false"  # a maximized objective: largest first
    assert ui.run_url(base, "abc123").startswith(f"{base}/#/runs/abc123?")
    assert ui.experiments_url(base) == f"{base}/#/experiments?workflowType=machine_learning"


def test_a_servers_links_carry_no_credentials_and_a_wildcard_host_links_to_this_machine():
    assert ui.server_base("https://me:s3cret@mlflow.example:8443/mlflow/?token=t0k") == \
        "https://mlflow.example:8443/mlflow"
    assert ui.address("0.0.0.0", 5001) == "http://127.0.0.1:5001"
    assert ui.address("::1", 5001) == "http://[::1]:5001"


def test_a_multi_objective_view_sorts_by_the_first_objective_then_lists_the_other_metrics():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["eval/modes", "eval/reverse_kl"])
    study.add_trial(create_trial(params={"lr": 0.1}, distributions={
        "lr": FloatDistribution(0.01, 1)}, values=[7, 0.2]))
    view = ui.sweep_view(study, {"eval/hq", "eval/modes", "train/d_loss", "eval/reverse_kl"})
    assert (view.objective, view.ascending) == ("eval/modes", False)
    assert view.metrics == ("eval/modes", "eval/reverse_kl", "eval/hq")
    assert view.params == ("lr",)


# -- ports ----------------------------------------------------------------------------------------
def test_a_taken_port_is_refused_in_one_line_and_without_port_a_free_one_is_picked(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SpecError, match=f"--port {port}: already in use"):
            ui.pick_port("127.0.0.1", port)
        monkeypatch.setattr(ui, "DEFAULT_PORT", port)  # as if 5000 were taken
        picked = ui.pick_port("127.0.0.1", None)
    assert picked != port and ui.port_free("127.0.0.1", picked)


def test_a_host_that_is_not_this_machines_is_refused_in_one_line():
    with pytest.raises(SpecError, match="--host 192.0.2.1: cannot listen there"):
        ui.pick_port("192.0.2.1", None)  # TEST-NET-1: never a local address




# -- the server -----------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    return [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat")
            if p.exists() and _field(p, 1) == str(pid)]


def _field(stat: Path, i: int) -> str:
    try:
        return stat.read_text().rpartition(")")[2].split()[i]
    except OSError:
        return ""


def test_ui_serves_the_moved_sweep_links_its_trials_and_ctrl_c_leaves_no_process(tmp_path):
    """One server start for three behaviours: `ui NAME --relocate` on a moved local store, the
    same store through that server as an http tracking URI, and Ctrl-C."""
    tracker, _ = _sweep(tmp_path / "proj")
    shutil.move(tmp_path / "proj", tmp_path / "moved")
    port, out = free_port(), tmp_path / "ui.out"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli.ui import ui; ui()", "synth",
         "--port", str(port), "--relocate", "--storage", f"sqlite:///{tmp_path}/moved/optuna.db",
         "--tracking-uri", f"sqlite:///{tmp_path}/moved/mlflow.db"],
        stdout=out.open("w"), stderr=subprocess.STDOUT, cwd=Path(__file__).parents[3],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # SIGINT ignored, as in a background job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        link = wait_for("the sweep's link", lambda: re.search(
            r"trials best first: (\S+)", out.read_text()), timeout=120).group(1)
        base = f"http://127.0.0.1:{port}"
        assert "relocated" in out.read_text()
        assert link.startswith(f"{base}/#/experiments/{tracker.experiment_id}/runs?")
        assert _query(link)["viewStateShareKey"] == "gansweep-synth"
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get?experiment_id="
                                    f"{tracker.experiment_id}") as reply:
            tags = {t["key"]: t["value"] for t in json.load(reply)["experiment"]["tags"]}
        state = json.loads(json.loads(tags["mlflow.sharedViewState.gansweep-synth"])["state"])
        assert state["selectedColumns"][:2] == ["metrics.`eval/loss`", "metrics.`eval/modes`"]
        with urllib.request.urlopen(f"{base}/health") as reply:
            assert reply.status == 200
        with urllib.request.urlopen(f"{base}/get-artifact?path=spec/synth.yaml&run_uuid="
                                    f"{tracker.parent_run_id}") as reply:
            assert reply.read().decode() == SPEC  # the moved folder's artifacts, served
        groups = {_field(Path(f"/proc/{c}/stat"), 2) for c in _children(proc.pid)}
        assert groups, "the MLflow server runs as a child of `gansweep ui`"
        _on_a_tracking_server_ui_starts_nothing_and_prints_its_links(tmp_path, base, tracker)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert "stopping the MLflow UI" in out.read_text()
    assert all(ui.group_members(int(g)) == [] for g in groups)  # no orphan left
    assert ui.port_free("127.0.0.1", port)


def _on_a_tracking_server_ui_starts_nothing_and_prints_its_links(tmp_path, server, tracker):
    """`gansweep ui` on an http store (here the one the test started) prints links there."""
    result = CliRunner().invoke(ui_command, [
        "synth", "--storage", f"sqlite:///{tmp_path}/moved/optuna.db",
        "--tracking-uri", server.replace("http://", "http://me:s3cret@")])
    assert result.exit_code == 0, result.output
    assert "gansweep starts nothing" in result.output and "s3cret" not in result.output
    link = re.search(r"trials best first: (\S+)", result.output).group(1)
    assert link.startswith(f"{server}/#/experiments/{tracker.experiment_id}/runs?")
