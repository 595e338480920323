"""Vendor the v1 openAPIV3Schema of KubeRay CRDs as compact JSON, for test_schemas.py.

    .venv/bin/python tests/clusters/schemas/vendor.py ray.io_rayclusters.yaml ray.io_rayjobs.yaml

writes `raycluster.v1.json` and `rayjob.v1.json` (named from the CRD's kind) next to this file,
gzipped (`.json.gz`) if one would be above 1 MB. The schema is stored as KubeRay publishes it; the
test turns it into a strict JSON Schema when it loads it.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
MAX_PLAIN = 1_000_000  # bytes; above this the file is written gzipped


def v1_schema(crd: dict) -> dict:
    """The openAPIV3Schema of the served `v1` version of a CustomResourceDefinition."""
    for version in crd["spec"]["versions"]:
        if version["name"] == "v1" and version.get("served"):
            return version["schema"]["openAPIV3Schema"]
    raise SystemExit(f"{crd['metadata']['name']}: no served v1 version")


def vendor(crd_path: str) -> Path:
    crd = yaml.safe_load(Path(crd_path).read_text())
    text = json.dumps(v1_schema(crd), separators=(",", ":")).encode()
    out = HERE / f"{crd['spec']['names']['kind'].lower()}.v1.json"
    for stale in (out, out.with_suffix(".json.gz")):
        stale.unlink(missing_ok=True)
    if len(text) > MAX_PLAIN:
        out = out.with_suffix(".json.gz")
        out.write_bytes(gzip.compress(text, mtime=0))  # mtime=0: same input, same bytes
    else:
        out.write_bytes(text)
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for path in sys.argv[1:]:
        print(vendor(path).relative_to(HERE.parents[2]))
