"""The configs in clusters/ keep the fields gansweep relies on, at the versions it pins."""

from __future__ import annotations

import re
from importlib.metadata import requires
from pathlib import Path

import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "clusters"


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.lower().replace("_", "-")] = version.strip()
    return pins


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTERS / name).read_text())


def test_every_yaml_in_clusters_is_checked_here():
    assert sorted(p.name for p in CLUSTERS.glob("*.yaml")) == [
        "aws.yaml", "gcp.yaml", "kuberay-raycluster.yaml", "kuberay-rayjob.yaml"]


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_launcher_configs_have_a_cpu_head_and_autoscaling_gpu_workers(name):
    cfg = _load(name)
    assert cfg["provider"]["type"] == name.removesuffix(".yaml")
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # the driver lives there; no trial does
    workers = [t for n, t in types.items() if n != cfg["head_node_type"]]
    assert workers
    for worker in workers:
        assert 0 <= worker["min_workers"] <= worker["max_workers"] <= cfg["max_workers"]
        node = worker["node_config"]
        gpu = node.get("guestAccelerators") or re.match(r"(g|p)\d", node.get("InstanceType", ""))
        assert gpu, f"{name}: worker type has no GPU"
    setup = " ".join(cfg["setup_commands"])
    assert "pip install" in setup and "-c constraints.txt" in setup and "-e '.[postgres]'" in setup
    assert "MLFLOW_TRACKING_URI" in setup
    assert any(dst.endswith("gansweep") and src == "." for dst, src in cfg["file_mounts"].items())
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "--head" in head_start and "--port=6379" in head_start
    assert "--dashboard-port=8265" in head_start and "--dashboard-host=0.0.0.0" in head_start
    assert "--address=$RAY_HEAD_IP:6379" in " ".join(cfg["worker_start_ray_commands"])


def _ray_groups(spec: dict) -> tuple[dict, list[dict]]:
    return spec["headGroupSpec"], spec["workerGroupSpecs"]


@pytest.mark.parametrize("name", ["kuberay-raycluster.yaml", "kuberay-rayjob.yaml"])
def test_kuberay_manifests_have_gpu_workers_ports_and_the_pinned_ray(name):
    doc = _load(name)
    assert doc["apiVersion"] == "ray.io/v1"
    spec = doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__ == _pins()["ray"]
    head, workers = _ray_groups(spec)
    assert head["rayStartParams"]["num-cpus"] == "0"
    container = head["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in container["ports"]} >= {6379, 8265, 10001}
    images = [container["image"]] + [w["template"]["spec"]["containers"][0]["image"]
                                     for w in workers]
    assert all(i == f"rayproject/ray:{ray.__version__}-py311-gpu" for i in images), images
    for worker in workers:
        assert 0 <= worker["minReplicas"] <= worker["replicas"] <= worker["maxReplicas"]
        limits = worker["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == 1


def test_the_rayjob_runs_a_shipped_spec_with_the_pinned_packages():
    doc = _load("kuberay-rayjob.yaml")
    assert doc["kind"] == "RayJob" and doc["spec"]["shutdownAfterJobFinishes"] is True
    entry = doc["spec"]["entrypoint"].split()
    assert entry[:4] == ["python", "-m", "orchestrator.cli", "launch"]
    assert (ROOT / entry[4]).is_file() and "--storage" in entry
    runtime_env = yaml.safe_load(doc["spec"]["runtimeEnvYAML"])
    assert runtime_env["working_dir"]
    pinned = dict(re.match(r"([A-Za-z0-9_.\-\[\]]+)==(.+)", p).groups()
                  for p in runtime_env["pip"] if "==" in p)
    pins = _pins()
    for name, version in pinned.items():
        assert pins[name.split("[")[0].lower()] == version, name
    deps = [r for r in requires("gansweep") if "extra ==" not in r]  # what pyproject needs
    needed = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower() for d in deps} - {"ray"}
    assert needed <= {n.split("[")[0].lower() for n in pinned}, needed
