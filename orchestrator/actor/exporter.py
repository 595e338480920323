"""Generator export off the training path: a helper process beside each trial actor traces and
logs a finished trial's generators while the actor starts its next trial.

`torch.export` is not thread-safe (while it traces it swaps decompositions into torch's global
dispatcher), so it cannot run on a thread beside training; a process of its own can. The helper
is a Ray actor reserving no CPU, placed on its trial actor's node, made at the first export and
living as long as that actor (Ray ends an actor's children with it). `RunLogger.log_models`
hands it the generators (CPU modules, sent by value) and queues a wait for the export before
the run's end, so `RunLogger.flush()`, which the driver calls on every actor before the sweep
ends, covers the exports in flight: none is dropped. The helper's first export pays torch's
tracing warm-up (seconds) once; later ones take a fraction of a second.
"""

from __future__ import annotations

from typing import Any


class ModelExporter:
    """The helper actor: one export at a time, each a trial's generators into its run."""

    def __init__(self, tracking_uri: str):
        self.uri = tracking_uri

    def export(self, run_id: str, models: list[tuple[str, Any, list]], input_dim: int) -> None:
        """Each (at, module, eval metrics) of `models` as a logged model of the run."""
        from orchestrator.actor.models import log_model
        from orchestrator.actor.retry import with_retries

        for at, module, rows in models:
            with_retries(lambda a=at, m=module, r=rows: log_model(self.uri, run_id, m,
                                                                  input_dim, a, r))


def start_exporter(tracking_uri: str) -> Any | None:
    """A helper actor on this process's node, or None outside Ray (export in the caller)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not ray.is_initialized():
        return None
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    return ray.remote(ModelExporter).options(num_cpus=0, scheduling_strategy=here).remote(
        tracking_uri)
