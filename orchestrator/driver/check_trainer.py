"""`gansweep check-trainer`: a trainer (a user's plug-in, or a built-in) driven as a sweep would
drive it, on its data, in this process (no Ray, no stores): one PASS / FAIL line per check of
the trainer contract (trainers/conformance.py)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.driver.data import prepare_dataset
from orchestrator.errors import SpecError
from orchestrator.spec.sweep import plugin_folders
from orchestrator.stores.settings import default_cache_dir

DEFAULT_DATASETS = {"mixture": "ring8", "image": "digits", "none": "none"}
CHECK_EVAL_SAMPLES = 256  # images per evaluation in check-trainer: enough to compute FD


def check_trainer_table(import_path: str, dataset: str | None, params: dict, steps: int,
                        seed: int, device: str) -> tuple[list[str], bool]:
    """`gansweep check-trainer`: the report's lines, and whether every check passed. A trainer
    or dataset that cannot be imported raises SpecError (one line, exit 2)."""
    from trainers.base import contract_problems
    from trainers.conformance import check_trainer, summary
    from trainers.registry import PluginError, dataset_target, find_trainer
    from trainers.registry import trainer_target as resolve_trainer

    plugin_folders([Path.cwd()])
    try:
        target = resolve_trainer(import_path)
        cls = find_trainer(target)  # unchecked: the report's first line is the contract check
    except PluginError as exc:
        raise SpecError(str(exc)) from None
    data, where = None, "no data"
    if not contract_problems(cls):  # else the report's first line says what is missing
        name = dataset or DEFAULT_DATASETS.get(cls.DATA_KIND)
        if name is None:
            raise SpecError(f"--dataset: {import_path} trains on {cls.DATA_KIND} data: name "
                            f"the dataset to check it on")
        try:
            resolved = dataset_target(name)
        except PluginError as exc:
            raise SpecError(f"--dataset: {exc}") from None
        data = prepare_dataset(resolved, target, default_cache_dir(), CHECK_EVAL_SAMPLES,
                               notice=lambda message: None).payload
        where = name
    checks = check_trainer(cls, data, params, seed, steps, device, import_path)
    lines = [f"check-trainer {import_path} on {where} (seed {seed}, {steps} steps a chunk, "
             f"{device})"]
    lines += [f"{'PASS' if c.passed else 'FAIL'}  {c.name:<10}  {c.detail}" for c in checks]
    lines.append(summary(cls, checks))
    return lines, all(c.passed for c in checks)
