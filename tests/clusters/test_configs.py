"""The configs in clusters/ keep the fields gansweep relies on, at the versions it pins."""

from __future__ import annotations

import re
import subprocess
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


def test_every_file_in_clusters_is_checked_here():
    assert sorted(p.name for p in CLUSTERS.iterdir()) == [
        "Dockerfile", "README.md", "aws.yaml", "gcp.yaml", "kuberay-raycluster.yaml",
        "kuberay-rayjob.yaml", "setup-node.sh"]


def _image_tag() -> str:
    """The tag clusters/Dockerfile's build line gives the gansweep image."""
    from importlib.metadata import version

    return f"REGISTRY/gansweep:{version('gansweep')}"


def test_the_image_is_rays_gpu_image_at_the_pinned_ray_and_python_with_gansweep_installed():
    text = (CLUSTERS / "Dockerfile").read_text()
    base = re.search(r"^ARG RAY_IMAGE=(\S+)$", text, re.M).group(1)
    assert base == f"rayproject/ray:{_pins()['ray']}-py311-gpu"  # Python 3.11: the floor
    assert re.search(r"^FROM \$\{RAY_IMAGE\}$", text, re.M)
    assert "pip install --no-cache-dir -c constraints.txt '.[postgres]'" in text
    assert f"-t {_image_tag()} ." in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "*.db", "checkpoints"} <= set(ignored)


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
    setup = cfg["setup_commands"]
    assert setup[0] == "bash ~/gansweep/clusters/setup-node.sh"  # Python >= 3.11, the pins
    assert "RAY_AUTH_MODE=token" in setup[1] and "MLFLOW_TRACKING_URI" in setup[1]
    script = (CLUSTERS / "setup-node.sh").read_text()
    assert "pip install -q -c constraints.txt -e '.[postgres]'" in script
    assert 'MIN="3, 11"' in script  # the floor pyproject names
    assert "requires-python = \">=3.11\"" in (ROOT / "pyproject.toml").read_text()
    mounts = cfg["file_mounts"]
    assert any(dst.endswith("gansweep") and src == "." for dst, src in mounts.items())
    assert mounts["/home/ubuntu/.ray/auth_token"] == "~/.ray/auth_token"  # one token, all nodes
    token = "RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=/home/ubuntu/.ray/auth_token"
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert f"{token} ~/venv/bin/ray start --head" in head_start
    assert "--port=6379" in head_start and "--dashboard-port=8265" in head_start
    workers = " ".join(cfg["worker_start_ray_commands"])
    assert f"{token} ~/venv/bin/ray start --address=$RAY_HEAD_IP:6379" in workers
    assert token in setup[1]  # in the container ~ is /home/ray: the path is absolute
    assert "# docker:\n#   image: REGISTRY/gansweep:" in (CLUSTERS / name).read_text()


def _ray_groups(spec: dict) -> tuple[dict, list[dict]]:
    return spec["headGroupSpec"], spec["workerGroupSpecs"]


@pytest.mark.parametrize("name", ["kuberay-raycluster.yaml", "kuberay-rayjob.yaml"])
def test_kuberay_manifests_have_gpu_workers_ports_and_the_pinned_ray(name):
    doc = _load(name)
    assert doc["apiVersion"] == "ray.io/v1"
    spec = doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__ == _pins()["ray"]
    assert spec["authOptions"] == {"mode": "token"}
    head, workers = _ray_groups(spec)
    assert head["rayStartParams"]["num-cpus"] == "0"
    container = head["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in container["ports"]} >= {6379, 8265, 10001}
    images = [container["image"]] + [w["template"]["spec"]["containers"][0]["image"]
                                     for w in workers]
    assert all(i == _image_tag() for i in images), images  # clusters/Dockerfile
    for worker in workers:
        assert 0 <= worker["minReplicas"] <= worker["replicas"] <= worker["maxReplicas"]
        limits = worker["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == 1


def test_the_rayjob_runs_a_shipped_spec_with_its_stores_from_the_heads_secret():
    doc = _load("kuberay-rayjob.yaml")
    spec = doc["spec"]
    assert doc["kind"] == "RayJob" and spec["shutdownAfterJobFinishes"] is True
    assert spec["backoffLimit"] >= 1  # a retry resumes the sweep
    entry = spec["entrypoint"]
    assert "$" not in entry and "--storage" not in entry and "--tracking-uri" not in entry
    assert entry.split()[:4] == ["python", "-m", "orchestrator.cli", "launch"]
    assert (ROOT / entry.split()[4]).is_file()
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"working_dir": yaml.safe_load(
        spec["runtimeEnvYAML"])["working_dir"]}  # packages come with the image
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": "gansweep-env"}} in head["envFrom"]
    assert "--from-literal=GANSWEEP_STORAGE=" in (CLUSTERS / "kuberay-rayjob.yaml").read_text()


def test_setup_on_the_gansweep_image_installs_nothing_and_points_venv_at_its_tools(tmp_path):
    """The docker: fast path: where gansweep is installed (this venv stands in for the image's
    Python), setup-node.sh links ~/venv/bin's python, ray and gansweep to it, so the start
    commands' ~/venv/bin/ray works, and installs nothing."""
    import sys

    image_bin = Path(sys.executable).parent
    env = {"HOME": str(tmp_path), "PATH": f"{image_bin}:/usr/bin:/bin"}
    done = subprocess.run(["bash", str(CLUSTERS / "setup-node.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "gansweep is in the image: ~/venv/bin points at it"
    for tool in ("python", "ray", "gansweep"):
        link = tmp_path / "venv" / "bin" / tool
        assert link.is_symlink() and link.resolve() == (image_bin / tool).resolve(), tool
    ray_version = subprocess.run([str(tmp_path / "venv" / "bin" / "ray"), "--version"],
                                 capture_output=True, text=True, env=env)
    assert ray.__version__ in ray_version.stdout


def _submitter_argv(entrypoint: str, tmp_path: Path) -> list[str]:
    """The argv the driver gets when KubeRay's submitter pod runs `entrypoint` through
    `bash -c`: the pod's environment has no store variable (no envFrom), so a `$VAR` there
    expands to nothing. A `python` on PATH records its argv."""
    shim = tmp_path / "bin" / "python"
    shim.parent.mkdir(parents=True)
    shim.write_text("#!/usr/bin/env bash\nprintf '%s\\0' \"$@\" > \"$ARGV_OUT\"\n")
    shim.chmod(0o755)
    out = tmp_path / "argv"
    pod_env = {"PATH": f"{shim.parent}:/usr/bin:/bin", "ARGV_OUT": str(out),
               "RAY_DASHBOARD_ADDRESS": "gansweep-head-svc:8265",
               "RAY_JOB_SUBMISSION_ID": "gansweep-ring8-abc12"}
    subprocess.run(["bash", "-c", entrypoint], env=pod_env, check=True)
    return out.read_bytes().decode().split("\0")[:-1]


def test_the_rayjob_entrypoint_reaches_the_driver_whole_and_the_driver_finds_its_storage(
        tmp_path, monkeypatch):
    from click.testing import CliRunner

    from orchestrator.cli import main
    from orchestrator.stores.settings import JOB_ENV_VAR

    argv = _submitter_argv(_load("kuberay-rayjob.yaml")["spec"]["entrypoint"], tmp_path)
    assert argv == ["-m", "orchestrator.cli", "launch", "search_spaces/ring8.yaml",
                    "--checkpoint-root", "s3://gansweep/checkpoints", "--require-gpu"]
    assert all(argv)  # no argument emptied by an unset variable
    # the old entrypoint's `--storage "$GANSWEEP_STORAGE"` arrived empty: now refused
    old = _submitter_argv('python launch --storage "$GANSWEEP_STORAGE"', tmp_path / "old")
    assert old == ["launch", "--storage", ""]
    # the driver on the head, where the secret is in the environment but the shared stores are
    # missing from it: one line, before anything is made
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(JOB_ENV_VAR, "{}")
    monkeypatch.delenv("GANSWEEP_STORAGE", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.mlflow.svc:5000")
    result = CliRunner().invoke(main, argv[2:])
    assert result.exit_code == 2
    assert result.stderr.startswith("gansweep: error: --storage: this sweep runs as a Ray Job, "
                                    "and GANSWEEP_STORAGE is not set on the cluster")
    empty = CliRunner().invoke(main, ["launch", "search_spaces/ring8.yaml", "--storage", ""])
    assert empty.exit_code == 2 and "--storage: empty (an unset shell variable?)" in empty.stderr
