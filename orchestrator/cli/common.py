"""What every `gansweep` command shares: one-line errors, the store options, strict JSON, and
reading a sweep's study. Commands live in the modules beside this one, one per command group;
each imports what it needs when it runs, so `--help` stays fast."""

from __future__ import annotations

import functools
import json
import math
import sys

import click

from orchestrator.errors import SpecError, describe, out_of_space
from orchestrator.stores.redact import redact_text

EXIT_FAILED, EXIT_USAGE = 1, 2


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """The one line of a command that cannot go on; any URI in it shown redacted."""
    click.echo(f"gansweep: error: {redact_text(message)}", err=True)
    sys.exit(code)


def friendly_errors(command):
    """Bad input is one line on stderr and exit code 2, never a traceback; a disk that filled
    up is one line and exit code 1 (the command ran, and failed)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SpecError as exc:
            fail(str(exc))
        except Exception as exc:
            if not out_of_space(exc):
                raise
            fail(f"no space left on device: {first_line(exc)}; free space and run the "
                 f"command again", EXIT_FAILED)
    return wrapper


def first_line(exc: BaseException) -> str:
    """The first line of the innermost cause that says what happened (SQLAlchemy and Optuna
    wrap the OS's words in long ones of their own)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return describe(exc)


def require_gpu_option(command):
    return click.option("--require-gpu", is_flag=True, help="Refuse to start when the Ray "
                        "cluster has no GPU, instead of training on CPU.")(command)


def allow_changed_spec_option(command):
    return click.option("--allow-changed-spec", is_flag=True, help="Continue a sweep whose "
                        "space, objective, trainer, dataset or fixed params changed since it "
                        "was launched: its sampler then learns from trials of both specs.")(command)


def storage_option(command):
    return click.option("--storage", default=None,
                        help="Optuna storage: an RDB URL, or the path of a journal file "
                             "(e.g. optuna.journal: less driver time per trial) "
                             "[default: GANSWEEP_STORAGE or sqlite:///optuna.db]")(command)


def tracking_option(command):
    return click.option("--tracking-uri", default=None, help="MLflow tracking URI "
                        "[default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db]")(command)


def store_options(command):
    """--storage and --tracking-uri, for the commands that touch both stores."""
    return storage_option(tracking_option(command))


def to_json(data) -> str:
    """Strict JSON (RFC 8259) for scripts: a NaN or inf value becomes null, not `NaN`."""
    def finite(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: finite(v) for k, v in x.items()}
        return [finite(v) for v in x] if isinstance(x, (list, tuple)) else x

    return json.dumps(finite(data), default=str, indent=2, allow_nan=False)


def load_sweep_study(name: str, storage: str | None):
    """Sweep NAME's study, for the commands that only read it: the storage as `launch` resolves
    it (a relative file made absolute), without the Ray, torch and pyarrow that launch needs."""
    from orchestrator.stores.uris import absolute_storage, resolve_storage
    from orchestrator.study.studies import load_study

    return load_study(name, absolute_storage(resolve_storage(storage)))


def tracking_uri_of(flag: str | None) -> str:
    """The MLflow tracking URI as `launch` resolves it (a relative sqlite file made absolute)."""
    from orchestrator.stores.uris import absolute_sqlite, resolve_tracking_uri

    return absolute_sqlite(resolve_tracking_uri(flag))
