"""MLflow writes from an actor, retried with backoff: a tracking server that restarts or a sqlite
file that is busy costs a few retries, not a trial."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
RETRIES = 5


def with_retries(work: Callable[[], Any], retries: int = RETRIES) -> Any:
    """`work()`, tried again after 0.2, 0.4, ... (at most 10) seconds when MLflow or the OS
    refuses it; the last failure is raised."""
    from mlflow.exceptions import MlflowException

    delay = 0.2
    for attempt in range(retries + 1):
        try:
            return work()
        except (MlflowException, OSError) as exc:
            if attempt == retries:
                raise
            log.warning("mlflow write failed (%s); retrying in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    return None
