"""A starting spec for a user's own images: the measured digits space
(search_spaces/digits-dcgan.yaml) with the user's dataset and name, checked as any spec is."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.errors import SpecError
from orchestrator.spec.sweep import NAME_RE, SweepSpec

TEMPLATE = Path(__file__).resolve().parents[2] / "search_spaces" / "digits-dcgan.yaml"


def starter_spec(dataset: str, name: str, source: str) -> str:
    """The text of a spec sweeping the DCGAN family on `dataset` as sweep `name`; `source`
    names the file it will be written to, for the one-line errors of its check."""
    if not NAME_RE.fullmatch(name):
        raise SpecError(f"--name: {name!r}: use letters, digits, '.', '_' and '-' only")
    try:
        template = TEMPLATE.read_text()
    except OSError:
        raise SpecError(f"cannot read the template {TEMPLATE}: gansweep init needs the project's "
                        f"search_spaces/ (install gansweep from its clone)") from None
    body = template[template.index("name: "):]  # the measured spec, without its history
    body = re.sub(r"(?m)^name: .*$", f"name: {name}", body, count=1)
    body = re.sub(r"(?m)^dataset: .*$", f"dataset: {dataset}", body, count=1)
    text = (f"# {name}: the DCGAN family on {dataset}, started by `gansweep init` from\n"
            f"# search_spaces/digits-dcgan.yaml (the space measured on digits: R1, an EMA of G,\n"
            f"# two learning rates searched). Raise budget.steps for larger images.\n"
            f"# gansweep launch {source}\n" + body)
    SweepSpec.parse(text, source=source)  # the dataset's kind and size, the params: refused now
    return text


def default_name(dataset: str) -> str:
    """A sweep name from a dataset: the file's stem for parquet:PATH, else the name."""
    stem = Path(dataset.split(":", 1)[-1]).stem if ":" in dataset else dataset
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "images"
    return name if name[0].isalnum() else f"s{name}"
