"""The Optuna study of a sweep: its storage opened, the study created or continued, per-trial
seeds, budget accounting.

The study name is the sweep name, so launching the same spec again continues the study instead
of failing. The read-only commands load it with Optuna alone (no Ray, MLflow or torch).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from orchestrator.errors import SpecError
from orchestrator.spec.pruners import build_pruner
from orchestrator.spec.sweep import SweepSpec
from orchestrator.stores.checks import cannot_open
from orchestrator.stores.redact import redact_uri
from orchestrator.stores.uris import is_journal, local_file
from orchestrator.study.samplers import build_sampler


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """An RDB URL (sqlite:///, postgresql://, mysql+pymysql://), or the path of a journal file:
    an append-only log that the driver replays into memory. Only the driver writes to the study,
    so the journal's in-memory reads and appended writes cost ~4x less driver time per trial
    than sqlite (benchmarks/scale.py); optuna-dashboard opens the same file."""
    if not is_journal(storage):
        return _rdb_storage(storage)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(storage))


def _rdb_storage(url: str, attempts: int = 4) -> optuna.storages.BaseStorage:
    """Optuna's storage at `url`. A database that another process or thread (a second driver, a
    `status`) is creating at the same instant fails this one's CREATE TABLE or alembic stamp
    ("table studies already exists", a UNIQUE constraint): the schema is there a moment later."""
    import sqlalchemy.exc

    for attempt in range(1, attempts):
        try:
            return optuna.storages.get_storage(url)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
            time.sleep(0.1 * attempt)
    return optuna.storages.get_storage(url)


def startup_trials(budget: int) -> int:
    """Random trials before a model-based sampler takes over: Optuna's 10, fewer for small
    budgets so that a short sweep still gets guided trials."""
    return max(2, min(10, budget // 4))


def open_study(spec: SweepSpec, storage: str) -> optuna.Study:
    """Create the sweep's study, or continue it; the spec's starting points are enqueued once."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [o.direction for o in spec.objectives]
    try:
        study = optuna.create_study(
            storage=open_storage(storage), study_name=spec.name, directions=directions,
            load_if_exists=True,
            sampler=build_sampler(spec.sampler, spec.space, startup_trials(spec.budget.trials)),
            pruner=build_pruner(spec.pruner, spec.budget.steps))
    except Exception as exc:  # bad URL, missing driver, unreachable database
        raise cannot_open(storage, exc) from None
    found = [d.name.lower() for d in study.directions]
    if found != directions:
        raise SpecError(f"{Path(spec.path).name or spec.name}: objectives: study {spec.name!r} "
                        f"in {redact_uri(storage)} was created with directions {found}")
    if study.metric_names is None:  # so that `best` and `promote` can name the objectives
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o.metric for o in spec.objectives])
    for params in spec.enqueue:
        study.enqueue_trial(params, skip_if_exists=True)
    return study


def metric_names(study: optuna.Study) -> list[str]:
    return study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]


def load_study(name: str, storage: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    file = local_file(storage)
    if file is not None and not file.exists():
        raise SpecError(f"no sweep named {name!r}: {redact_uri(storage)} "  # don't create it
                        f"does not exist")
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:
        raise SpecError(f"no sweep named {name!r} in {redact_uri(storage)}") from None
    except Exception as exc:
        raise cannot_open(storage, exc) from None


def confirm_name(name: str) -> str:
    """The study `gansweep confirm NAME` runs its retrainings in, beside the sweep's."""
    return f"{name}-confirm"


def load_confirm_study(name: str,
                       storage: str | optuna.storages.BaseStorage) -> optuna.Study | None:
    """Sweep NAME's confirm study in `storage` (a URL, or a storage opened from one), or None
    when it was never confirmed."""
    if isinstance(storage, str):
        storage = open_storage(storage)
    try:
        return optuna.load_study(study_name=confirm_name(name), storage=storage)
    except KeyError:
        return None


def trial_seed(sweep_seed: int, number: int) -> int:
    """A trial's seed: a pure function of the sweep seed and the trial number."""
    return int(np.random.SeedSequence([sweep_seed, number]).generate_state(1)[0])


def trials_used(study: optuna.Study) -> int:
    """Trials that count against the budget: every trial that was ever started."""
    return sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))


def orphaned_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials left RUNNING by a driver that is gone."""
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def reopen_trial(study: optuna.Study, storage: optuna.storages.BaseStorage,
                 number: int) -> optuna.Trial:
    """Trial `number` of `study`, left RUNNING by an earlier driver, as a `Trial` this driver
    can report, prune and tell. `storage`: the study's storage, opened from its URL; the trial's
    id is looked up through the storage's public API by study name and trial number."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return optuna.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))
