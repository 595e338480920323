"""The strings a sweep spec uses for its trainer and dataset, and what they name.

A trainer is one of the built-ins (mlp_gan, dcgan, synthetic), a short name an installed package
registers under the entry-point group `gansweep.trainers`, or an import path
`package.module:Class`. A dataset is a built-in name (a key of `DATASETS`: its kind and its
loader), a file (parquet:PATH, folder:PATH, idx:PATH), a short name under `gansweep.datasets`, or
an import path `package.module:function` of a callable that returns the data (a Mixture, an
ImageDataset, None, or any object of your own).

Names resolve to a *target*: a built-in name, or `module:attr`. The driver resolves entry points
once and ships targets to the actors, so actors never need the entry-point metadata.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from trainers.base import build_config, contract_problems
from trainers.dcgan import DCGANTrainer
from trainers.image_data import DIGITS_SIZES, IMAGE_PREFIXES, load_image_dataset
from trainers.mixtures import grid25, ring8
from trainers.mlp_gan import MLPGANTrainer
from trainers.params import describe
from trainers.synthetic import SyntheticTrainer

IMPORT_TIMEOUT_S = 120.0  # a plug-in module's import, on the driver and in each actor

TRAINER_GROUP, DATASET_GROUP = "gansweep.trainers", "gansweep.datasets"
IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

TRAINERS: dict[str, type] = {
    "mlp_gan": MLPGANTrainer,
    "dcgan": DCGANTrainer,
    "synthetic": SyntheticTrainer,
}


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset with a fixed name: the DATA_KIND of its data, and the loader that makes it."""

    kind: str  # one of trainers.base.DATA_KINDS: checked against a trainer's before loading
    load: Callable[[], Any]


# One entry per dataset with a fixed name, the only list of them; files come in as parquet:PATH,
# folder:PATH or idx:PATH (image data), plug-ins as import paths (their kind is what they return).
DATASETS: dict[str, BuiltinDataset] = {
    "ring8": BuiltinDataset("mixture", ring8),
    "grid25": BuiltinDataset("mixture", grid25),
    **{name: BuiltinDataset("image", partial(load_image_dataset, name)) for name in DIGITS_SIZES},
    "none": BuiltinDataset("none", lambda: None),
}


class PluginError(ValueError):
    """A trainer or dataset that cannot be found, imported or used; one line saying why."""


def is_plugin(target: str) -> bool:
    """Whether a resolved target is an import path `module:attr` (not a built-in)."""
    return bool(IMPORT_PATH.fullmatch(target)) and not target.startswith(IMAGE_PREFIXES)


def trainer_target(name: str) -> str:
    """The built-in name or import path that trainer `name` stands for."""
    if name in TRAINERS or is_plugin(name):
        return name
    return _registered(TRAINER_GROUP, name, f"unknown trainer {name!r}: use a built-in "
                       f"({', '.join(sorted(TRAINERS))}), an import path package.module:Class")


def dataset_target(name: str) -> str:
    """The built-in name, file name or import path that dataset `name` stands for."""
    if name in DATASETS or name.startswith(IMAGE_PREFIXES) or is_plugin(name):
        return name
    return _registered(DATASET_GROUP, name, f"unknown dataset {name!r}: use a built-in "
                       f"({', '.join(DATASETS)}), a file "
                       f"({', '.join(p + 'PATH' for p in IMAGE_PREFIXES)}), an import path "
                       f"package.module:function")


def find_trainer(target: str) -> Any:
    """What a trainer target names, unchecked: a built-in class, or the imported object."""
    return TRAINERS[target] if target in TRAINERS else import_target(target)


def trainer_class(target: str) -> type:
    """The trainer class of a target; a plug-in is imported and checked against the contract."""
    found = find_trainer(target)
    if target in TRAINERS:
        return found
    problems = contract_problems(found)
    if problems:
        raise PluginError(f"{target} is not a gansweep trainer: {'; '.join(problems)} (the "
                          f"contract: trainers/base.py)")
    return found


def dataset_kind(target: str) -> str | None:
    """"mixture", "image" or "none" for a built-in dataset; None for a plug-in, whose kind is
    that of what it returns (see trainers.scoring.data_kind)."""
    if is_plugin(target):
        return None
    if target in DATASETS:
        return DATASETS[target].kind
    if target.startswith(IMAGE_PREFIXES):
        return "image"
    return dataset_kind(dataset_target(target))  # a name: resolved, or refused naming the known


def load_dataset(name: str) -> Any:
    """The data `name` names: a Mixture, an ImageDataset, None, or what a plug-in returns."""
    target = dataset_target(name)
    if target in DATASETS:
        return DATASETS[target].load()
    if is_plugin(target):
        return dataset_loader(target)()
    return load_image_dataset(target)


def dataset_loader(target: str) -> Callable[[], Any]:
    """The callable a plug-in dataset target names, imported and checked."""
    loader = import_target(target)
    if not callable(loader):
        raise PluginError(f"{target} is a {type(loader).__name__}, not a callable that "
                          f"returns the data")
    return loader


def build_trainer(target: str, params: dict, data: Any, seed: int, device: str = "cpu") -> Any:
    """A fresh trainer on `data`, its Config built from `params`; `target` may also be an
    entry-point name."""
    cls = trainer_class(trainer_target(target))
    return cls(build_config(cls, params, target), data, seed, device)


def import_target(target: str) -> Any:
    """The object at import path `module:attr`; one-line PluginError naming the path otherwise."""
    module_name, _, attr = target.partition(":")
    module = sys.modules.get(module_name) or _import(module_name, target)
    found: Any = module
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise PluginError(f"{module_name} has no attribute {attr!r} (for {target})") from None
    return found


def _import(module_name: str, target: str) -> Any:
    """Import a plug-in's module on a thread of its own: whatever it raises, SystemExit and
    KeyboardInterrupt included, and an import that does not finish within IMPORT_TIMEOUT_S (a
    module waiting on a network share or a lock), is a one-line PluginError naming it."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["module"] = importlib.import_module(module_name)
        except BaseException as exc:  # noqa: BLE001 - a plug-in may raise anything at import
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"import {module_name}", daemon=True)
    thread.start()
    thread.join(IMPORT_TIMEOUT_S)
    if thread.is_alive():
        raise PluginError(f"cannot import {module_name} (for {target}): it did not finish within "
                          f"{IMPORT_TIMEOUT_S:.0f} s")
    if "error" in box:
        raise PluginError(f"cannot import {module_name} (for {target}): "
                          f"{describe(box['error'])}")
    return box["module"]


def _registered(group: str, name: str, unknown: str) -> str:
    """The import path an installed package registers `name` under in entry-point `group`;
    PluginError `unknown`, with the names installed, when none does."""
    entries = importlib.metadata.entry_points(group=group)
    for entry in entries:
        if entry.name == name:
            return entry.value.replace(" ", "")
    names = sorted({entry.name for entry in entries})
    installed = f" (installed: {', '.join(names)})" if names else ""
    raise PluginError(f"{unknown}, or a name an installed package registers under "
                      f"{group}{installed}")
