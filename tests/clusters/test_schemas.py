"""The configs in clusters/ validate against the schemas of the tools that read them.

The KubeRay manifests against the RayCluster / RayJob CRDs of a pinned KubeRay release (vendored
in schemas/, see its README), with unknown fields forbidden as `kubectl apply --validate=strict`
forbids them; the cluster launcher configs against the installed Ray's ray-schema.json, the
schema `ray up` checks them with. A failure lists every error as `path: message`.
"""

from __future__ import annotations

import copy
import difflib
import functools
import gzip
import json
import re
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "clusters"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
RAY_SCHEMA = Path(find_spec("ray").origin).parent / "autoscaler" / "ray-schema.json"

KUBERAY = {"kuberay-raycluster.yaml": "RayCluster", "kuberay-rayjob.yaml": "RayJob"}
LAUNCHER = ["aws.yaml", "gcp.yaml"]
# The pod template of the head group, where each manifest keeps its RayCluster spec.
HEAD_POD = {"RayCluster": ["spec", "headGroupSpec", "template", "spec"],
            "RayJob": ["spec", "rayClusterSpec", "headGroupSpec", "template", "spec"]}
# `metadata` is only `type: object` in a CRD (the API server checks it as ObjectMeta): loosely.
METADATA = {"type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                           "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                           "annotations": {"type": "object",
                                           "additionalProperties": {"type": "string"}}}}


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTERS / name).read_text())


def _strict(node):
    """A k8s structural schema as plain JSON Schema, closed to unknown fields.

    - an object with `properties` and neither `additionalProperties` nor
      `x-kubernetes-preserve-unknown-fields: true` gets `additionalProperties: false` (the API
      server prunes such fields, or refuses them under strict field validation);
    - `x-kubernetes-int-or-string: true` (which carries no `type`) takes an integer or a string;
    - `nullable: true` adds "null" to the type;
    - `x-kubernetes-list-type: set` means unique items.
    Left unchecked: CEL rules (`x-kubernetes-validations`), the key uniqueness of
    `x-kubernetes-list-type: map`, and `format` (an annotation in JSON Schema 2020-12).
    """
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if out.get("x-kubernetes-int-or-string"):
        out.setdefault("type", ["integer", "string"])
    if out.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    if out.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    return out


@functools.cache
def _kuberay(kind: str) -> Draft202012Validator:
    path = SCHEMAS / f"{kind.lower()}.v1.json"
    raw = path.read_bytes() if path.exists() else gzip.decompress(
        path.with_suffix(".json.gz").read_bytes())
    schema = _strict(json.loads(raw))
    schema["properties"].update(apiVersion={"const": "ray.io/v1"}, kind={"const": kind},
                                metadata=METADATA)
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return Draft202012Validator(schema)


@functools.cache
def _launcher() -> Draft7Validator:
    schema = json.loads(RAY_SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _path(parts) -> str:
    """`spec.workerGroupSpecs[0].template...`; a key that is not a plain name in brackets."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(top level)"


def _errors(validator, doc: dict) -> list[str]:
    """Every error as `path: message`; an unknown field is named by its own path."""
    lines = []
    for error in validator.iter_errors(doc):
        if error.validator == "additionalProperties" and error.validator_value is False:
            known = error.schema.get("properties", {})
            patterns = error.schema.get("patternProperties", {})
            for key in error.instance:
                if key in known or any(re.search(p, key) for p in patterns):
                    continue
                hint = difflib.get_close_matches(key, known, n=1)
                lines.append(f"{_path([*error.absolute_path, key])}: unknown field"
                             + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        else:
            lines.append(f"{_path(error.absolute_path)}: {error.message}")
    return sorted(lines)


def _assert_valid(validator, doc: dict, name: str) -> None:
    errors = _errors(validator, doc)
    assert not errors, f"clusters/{name} does not match its schema:\n  " + "\n  ".join(errors)


def _at(doc: dict, path: list) -> dict:
    for part in path:
        doc = doc[part]
    return doc


# --- KubeRay manifests against the vendored CRDs ---------------------------------------------


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_manifests_match_their_crd(name):
    _assert_valid(_kuberay(KUBERAY[name]), _load(name), name)


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_schema_refuses_unknown_fields(name):
    kind = KUBERAY[name]
    typo, meant = {"RayCluster": ("enableInTreeAutoscalling", "enableInTreeAutoscaling"),
                   "RayJob": ("shutdownAfterJobFinishs", "shutdownAfterJobFinishes")}[kind]
    doc = copy.deepcopy(_load(name))
    doc["spec"][typo] = True
    _at(doc, HEAD_POD[kind])["containers"][0]["imagePullPolicyy"] = "Always"
    assert _errors(_kuberay(kind), doc) == sorted([
        f"spec.{typo}: unknown field (did you mean {meant!r}?)",
        f"{_path(HEAD_POD[kind])}.containers[0].imagePullPolicyy: unknown field"
        " (did you mean 'imagePullPolicy'?)",
    ])


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_schema_refuses_wrong_types(name):
    kind = KUBERAY[name]
    doc = copy.deepcopy(_load(name))
    cluster = doc["spec"] if kind == "RayCluster" else doc["spec"]["rayClusterSpec"]
    cluster["workerGroupSpecs"][0]["replicas"] = "two"
    doc["metadata"]["name"] = 7
    workers = "spec.workerGroupSpecs" if kind == "RayCluster" else \
        "spec.rayClusterSpec.workerGroupSpecs"
    assert _errors(_kuberay(kind), doc) == sorted([
        f"{workers}[0].replicas: 'two' is not of type 'integer'",
        "metadata.name: 7 is not of type 'string'",
    ])


@pytest.mark.parametrize(("value", "ok"), [(4, True), ("4", True), ("500m", True),
                                           ("four", False), ([4], False)])
def test_kuberay_quantities_take_an_int_or_a_string(value, ok):
    doc = copy.deepcopy(_load("kuberay-raycluster.yaml"))
    _at(doc, HEAD_POD["RayCluster"])["containers"][0]["resources"]["limits"]["cpu"] = value
    errors = _errors(_kuberay("RayCluster"), doc)
    assert (not errors) == ok, errors
    assert all(e.startswith(
        "spec.headGroupSpec.template.spec.containers[0].resources.limits.cpu: ") for e in errors)


def test_the_vendored_crds_know_token_auth_and_the_submitter_pod():
    # What makes this the pinned release: Ray token auth on RayCluster, a submitter pod on RayJob.
    cluster = _kuberay("RayCluster").schema["properties"]["spec"]["properties"]
    assert cluster["authOptions"]["properties"]["mode"]["enum"] == ["disabled", "token"]
    job = _kuberay("RayJob").schema["properties"]["spec"]["properties"]
    assert {"submitterPodTemplate", "submissionMode", "rayClusterSpec"} <= set(job)


# --- cluster launcher configs against Ray's ray-schema.json ----------------------------------


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_configs_match_ray_schema(name):
    _assert_valid(_launcher(), _load(name), name)


@pytest.mark.parametrize("name", LAUNCHER)
def test_ray_schema_refuses_unknown_keys(name):
    assert _launcher().schema["additionalProperties"] is False  # closed at the top level
    doc = copy.deepcopy(_load(name))
    doc["idle_timeout_minute"] = doc.pop("idle_timeout_minutes")
    doc["available_node_types"]["head"]["min_worker"] = 0
    doc["max_workers"] = "eight"
    assert _errors(_launcher(), doc) == sorted([
        "idle_timeout_minute: unknown field (did you mean 'idle_timeout_minutes'?)",
        "available_node_types.head.min_worker: unknown field (did you mean 'min_workers'?)",
        "max_workers: 'eight' is not of type 'integer'",
    ])
