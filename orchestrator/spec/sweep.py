"""The sweep spec: a YAML file validated once into frozen dataclasses.

Every problem is reported as one line naming the file and the field
(`ring8.yaml: space.lr_g.low: must be > 0 with log: true`); after `SweepSpec.load` the rest of
the code trusts the spec.
"""

from __future__ import annotations

import dataclasses
import math
import re
import reprlib
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import FieldError, SpecError
from orchestrator.spec.fields import int_field as _int
from orchestrator.spec.health import HealthSpec, parse_health
from orchestrator.spec.population import PopulationSpec, check_sweep, parse_scheduler
from orchestrator.spec.search import (
    Objective,
    PrunerSpec,
    SamplerSpec,
    parse_duration,
    parse_enqueue,
    parse_objectives,
    parse_pruner,
    parse_sampler,
)
from orchestrator.spec.space import Param, parse_space
from orchestrator.stores.redact import ROOT_SECRET, redact_uri

TOP_FIELDS = ("name", "experiment", "dataset", "trainer", "objective", "objectives", "budget",
              "sampler", "pruner", "scheduler", "health", "enqueue", "resources", "storage",
              "max_retries", "fixed", "space")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # fullmatch: no trailing newline
EVALUATED = ("eval/", "model/", "perf/")  # what a chunk's evaluation returns (actor/worker.py)
MAX_NAME = 100  # a checkpoint folder and MLflow names are built from it
MAX_SPEC_BYTES = 1 << 20  # the largest shipped spec is 3 KiB
MAX_DEPTH = 16  # YAML nesting: a spec needs 4 (space.p.when.q)


@dataclass(frozen=True)
class Confirm:
    """`budget.confirm`: once the search ends, its top `top` completed configs are retrained on
    `seeds` fresh seeds each (orchestrator/driver/confirm.py), so that `promote` picks a config
    by a bound over seeds, not one lucky run."""

    top: int = 3
    seeds: int = 3  # at least 2: the bound needs a spread


@dataclass(frozen=True)
class Budget:
    trials: int
    steps: int
    eval_every: int
    log_every: int
    eval_samples: int = 1000  # generated images per eval (image datasets)
    time_s: float | None = None  # past this, no new trial starts
    chunk_timeout_s: float | None = None  # a chunk out longer is hung; None: from its pace
    eval_scale: int = 1  # samples per eval x this (not in spec files: `gansweep confirm` sets 4)
    confirm: Confirm | None = None  # the confirm phase after the search; None: none


@dataclass(frozen=True)
class Resources:
    gpus_per_trial: float = 1.0
    cpus_per_trial: float = 1.0
    actors: int | None = None  # a fixed pool (the autoscaler adds nodes); None: what fits now


@dataclass(frozen=True)
class Storage:
    checkpoints: str | None = None  # a pyarrow.fs URI; None: --checkpoint-root or ./checkpoints
    keep_checkpoints: int = 2  # newest checkpoints kept per trial


@dataclass(frozen=True)
class SweepSpec:
    path: str
    name: str
    experiment: str
    dataset: str  # as the spec says it
    trainer: str  # as the spec says it
    objectives: tuple[Objective, ...]
    budget: Budget
    sampler: SamplerSpec
    pruner: PrunerSpec
    resources: Resources
    fixed: dict[str, Any]
    space: tuple[Param, ...]
    enqueue: tuple[dict[str, Any], ...] = ()
    storage: Storage = Storage()
    max_retries: int = 2  # a trial whose actor dies resumes this many times, then FAILs
    health: HealthSpec = HealthSpec()  # the GAN-health pruning rules (on by default)
    scheduler: PopulationSpec | None = None  # population-based training; None: trials on their own
    text: str = field(repr=False, default="")
    trainer_target: str = ""  # what `trainer` resolves to: a built-in name or module:Class
    dataset_target: str = ""  # what `dataset` resolves to: a built-in name, a file or module:fn

    @property
    def objective(self) -> Objective:
        """The objective of a single-objective sweep (the first of several otherwise)."""
        return self.objectives[0]

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @classmethod
    def load(cls, path: str | Path) -> SweepSpec:
        path = Path(path)
        try:
            text = _read_spec(path)
        except UnicodeDecodeError as exc:
            raise SpecError(f"{path}: not UTF-8 text (byte {exc.start}): a spec is a YAML "
                            f"text file") from None
        except FileNotFoundError:
            raise SpecError(f"{path}: no such file") from None
        except OSError as exc:
            raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
        return cls.parse(text, source=path.name, path=str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<spec>", path: str = "") -> SweepSpec:
        """Validate spec `text`; plug-ins import from the current folder, the spec's folder and
        installed packages."""
        plugin_folders([Path.cwd()] + ([Path(path).resolve().parent] if path else []))
        try:
            raw = load_yaml(text)
        except FieldError as exc:
            raise SpecError(f"{source}: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else "yaml"
            raise SpecError(f"{source}: {where}: not valid YAML") from None
        try:
            return _build(raw, text, path)
        except FieldError as exc:
            raise SpecError(f"{source}: {exc}") from None

    def with_trials(self, trials: int | None) -> SweepSpec:
        """Apply `--trials` (the sweep's total trial budget)."""
        if trials is None:
            return self
        if trials < 1:
            raise SpecError(f"--trials: must be >= 1, got {trials}")
        if self.scheduler is not None and trials != self.scheduler.population:
            raise SpecError(f"--trials: a pbt sweep trains scheduler.population "
                            f"({self.scheduler.population}) members")
        return dataclasses.replace(self, budget=dataclasses.replace(self.budget, trials=trials))


def _read_spec(path: Path) -> str:
    """A spec file's text: a regular file (a FIFO or a device would block or never end) of at
    most MAX_SPEC_BYTES."""
    mode = path.stat().st_mode  # FileNotFoundError, PermissionError: as reading them
    if not stat.S_ISREG(mode):
        raise SpecError(f"{path}: not a regular file: a spec is a YAML text file")
    with path.open("rb") as f:
        data = f.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: larger than {MAX_SPEC_BYTES >> 20} MiB: a spec is a short "
                        f"YAML file")
    return data.decode("utf-8")


class _StrictLoader(yaml.SafeLoader):
    """YAML with no duplicate keys (the last one silently won) and no list or mapping as a key."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise FieldError("yaml", f"line {key_node.start_mark.line + 1}: a key must be a "
                                         f"name, not a list or a mapping")
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise FieldError(str(key), f"line {key_node.start_mark.line + 1}: the key "
                                           f"appears twice")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _experiment(value: Any, name: str) -> str:
    """The MLflow experiment: a short string, the sweep's name by default."""
    if value is None:
        return name
    if not isinstance(value, str) or not value.strip():
        raise FieldError("experiment", f"must be a non-empty string, got {reprlib.repr(value)}")
    if len(value) > 2 * MAX_NAME:
        raise FieldError("experiment", f"at most {2 * MAX_NAME} characters, got {len(value)}")
    return value


def load_yaml(text: str) -> Any:
    """A spec's YAML, refusing anchors and aliases before anything is built: `*alias` expands
    in place, and a few lines of nested aliases (a "billion laughs") expand to gigabytes."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            line = event.start_mark.line + 1
            raise FieldError("yaml", f"line {line}: anchors and aliases (&, *) are not "
                                     f"allowed in a spec; write the values out")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:  # the composer recurses per level
                raise FieldError("yaml", f"line {event.start_mark.line + 1}: nested more than "
                                         f"{MAX_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def _build(raw: Any, text: str, path: str) -> SweepSpec:
    if not isinstance(raw, dict):
        raise FieldError("spec", "must be a YAML mapping")
    unknown = sorted(set(raw) - set(TOP_FIELDS))
    if unknown:
        raise FieldError(unknown[0], f"unknown field (known: {', '.join(TOP_FIELDS)})")
    name = _require(raw, "name", str)
    if not NAME_RE.fullmatch(name):
        raise FieldError("name", "use letters, digits, '.', '_' and '-' only")
    if len(name) > MAX_NAME:
        raise FieldError("name", f"at most {MAX_NAME} characters, got {len(name)}")
    trainer_name, dataset = _require(raw, "trainer", str), _require(raw, "dataset", str)
    trainer_target, dataset_target, trainer_cls, kind = _resolve(trainer_name, dataset)
    space = parse_space(raw.get("space"))
    fixed = _section(raw, "fixed")
    _check_params(trainer_name, trainer_cls, fixed, space)
    objectives = parse_objectives(raw)
    _check_objectives(raw, objectives, trainer_name, trainer_cls, kind)
    scheduler = parse_scheduler(raw.get("scheduler"), space, fixed, trainer_name, trainer_cls,
                                len(objectives))
    budget = _budget(_section(raw, "budget"), None if scheduler is None else scheduler.population)
    if scheduler is not None:
        check_sweep(scheduler, budget, parse_pruner(raw.get("pruner"), len(objectives)))
    if budget.confirm is not None and len(objectives) > 1:
        raise FieldError("budget.confirm", f"a sweep with {len(objectives)} objectives has no "
                                           f"single ranking of configs to confirm")
    return SweepSpec(
        path=path,
        name=name,
        experiment=_experiment(raw.get("experiment"), name),
        dataset=dataset,
        trainer=trainer_name,
        objectives=objectives,
        budget=budget,
        sampler=parse_sampler(_section(raw, "sampler"), space, len(objectives)),
        pruner=_pruner(raw.get("pruner"), budget.steps, len(objectives)),
        resources=_resources(_section(raw, "resources")),
        fixed=dict(fixed),
        space=space,
        enqueue=parse_enqueue(raw.get("enqueue"), space),
        storage=_storage(_section(raw, "storage")),
        max_retries=_int("", raw, "max_retries", 2, 0),
        health=parse_health(raw.get("health")),
        scheduler=scheduler,
        text=text,
        trainer_target=trainer_target,
        dataset_target=dataset_target,
    )


def _pruner(raw: Any, steps: int, n_objectives: int) -> PrunerSpec:
    spec = parse_pruner(raw, n_objectives)
    if spec.name != "none":
        from orchestrator.spec.pruners import check_pruner  # Optuna: only for a pruner to check

        check_pruner(spec, steps)
    return spec


def plugin_folders(folders: list[Path]) -> None:
    """Make plug-in modules in these folders importable here (the driver), after installed
    packages so that they never shadow one; orchestrator/cluster/plugins.py ships them to the
    actors."""
    for folder in folders:
        if str(folder) not in sys.path:
            sys.path.append(str(folder))


def _resolve(trainer_name: str, dataset: str) -> tuple[str, str, type, str | None]:
    """The trainer's and the dataset's targets, the trainer class and the data's kind (None for
    a plug-in dataset: known once it is loaded); a plug-in is imported."""
    from trainers.base import accepts
    from trainers.image_data import IMAGE_PREFIXES
    from trainers.registry import (  # torch import: only once a spec is read
        PluginError,
        dataset_kind,
        dataset_loader,
        dataset_target,
        is_plugin,
        trainer_class,
        trainer_target,
    )

    try:
        trainer = trainer_target(trainer_name)
        trainer_cls = trainer_class(trainer)
    except PluginError as exc:
        raise FieldError("trainer", str(exc)) from None
    try:
        target = dataset_target(dataset)
        kind = dataset_kind(target)
        if is_plugin(target):
            dataset_loader(target)  # imported and callable; called once the stores are checked
    except PluginError as exc:
        raise FieldError("dataset", str(exc)) from None
    if target.startswith(IMAGE_PREFIXES):  # parquet:PATH, folder:PATH, idx:PATH
        path = Path(target.split(":", 1)[1]).expanduser()
        if not path.exists():
            raise FieldError("dataset", f"{path}: no such file")
    if kind is not None and not accepts(trainer_cls, kind):  # a plug-in's: once it is loaded
        raise FieldError("dataset", f"trainer {trainer_name} trains on {trainer_cls.DATA_KIND} "
                                    f"data, and {reprlib.repr(dataset)} is {kind} data")
    _check_size(trainer_name, trainer_cls, dataset, target)
    return trainer, target, trainer_cls, kind


def _check_size(trainer_name: str, trainer_cls: type, dataset: str, target: str) -> None:
    """A trainer that says which square sides it trains on (IMAGE_SIZES, as dcgan does) gets
    data of one of them: known here for the digits and an imported Parquet file."""
    from trainers.image_data import stored_size

    sizes = getattr(trainer_cls, "IMAGE_SIZES", None)
    size = stored_size(target) if sizes else None
    if size is not None and size not in sizes:
        shown = ", ".join(map(str, sizes))
        raise FieldError("dataset", f"{dataset!r} holds {size}x{size} images, and "
                         f"trainer {trainer_name} trains on {shown} px squares: import it again "
                         f"with `gansweep data import ... --size N`")


def _check_objectives(raw: dict, objectives: tuple[Objective, ...], trainer_name: str,
                      trainer_cls: type, kind: str | None) -> None:
    """Each eval/ objective must be a metric the trainer reports, when it says which (METRICS):
    its own, or one gansweep scores from its samples. Otherwise every trial would train, then
    fail at its first evaluation."""
    from trainers.base import declared_metrics
    from trainers.scoring import scored_metrics

    for i, objective in enumerate(objectives):  # read from each evaluation's metrics
        if not objective.metric.startswith(EVALUATED):
            where = "objective.metric" if "objective" in raw else f"objectives[{i}].metric"
            raise FieldError(where, f"{reprlib.repr(objective.metric)} is not measured at an "
                                    f"evaluation: an objective is an eval/ metric (or model/, "
                                    f"perf/); train/ metrics are logged between evaluations")
    declared = declared_metrics(trainer_cls)
    if declared is None:  # a plug-in that does not say: found at the first evaluation
        return
    known = (*declared, *scored_metrics(kind or trainer_cls.DATA_KIND))
    for i, objective in enumerate(objectives):
        if objective.metric.startswith("eval/") and objective.metric not in known:
            where = "objective.metric" if "objective" in raw else f"objectives[{i}].metric"
            raise FieldError(where, f"trainer {trainer_name} does not report "
                             f"{reprlib.repr(objective.metric)} (it reports "
                             f"{', '.join(known) or 'no eval/ metric'})")


def _check_params(trainer_name: str, trainer_cls, fixed: dict, space: tuple[Param, ...]) -> None:
    from trainers.base import build_config
    from trainers.params import first_line

    known = {f.name for f in dataclasses.fields(trainer_cls.Config)}
    for param in space:
        if param.name not in known:
            raise FieldError(f"space.{param.name}", f"not a parameter of trainer {trainer_name} "
                                                    f"(known: {', '.join(sorted(known))})")
        if param.name in fixed:
            raise FieldError(f"fixed.{param.name}", "is also in space: fix it or search it")
    for name in fixed:
        if name not in known:
            raise FieldError(f"fixed.{name}", f"not a parameter of trainer {trainer_name} "
                                              f"(known: {', '.join(sorted(known))})")
    try:
        build_config(trainer_cls, fixed, trainer_name)
    except Exception as exc:  # a plug-in's Config may raise anything: still one line
        raise FieldError("fixed", first_line(exc)) from None
    for param in space:  # choices and range ends must be values the trainer accepts
        candidates = [("choices", c) for c in param.choices] or [("low", param.low),
                                                                 ("high", param.high)]
        for key, value in candidates:
            try:
                build_config(trainer_cls, {**fixed, param.name: value}, trainer_name)
            except Exception as exc:
                raise FieldError(f"space.{param.name}.{key}", first_line(exc)) from None


def _require(raw: dict, key: str, kind: type) -> Any:
    if key not in raw or raw[key] in (None, ""):
        raise FieldError(key, "required")
    if not isinstance(raw[key], kind):
        raise FieldError(key, f"must be a {kind.__name__}, got {reprlib.repr(raw[key])}")
    return raw[key]


def _section(raw: dict, key: str) -> dict:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise FieldError(key, "must be a mapping")
    return value


def _fields(section: str, raw: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise FieldError(f"{section}.{unknown[0]}", f"unknown field (known: {', '.join(allowed)})")


def _float(section: str, raw: dict, key: str, default: float, minimum: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        raise FieldError(f"{section}.{key}", f"must be a finite number, got "
                                             f"{reprlib.repr(value)}")
    if value < minimum:
        raise FieldError(f"{section}.{key}", f"must be >= {minimum}, got {value}")
    return float(value)


def _budget(raw: dict, trials: int | None = None) -> Budget:
    """`budget`; `trials` is budget.trials when the spec leaves it out (a pbt sweep's
    population), None when it is required."""
    _fields("budget", raw, ("trials", "steps", "eval_every", "log_every", "eval_samples", "time",
                            "chunk_timeout", "confirm"))
    trials = _int("budget", raw, "trials", trials, 1)
    steps = _int("budget", raw, "steps", None, 1)
    eval_every = _int("budget", raw, "eval_every", steps, 1)
    if eval_every > steps:
        raise FieldError("budget.eval_every", f"must be <= budget.steps ({steps})")
    log_every = _int("budget", raw, "log_every", min(50, eval_every), 1)
    if eval_every % log_every:
        raise FieldError("budget.log_every", f"must divide budget.eval_every ({eval_every})")
    return Budget(trials, steps, eval_every, log_every,
                  _int("budget", raw, "eval_samples", 1000, 10),
                  parse_duration("budget.time", raw.get("time")),
                  parse_duration("budget.chunk_timeout", raw.get("chunk_timeout")),
                  confirm=_confirm(raw.get("confirm")))


def _confirm(raw: Any) -> Confirm | None:
    """`budget.confirm: {top: K, seeds: S}` ({} takes the defaults); absent or null: none."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise FieldError("budget.confirm", f"must be a mapping like {{top: 2, seeds: 3}}, got "
                                           f"{reprlib.repr(raw)}")
    _fields("budget.confirm", raw, ("top", "seeds"))
    return Confirm(_int("budget.confirm", raw, "top", Confirm.top, 1),
                   _int("budget.confirm", raw, "seeds", Confirm.seeds, 2))


def _resources(raw: dict) -> Resources:
    _fields("resources", raw, ("gpus_per_trial", "cpus_per_trial", "actors"))
    gpus = _float("resources", raw, "gpus_per_trial", 1.0, 0.0)
    cpus = _float("resources", raw, "cpus_per_trial", 1.0, 0.0)
    if cpus <= 0:
        raise FieldError("resources.cpus_per_trial", "must be > 0")
    if gpus > 1 and gpus != int(gpus):
        raise FieldError("resources.gpus_per_trial", f"a share above 1 must be whole, got {gpus}")
    actors = _int("resources", raw, "actors", 0, 0) or None
    return Resources(gpus, cpus, actors)


def _storage(raw: dict) -> Storage:
    _fields("storage", raw, ("checkpoints", "keep_checkpoints"))
    where = raw.get("checkpoints")
    if where is not None and (not isinstance(where, str) or not where.strip()):
        raise FieldError("storage.checkpoints", f"must be a path or URI, got "
                                                f"{reprlib.repr(where)}")
    if where is not None and redact_uri(where) != where:
        raise FieldError("storage.checkpoints", f"{redact_uri(where)}: {ROOT_SECRET}")
    return Storage(where, _int("storage", raw, "keep_checkpoints", 2, 1))
