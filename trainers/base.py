"""The trainer contract: everything gansweep calls on a GAN trainer, and nothing more.

Bring your own GAN by writing a class with the members of `GANTrainer` below; name it in a sweep
spec by import path (`trainer: my_pkg.my_module:MyTrainer`) or register a short name under the
entry-point group `gansweep.trainers`. Check it before a sweep with
`gansweep check-trainer my_pkg.my_module:MyTrainer`. `mlp_gan`, `dcgan` and `synthetic` are
written against this contract and are examples of it.

How gansweep drives a trainer, on a Ray actor, for one trial:

    seed python, numpy and torch with the trial's seed
    trainer = MyTrainer(config, data, seed, device)    # config: a MyTrainer.Config
    [trainer.load_state_dict(state)]                   # a resumed trial: its last checkpoint
    until trainer.step reaches the trial's steps:
        trainer.train_for(n)            -> {"train/...": float}, logged every `log_every` steps
        trainer.evaluate()              -> Evaluation, every `eval_every` steps: metrics logged,
                                           the objective reported to Optuna, samples scored
        trainer.state_dict()            -> the checkpoint, with python/numpy/torch RNG states
    trainer.generator()                 -> logged as the trial's MLflow model (promote loads it)

In a population-based training sweep (`scheduler: {name: pbt}`, for a trainer that declares
MUTABLE), a member moves on to new hyperparameters from a checkpoint:

    trainer = MyTrainer(old_config, data, seed, device)  # the config the checkpoint was written
    trainer.load_state_dict(state)                       # with; for an exploited member, the
    trainer.reconfigure(new_config)                      # checkpoint is another member's
    ... and on as above, from trainer.step

The Config convention: `Config` is a frozen dataclass. Each field is a parameter a spec may fix
or search (int, float, str or bool), with a default (a known-good baseline) and a docstring;
`__post_init__` raises ValueError naming the field for a bad value (`trainers.params.check`).
gansweep builds it with `build_config`, so specs get the same checks and one-line errors as for
the built-in trainers, before anything is created.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from torch import Tensor, nn

from trainers.params import config_from_params

DATA_KINDS = ("mixture", "image", "none", "custom", "any")
"""What a trainer trains on (its DATA_KIND):
mixture  a `trainers.Mixture` (ring8, grid25, or a dataset callable returning one)
image    a `trainers.ImageTask`: .train (N, C, S, S) uint8, .train_labels (N,) int64 or None,
         .channels, .size, .n_classes, .n_eval (images to return per evaluation)
none     None (a trainer that needs no data)
custom   whatever a plug-in dataset callable returns, passed through untouched
any      any of the above"""

NAMESPACES = ("train/", "eval/", "model/", "perf/")
"""Metric names start with one of these; `train_for` returns train/ (and perf/) metrics,
`evaluate` eval/ (and model/) ones."""


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` returns.

    metrics  {name: float} logged as they are, e.g. {"eval/my_score": 0.3, "model/g_params": 1e5}
    samples  generated data, CPU float32, for gansweep to score: points (n, 2) on mixture data
             (PacGAN modes / high quality / reverse KL / score and a scatter plot; the protocol
             uses 2,500 points) or images (n, C, S, S) in [-1, 1] on image data (FD in the
             dataset's classifier features, class coverage and KL, FID with a user extractor,
             and an 8x8 grid of the first 64); return `data.n_eval` images. None: nothing scored.
    image    a PNG of your own for the run's image slider; None: the plot or grid from samples
    A trainer's own metric wins over a scored one of the same name.
    """

    metrics: Mapping[str, float] = field(default_factory=dict)
    samples: Tensor | None = None
    image: bytes | None = None


@runtime_checkable
class GANTrainer(Protocol):
    """A stateful GAN trainer without I/O: it returns metrics, never writes or prints them."""

    Config: ClassVar[type]
    """A frozen dataclass of the trainer's parameters (see the module docstring)."""

    DATA_KIND: ClassVar[str]
    """One of DATA_KINDS: the data it trains on; a spec pairing it with other data is refused."""

    METRICS: ClassVar[tuple[str, ...]]
    """Optional: the eval/ metrics `evaluate` returns itself (not those gansweep scores from its
    samples, `trainers.scoring.scored_metrics`). Declared, a spec whose objective is neither is
    refused before a sweep starts, and check-trainer checks that `evaluate` returns each; left
    out, the objective is only found missing once the first trial evaluates."""

    MUTABLE: ClassVar[tuple[str, ...]]
    """Optional (population-based training, `scheduler: {name: pbt}`): the Config fields
    `reconfigure` can change mid-run (learning rates, Adam betas, loss weights, d_steps, ...;
    never the architecture). Left out (or empty), the trainer cannot be used in a PBT sweep."""

    step: int
    """Generator steps trained so far: 0 when built, advanced by `train_for`, restored by
    `load_state_dict`. gansweep stops the trial when it reaches the trial's `budget.steps`."""

    def __init__(self, config: Any, data: Any, seed: int, device: str = "cpu") -> None:
        """Build models and optimizers from `config` (an instance of Config) for `data` (see
        DATA_KINDS). Same config, data and seed must give the same run: draw every random
        number from `seed` (gansweep also seeds the global RNGs with it). `device` is "cuda" on
        an actor Ray gave a GPU (CUDA_VISIBLE_DEVICES is set), else "cpu"."""

    @property
    def z_dim(self) -> int:
        """The noise width `generator()` takes: it is fed torch.randn(n, z_dim)."""

    def train_for(self, n: int) -> dict[str, float]:
        """Train n more generator steps (fewer only if training must stop, e.g. it diverged) and
        return their metrics, names under train/ (perf/ for speed), e.g. the mean
        train/d_loss and train/g_loss over the n steps. A NaN or inf train/ metric ends the
        trial as diverged. Optional, read by gansweep's GAN-health rules: train/d_real_acc and
        train/d_fake_acc, the share of real (fake) samples D scores as real (fake); both near 1
        for several evaluations while train/g_loss climbs prunes the trial (D wins)."""

    def evaluate(self) -> Evaluation:
        """Evaluate the current generator (its EMA, if it keeps one): an `Evaluation` (a plain
        {name: float} dict is read as Evaluation(metrics=...)). Best left without effect on
        training (eval mode inside, train mode restored, no draw from a training RNG), so that a
        run does not depend on how often it is evaluated. Samples made from
        `trainers.noise.eval_noise(n, self.z_dim)`, the sweep's shared noise bank, make grids
        that compare across steps and across trials."""

    def generator(self) -> nn.Module | None:
        """A CPU copy of the generator in eval mode, z (n, z_dim) float32 -> samples (n, ...),
        exportable with torch.export (dynamic batch): gansweep logs it as the trial's MLflow
        model and `promote` registers it. None when there is nothing to export."""

    def state_dict(self) -> dict:
        """Everything needed to resume bitwise (models, optimizers, EMA, step, private RNG
        states), loadable with torch.load(..., weights_only=True): tensors, numbers, strings,
        and lists / tuples / dicts of them. gansweep adds the global RNG states itself."""

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict()` into a trainer built with the same config, data and seed: the
        next `train_for` must then return exactly what it would have without the round trip."""

    def reconfigure(self, config: Any) -> None:
        """Optional, with MUTABLE: train from the next step on with `config` (an instance of
        Config that differs from the current one only in MUTABLE fields; anything else:
        ValueError naming the field). Models, optimizer moments, step and RNG states are kept.
        Afterwards state_dict() records the new config, so a trainer built with `config` loads
        it (load_state_dict), and `evaluate` is unaffected. check-trainer checks that the next
        `train_for` of such a reloaded copy is bitwise the reconfigured trainer's."""


def build_config(trainer_cls: type, params: Mapping[str, Any], name: str = "") -> Any:
    """`trainer_cls.Config` from a flat params dict: unknown keys, uncastable values and the
    Config's own checks raise ValueError naming the field."""
    return config_from_params(trainer_cls.Config, dict(params), name or trainer_cls.__name__)


def accepts(trainer_cls: type, kind: str) -> bool:
    """Whether trainer class `trainer_cls` trains on data of `kind` (one of DATA_KINDS)."""
    return trainer_cls.DATA_KIND in ("any", kind)


def as_evaluation(result: Any) -> Evaluation:
    """What `evaluate` returned, as an Evaluation (a plain dict is its metrics)."""
    if isinstance(result, Evaluation):
        return result
    if isinstance(result, Mapping):
        return Evaluation(metrics=result)
    raise TypeError(f"evaluate() must return an Evaluation or a dict of metrics, got "
                    f"{type(result).__name__}")


def declared_metrics(trainer_cls: type) -> tuple[str, ...] | None:
    """The eval/ metrics a trainer class says `evaluate` returns itself; None when it does not
    say (a plug-in without METRICS)."""
    declared = getattr(trainer_cls, "METRICS", None)
    return None if declared is None else tuple(declared)


def contract_problems(obj: Any) -> list[str]:
    """Why `obj` is not a trainer class under this contract (empty when it is)."""
    if not inspect.isclass(obj):
        return [f"not a class but a {type(obj).__name__}"]
    problems = []
    config = getattr(obj, "Config", None)
    if not (inspect.isclass(config) and dataclasses.is_dataclass(config)):
        problems.append("Config must be a dataclass of its parameters")
    if getattr(obj, "DATA_KIND", None) not in DATA_KINDS:
        problems.append(f"DATA_KIND must be one of {', '.join(DATA_KINDS)}, got "
                        f"{getattr(obj, 'DATA_KIND', None)!r}")
    declared = getattr(obj, "METRICS", None)
    if declared is not None and not (isinstance(declared, (tuple, list)) and all(
            isinstance(m, str) and m.startswith("eval/") for m in declared)):
        problems.append(f"METRICS must be a tuple of eval/ metric names, got "
                        f"{reprlib.repr(declared)}")
    missing = [m for m in ("train_for", "evaluate", "generator", "state_dict", "load_state_dict")
               if not callable(getattr(obj, m, None))]
    if missing:
        problems.append(f"missing method(s) {', '.join(missing)}")
    return problems + _mutable_problems(obj)


def _mutable_problems(obj: type) -> list[str]:
    """What is wrong with a trainer class's MUTABLE (none when it declares none): it must be a
    tuple of its Config's field names, and come with a callable `reconfigure`."""
    declared = getattr(obj, "MUTABLE", None)
    if declared is None:
        return []
    if not (isinstance(declared, (tuple, list)) and all(isinstance(m, str) for m in declared)):
        return [f"MUTABLE must be a tuple of Config field names, got {reprlib.repr(declared)}"]
    problems = []
    config = getattr(obj, "Config", None)
    if inspect.isclass(config) and dataclasses.is_dataclass(config):
        fields = {f.name for f in dataclasses.fields(config)}
        unknown = [m for m in declared if m not in fields]
        if unknown:
            problems.append(f"MUTABLE names {', '.join(map(repr, unknown))}, not field(s) of "
                            f"Config")
    if declared and not callable(getattr(obj, "reconfigure", None)):
        problems.append("MUTABLE is declared but reconfigure(config) is missing")
    return problems


def mutable_params(trainer_cls: type) -> tuple[str, ...] | None:
    """The Config fields a trainer class can change mid-run (population-based training): its
    MUTABLE, when it declares some and has `reconfigure`; None when it does not support PBT."""
    declared = getattr(trainer_cls, "MUTABLE", None)
    if not declared or not callable(getattr(trainer_cls, "reconfigure", None)):
        return None
    return tuple(declared)


def bad_metrics(metrics: Mapping[str, Any], namespaces: tuple[str, ...]) -> list[str]:
    """Metric entries that break the naming or value rules: a name outside `namespaces`, or a
    value that is not a finite number."""
    bad = []
    for key, value in metrics.items():
        if not isinstance(key, str) or not key.startswith(namespaces):
            bad.append(f"{key!r} is not under {'/'.join(n.rstrip('/') for n in namespaces)}/")
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            bad.append(f"{key} is a {type(value).__name__}, not a float")
        elif not math.isfinite(value):
            bad.append(f"{key} is {value}")
    return bad
