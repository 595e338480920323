"""`gansweep`: the command group, and the process's exit.

One module per command group: sweep.py (launch, submit, resume), results.py (status, best),
registry.py (confirm, promote, sample), ui.py, trainer.py (check-trainer), data.py (data
import); what they share is common.py, the terminal display progress.py. Commands parse flags
and print; the work lives in the packages beside this one. Each command imports what it needs
when it runs, so `--help` imports none of Ray, torch, Optuna or MLflow, and the read-only
`status` and `best` need Optuna only (tests/orchestrator/cli/test_imports.py).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading

import click

from orchestrator.cli.common import fail
from orchestrator.cli.data import data
from orchestrator.cli.init import init
from orchestrator.cli.registry import confirm, promote, sample
from orchestrator.cli.results import best, status
from orchestrator.cli.sweep import launch, resume, submit
from orchestrator.cli.trainer import check_trainer
from orchestrator.cli.ui import ui

# click >= 8.2 raises this for a group called with no arguments (8.1 printed the help itself)
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class OneLineErrors(click.Group):
    """Click's own refusals (a bad flag value, a missing argument, an unknown option) as one
    line and exit code 2, like every other bad input, instead of usage, hint and error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            return super().main(args, prog_name, complete_var, False, **extra)
        except NO_ARGS_IS_HELP as exc:  # `gansweep` alone: its help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "gansweep"
            fail(f"{command}: {exc.format_message()} (--help says more)")
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort as exc:  # Ctrl-C (exit 130, as every command) or end of input
            click.echo("Aborted!", err=True)
            interrupted = isinstance(exc.__context__, KeyboardInterrupt)
            sys.exit(128 + signal.SIGINT if interrupted else 1)


@click.group(cls=OneLineErrors)
@click.version_option(package_name="gansweep")
def main() -> None:
    """Sweep GAN architectures and hyperparameters on Ray, with Optuna and MLflow."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no per-call INFO chatter


for command in (init, launch, submit, resume, status, best, promote, check_trainer, data,
                confirm, sample, ui):
    main.add_command(command)


def run() -> None:
    """The `gansweep` command: `main`, then an exit that skips the interpreter's teardown.

    Freeing torch, MLflow and Ray module by module takes seconds after the work is done and
    everything written; the exit keeps what matters of it: non-daemon threads finish, atexit
    handlers run (Ray's shutdown, logging's flush), stdout and stderr are flushed."""
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code
    exit_steps()
    if code is not None and not isinstance(code, int):  # sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def exit_steps() -> None:
    """What the interpreter does at exit before its teardown: the threading module's exit hooks
    run (pools of concurrent.futures told to stop) and the non-daemon threads are joined
    (`threading._shutdown`), then the atexit handlers run (`atexit._run_exitfuncs`).

    Both are the interpreter's own functions for it, private: checked against CPython 3.11 to
    3.13, and tests/orchestrator/test_private_apis.py fails if either moves. Without the first,
    the non-daemon threads are joined here."""
    shutdown = getattr(threading, "_shutdown", None)
    if callable(shutdown):
        shutdown()
    else:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    atexit._run_exitfuncs()
