"""The Optuna study of a sweep: storage, sampler, per-trial seeds, budget accounting.

Only the driver imports this. The study name is the sweep name, so launching the same spec
again continues the study instead of failing.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from orchestrator.errors import SpecError
from orchestrator.spec.sweep import SweepSpec, refuse_empty
from orchestrator.stores.redact import mask_secrets, redact_uri
from orchestrator.stores.uris import file_problem, sqlite_file
from orchestrator.study.samplers import build_pruner, build_sampler

DEFAULT_STORAGE = "sqlite:///optuna.db"
USER_ATTR_RUN = "mlflow_run_id"
# a `gansweep confirm` trial's: the sweep trial it retrains, and which of its fresh seeds; also
# tags (gansweep.<attr>) on its MLflow run
USER_ATTR_CONFIRMS, USER_ATTR_SEED_INDEX = "confirms_trial", "seed_index"
USER_ATTR_SEED = "seed"
USER_ATTR_REASON = "fail_reason"
USER_ATTR_ATTEMPT = "attempt"  # 1 for the first run of a trial; each resume adds one
USER_ATTR_DIVERGED_STEP = "diverged_step"


def resolve_storage(flag: str | None = None) -> str:
    """--storage, else GANSWEEP_STORAGE, else the local sqlite file. An empty flag is refused:
    it is an unset shell variable (`--storage "$GANSWEEP_STORAGE"` where nothing set it), and
    falling back to a file on this machine would put the sweep where nobody looks."""
    refuse_empty("--storage", flag, "the study storage", "GANSWEEP_STORAGE")
    return flag or os.environ.get("GANSWEEP_STORAGE") or DEFAULT_STORAGE


def absolute_storage(storage: str) -> str:
    """A study storage with its file made absolute: `resume` and Ray Jobs run elsewhere."""
    if is_journal(storage):
        return str(Path(storage).expanduser().resolve())
    return absolute_sqlite(storage)


def absolute_sqlite(uri: str) -> str:
    """A relative sqlite URL made absolute; any other URI (a tracking URI may be a bare word such
    as `databricks`) is left as it is."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def is_journal(storage: str) -> bool:
    """A storage with no URL scheme is a path to an Optuna journal file."""
    return "://" not in storage


def local_file(storage: str) -> Path | None:
    """The file a sqlite URL or a journal names; None for a database server."""
    return Path(storage) if is_journal(storage) else sqlite_file(storage)


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
        raise SpecError(f"--storage: cannot open {redact_uri(storage)}: "
                        f"{mask_secrets(_first_line(exc), storage)}") from None
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


def check_storage(storage: str) -> None:
    """Refuse a storage that cannot work, creating nothing: a sqlite file's or journal's folder
    must take it, a database server must answer (the study and its tables come later, once
    every other check has passed)."""
    file = local_file(storage)
    if file is not None:
        problem = file_problem(file)
        if problem:
            raise SpecError(f"--storage: cannot use {redact_uri(storage)}: {problem}")
        return
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(storage, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # bad URL, missing driver, unreachable database, refused login
        raise SpecError(f"--storage: cannot open {redact_uri(storage)}: "
                        f"{mask_secrets(_first_line(exc), storage)}") from None


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
        raise SpecError(f"--storage: cannot open {redact_uri(storage)}: "
                        f"{mask_secrets(_first_line(exc), storage)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def trial_seed(sweep_seed: int, number: int) -> int:
    """A trial's seed: a pure function of the sweep seed and the trial number."""
    return int(np.random.SeedSequence([sweep_seed, number]).generate_state(1)[0])


def trials_used(study: optuna.Study) -> int:
    """Trials that count against the budget: every trial that was ever started."""
    return sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))


def orphaned_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials left RUNNING by a driver that is gone."""
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
