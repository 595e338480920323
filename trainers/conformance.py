"""Does a trainer keep the contract (trainers/base.py)? What `gansweep check-trainer` runs.

It drives the trainer exactly as a gansweep actor does, in this process and in seconds: build,
train a chunk, evaluate and score, checkpoint through torch.save / torch.load(weights_only=True),
train a second chunk, then resume a fresh trainer from the checkpoint and check that its second
chunk is bitwise the same; finally export the generator with torch.export (as the MLflow model
is logged) and run it on noise. A trainer that declares MUTABLE (population-based training) is
also reconfigured mid-run, and a trainer built with the new config must resume its checkpoint
bitwise. Each check is one PASS / FAIL line with its reason; a failed prerequisite stops the
checks that need it.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainers.base import (
    accepts,
    as_evaluation,
    bad_metrics,
    build_config,
    contract_problems,
    declared_metrics,
    mutable_params,
)
from trainers.params import describe, first_line
from trainers.rng import process_rng_state, seed_everything, set_process_rng_state
from trainers.scoring import data_kind, sample_shape, score

N_NOISE = 16  # the batch the generator is exported with, as gansweep logs it
CHECKS = ("contract", "config", "data", "build", "train", "evaluate", "checkpoint", "resume",
          "generator")
PBT_CHECK = "pbt"  # run after CHECKS for a trainer that declares MUTABLE


class Failed(Exception):
    """A check that did not pass; the message is its reason."""


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def check_trainer(cls: Any, data: Any, params: dict | None = None, seed: int = 0,
                  steps: int = 3, device: str = "cpu", name: str = "") -> list[Check]:
    """Run every check of trainer class `cls` on `data` (as the sweep's actors get it)."""
    run = _Run(cls, data, dict(params or {}), seed, steps, device, name or cls.__name__)
    checks: list[Check] = []
    for check_name, step in run.steps():
        try:
            checks.append(Check(check_name, True, step()))
        except Failed as exc:
            checks.append(Check(check_name, False, str(exc)))
            if check_name in run.REQUIRED:
                break
        except Exception as exc:  # the trainer raised: that is the reason
            checks.append(Check(check_name, False, f"raised {describe(exc)}"))
            if check_name in run.REQUIRED:
                break
    return checks


def checks_of(cls: Any) -> tuple[str, ...]:
    """The checks `check_trainer` runs on `cls` when none fails: CHECKS, then PBT_CHECK for a
    trainer that supports population-based training."""
    return CHECKS + ((PBT_CHECK,) if mutable_params(cls) else ())


def summary(cls: Any, checks: list[Check]) -> str:
    """The report's last line: how many checks passed and failed, whether some did not run,
    and that PBT is not checked for a trainer without MUTABLE."""
    failed = sum(not c.passed for c in checks)
    line = f"{len(checks) - failed} passed, {failed} failed"
    if len(checks) != len(checks_of(cls)):
        line += "; the checks after need the one that failed"
    if inspect.isclass(cls) and not mutable_params(cls):
        line += "; pbt: not supported (no MUTABLE)"
    return line


def changed_config(config: Any, fields: Iterable[str]) -> tuple[Any, tuple[str, ...]]:
    """`config` with each of `fields` moved to another value its Config accepts (a number x1.25,
    x0.8, +-0.5 or +-1, a bool flipped), and the fields moved; a field with no such value (a
    string, or every try refused) stays as it is."""
    moved = []
    for name in fields:
        value = getattr(config, name)
        for candidate in _other_values(value):
            try:
                config = dataclasses.replace(config, **{name: candidate})
            except Exception:  # the Config's own checks refuse it: try the next
                continue
            moved.append(name)
            break
    return config, tuple(moved)


def _other_values(value: Any) -> tuple:
    """Values to try in place of `value`, nearest first."""
    if isinstance(value, bool):
        return (not value,)
    if isinstance(value, numbers.Integral):
        return (value + 1, value - 1)
    if isinstance(value, numbers.Real):
        return tuple(v for v in (value * 1.25, value * 0.8, value + 0.5, value - 0.5)
                     if v != value)
    return ()


class _Run:
    """The state shared by the checks of one trainer, in the order they run."""

    REQUIRED = ("contract", "config", "data", "build", "train", "checkpoint")

    def __init__(self, cls, data, params, seed, steps, device, name):
        self.cls, self.data, self.params, self.seed = cls, data, params, seed
        self.steps_per_chunk, self.device, self.name = steps, device, name

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        runs = (self.contract, self.config, self.data_kind, self.build, self.train,
                self.evaluate, self.checkpoint, self.resume, self.generator, self.pbt)
        names = checks_of(self.cls)
        return list(zip(names, runs[:len(names)], strict=True))

    def contract(self) -> str:
        problems = contract_problems(self.cls)
        if problems:
            raise Failed("; ".join(problems))
        return f"Config, DATA_KIND {self.cls.DATA_KIND!r} and the methods are there"

    def config(self) -> str:
        try:
            self.cfg = build_config(self.cls, self.params, self.name)
        except Exception as exc:
            raise Failed(f"{describe(exc)}") from None
        return f"{type(self.cfg).__name__} from {len(self.params)} param(s)"

    def data_kind(self) -> str:
        kind = data_kind(self.data)
        if not accepts(self.cls, kind):
            raise Failed(f"trains on {self.cls.DATA_KIND} data, given {kind} data "
                         f"({type(self.data).__name__})")
        return f"{kind} data ({type(self.data).__name__})"

    def build(self) -> str:
        self.trainer = self._new()
        z_dim = self.trainer.z_dim
        if isinstance(z_dim, bool) or not isinstance(z_dim, numbers.Integral) or z_dim < 0:
            raise Failed(f"z_dim must be an int >= 0, got {z_dim!r}")
        if self.trainer.step != 0:
            raise Failed(f"step must start at 0, got {self.trainer.step!r}")
        return f"on {self.device}, z_dim {z_dim}"

    def train(self) -> str:
        metrics = self.trainer.train_for(self.steps_per_chunk)
        if not isinstance(metrics, dict):
            raise Failed(f"train_for must return a dict of metrics, got {type(metrics).__name__}")
        problems = bad_metrics(metrics, ("train/", "perf/"))
        if problems:
            raise Failed("; ".join(problems))
        if not any(key.startswith("train/") for key in metrics):
            raise Failed("no train/ metric (e.g. train/d_loss and train/g_loss)")
        if self.trainer.step != self.steps_per_chunk:
            raise Failed(f"step is {self.trainer.step} after train_for({self.steps_per_chunk}) "
                         f"from 0")
        return ", ".join(sorted(metrics))

    def evaluate(self) -> str:
        evaluation = as_evaluation(self.trainer.evaluate())
        problems = bad_metrics(evaluation.metrics, ("eval/", "model/"))  # before scoring casts
        if problems:
            raise Failed("; ".join(problems))
        try:
            scored = score(evaluation, self.data)
        except ValueError as exc:
            raise Failed(str(exc)) from None
        problems = bad_metrics(scored.metrics, ("eval/", "model/"))
        if problems:
            raise Failed("; ".join(problems))
        if not any(key.startswith("eval/") for key in scored.metrics):
            raise Failed("no eval/ metric: a sweep would have no objective to read")
        missing = [m for m in declared_metrics(self.cls) or () if m not in evaluation.metrics]
        if missing:
            raise Failed(f"{', '.join(missing)} declared in METRICS but not returned by "
                         f"evaluate()")
        picture = "" if scored.image is None else ", and an image"
        return f"{', '.join(sorted(scored.metrics))}{picture}"

    def checkpoint(self) -> str:
        buffer = io.BytesIO()
        torch.save(self.trainer.state_dict(), buffer)
        try:
            self.saved = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
        except Exception as exc:
            raise Failed(f"state_dict() does not load with torch.load(weights_only=True): "
                         f"{first_line(exc)}") from None
        self.saved_rng, self.saved_step = process_rng_state(), self.trainer.step
        return f"{len(buffer.getvalue()):,} bytes, loads with weights_only=True"

    def resume(self) -> str:
        """The second chunk, straight on and after a round trip, as a resumed actor runs it."""
        straight = self._chunk(self.trainer)
        resumed = self._new()
        resumed.load_state_dict(self.saved)
        set_process_rng_state(self.saved_rng)
        if resumed.step != self.saved_step:
            raise Failed(f"step is {resumed.step} after load_state_dict, saved at "
                         f"{self.saved_step}")
        again = self._chunk(resumed)
        differ = [key for key in sorted(set(straight) | set(again))
                  if not _same(straight.get(key), again.get(key))]
        if differ:
            key = differ[0]
            raise Failed(f"the chunk after a state_dict round trip differs: {key} "
                         f"{straight.get(key)!r} straight on, {again.get(key)!r} resumed "
                         f"(an RNG or optimizer state not saved or not restored?)")
        if not _same_tree(self.trainer.state_dict(), resumed.state_dict()):
            raise Failed("metrics match but state_dict() differs after the chunk")
        return f"bitwise the same {len(straight)} metrics and state at step {resumed.step}"

    def generator(self) -> str:
        g = self.trainer.generator()
        if g is None:
            return "None: nothing to log or promote"
        if not isinstance(g, nn.Module):
            raise Failed(f"generator() must return an nn.Module or None, got {type(g).__name__}")
        z_dim = self.trainer.z_dim
        noise = torch.Generator().manual_seed(0)
        z = torch.randn(N_NOISE, z_dim, generator=noise)
        try:
            with torch.no_grad():
                out = g(z)
        except Exception as exc:
            raise Failed(f"generator(torch.randn({N_NOISE}, z_dim={z_dim})) raised "
                         f"{describe(exc)}") from None
        if not isinstance(out, torch.Tensor) or out.dim() < 2 or len(out) != N_NOISE:
            raise Failed(f"generator must map noise ({N_NOISE}, {z_dim}) to samples "
                         f"({N_NOISE}, ...), got {_shape(out)}")
        expected = sample_shape(self.data)
        if expected is not None and tuple(out.shape[1:]) != expected:
            raise Failed(f"generator samples are {tuple(out.shape[1:])} each, the data's are "
                         f"{expected}")
        if not torch.isfinite(out).all():
            raise Failed("generator output is not finite")
        try:
            exported = torch.export.export(g, (z,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
            z7 = torch.randn(7, z_dim, generator=noise)
            with torch.no_grad():
                same = torch.allclose(exported.module()(z7), g(z7), atol=1e-5, rtol=1e-4)
        except Exception as exc:
            raise Failed(f"torch.export (how gansweep logs the model) failed: "
                         f"{describe(exc)}") from None
        if not same:
            raise Failed("the exported generator gives other samples than the module")
        return f"noise ({N_NOISE}, {z_dim}) -> {tuple(out.shape)}; torch.export with any batch"

    def pbt(self) -> str:
        """A PBT member's move: train, reconfigure every MUTABLE field, checkpoint; a trainer
        built with the new config loads the checkpoint and trains on bitwise as the original."""
        mutable = mutable_params(self.cls)
        new, moved = changed_config(self.cfg, mutable)
        original = self._new()
        original.train_for(self.steps_per_chunk)
        fixed = self._refuses_a_fixed_change(original, mutable)
        original.reconfigure(new)
        state = _round_trip(original.state_dict())
        saved_rng = process_rng_state()
        straight = self._chunk(original)
        stale = _stale_config(state, new)
        if stale:
            raise Failed(f"state_dict()['config'] after reconfigure has {stale}: the checkpoint "
                         f"does not record the new config")
        rebuilt = self._new(new)
        try:
            rebuilt.load_state_dict(state)
        except Exception as exc:
            raise Failed(f"a trainer built with the reconfigured config does not load "
                         f"state_dict(): {describe(exc)}") from None
        set_process_rng_state(saved_rng)
        again = self._chunk(rebuilt)
        differ = [key for key in sorted(set(straight) | set(again))
                  if not _same(straight.get(key), again.get(key))]
        if differ or not _same_tree(original.state_dict(), rebuilt.state_dict()):
            what = (f"{differ[0]} {straight.get(differ[0])!r} reconfigured, "
                    f"{again.get(differ[0])!r} rebuilt" if differ else "state_dict()")
            raise Failed(f"after reconfigure, a trainer built with the new config and loaded "
                         f"trains on differently: {what} (a new value reconfigure does not "
                         f"apply?)")
        kept = [m for m in mutable if m not in moved]
        untried = f" (no other valid value for {', '.join(kept)})" if kept else ""
        return (f"reconfigured {', '.join(moved) or 'nothing'}{untried}{fixed}; a trainer built "
                f"with the new config resumes bitwise at step {rebuilt.step}")

    def _refuses_a_fixed_change(self, trainer, mutable: tuple[str, ...]) -> str:
        """reconfigure must refuse a change of a field outside MUTABLE (the first one its
        Config lets change) with a ValueError naming it; the report's words for the check."""
        fixed = [f.name for f in dataclasses.fields(self.cfg) if f.name not in mutable]
        for name in fixed:
            changed, moved = changed_config(self.cfg, [name])
            if moved:
                break
        else:
            return ""
        try:
            trainer.reconfigure(changed)
        except ValueError as exc:
            if name not in str(exc):
                raise Failed(f"reconfigure refused a change of {name} (not in MUTABLE) with a "
                             f"ValueError that does not name it: {first_line(exc)}") from None
            return f"; refuses {name}"
        raise Failed(f"reconfigure accepted a change of {name}, which is not in MUTABLE "
                     f"(it must raise ValueError naming the field)")

    # -- helpers -------------------------------------------------------------------------------
    def _new(self, config: Any = None):
        seed_everything(self.seed)  # as the actor does before it builds a trainer
        return self.cls(self.cfg if config is None else config, self.data, self.seed,
                        self.device)

    def _score(self, trainer):
        return score(as_evaluation(trainer.evaluate()), self.data)

    def _chunk(self, trainer) -> dict[str, float]:
        metrics = trainer.train_for(self.steps_per_chunk)
        metrics = {k: v for k, v in metrics.items() if not k.startswith("perf/")}
        return {**metrics, **self._score(trainer).metrics}


def _round_trip(state: dict) -> dict:
    """`state` through torch.save and torch.load(weights_only=True), as a checkpoint goes."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


def _stale_config(state: Any, config: Any) -> str:
    """The first field where a state's "config" (written as dataclasses.asdict of the config,
    as trainers.params.state_header does) is not `config`'s, as `name old (not new)`; empty
    when they agree or the state records its config some other way."""
    written = state.get("config") if isinstance(state, dict) else None
    expected = dataclasses.asdict(config)
    if not isinstance(written, dict) or written.keys() != expected.keys():
        return ""
    differ = [k for k in expected if not _same(written[k], expected[k])]
    return f"{differ[0]} {written[differ[0]]!r} (not {expected[differ[0]]!r})" if differ else ""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _same_tree(a: Any, b: Any) -> bool:
    """Two state dicts hold the same values, tensors compared bitwise."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
    return _same(a, b)


def _shape(out: Any) -> str:
    return str(tuple(out.shape)) if isinstance(out, torch.Tensor) else type(out).__name__
