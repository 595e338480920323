"""The sweep's trial actors on Ray: how many a cluster holds and what each asks for
(`pool_plan`, pure), and the `ActorPool` through which the scheduler starts, trains, finishes
and waits on them (the only module the scheduler's Ray calls go through; tests drive the
scheduler with a fake of it, tests/orchestrator/driver/fake_pool.py)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from orchestrator.boundary import ActorLost, TrialSpec
from orchestrator.spec.sweep import SweepSpec


def pool_plan(spec: SweepSpec, nodes: list[dict[str, float]]) -> tuple[int, dict[str, float]]:
    """How many actors the cluster's `nodes` (each node's resources) hold, and each actor's Ray
    resource request.

    Planned device by device, as Ray places actors: a share below 1 must fit on one GPU, so 0.3
    GPU per trial packs 3 actors per GPU and 8 GPUs hold 24, not the 26 that 8 / 0.3 suggests;
    CPUs are counted per node. With no GPU anywhere, trials run on CPU slots. With
    `resources.actors`, the pool has that many actors whatever fits now: on an autoscaling
    cluster the pending ones make the autoscaler add nodes."""
    res = spec.resources
    if res.actors:
        return res.actors, {"num_cpus": res.cpus_per_trial, "num_gpus": res.gpus_per_trial}
    on_gpu = res.gpus_per_trial > 0 and any(node.get("GPU", 0) > 0 for node in nodes)
    size = 0
    for node in nodes:
        fits = _fits(node.get("CPU", 0.0), res.cpus_per_trial)
        if on_gpu:
            fits = min(fits, _gpu_fits(node.get("GPU", 0.0), res.gpus_per_trial))
        size += fits
    return size, {"num_cpus": res.cpus_per_trial, "num_gpus": res.gpus_per_trial if on_gpu else 0}


def _gpu_fits(gpus: float, share: float) -> int:
    """Actors of `share` GPU on a node with `gpus` devices: a fraction never spans two."""
    return int(gpus + 1e-9) * _fits(1.0, share) if share < 1 else _fits(gpus, share)


def _fits(available: float, share: float) -> int:
    """How many `share`s fit in `available` (a share of 0 is never the limit)."""
    return 1 << 30 if share <= 0 else int(available / share + 1e-9)


class ActorPool:
    """The sweep's trial actors, made up front, each with its `ready()` call in flight; the
    scheduler takes those it has work for (`take`), makes replacements (`new_actor`), and calls
    them through the methods below (orchestrator/driver/context.py's `Actors`). A call to an
    actor that died raises `ActorLost` from `get`."""

    def __init__(self, size: int, options: dict[str, Any], data_ref: Any, tracking_uri: str):
        import ray

        from orchestrator.actor.worker import TrialWorker

        self.size, self.options, self.tracking_uri = size, options, tracking_uri
        self._class = ray.remote(TrialWorker)
        self._args = (data_ref, tracking_uri, max(1, int(options["num_cpus"])))
        self._starting = dict(self.new_actor() for _ in range(size))
        self.holding = False  # `hold`: actors a scheduler retires are kept for the next phase
        self._held: list[Any] = []

    def new_actor(self) -> tuple[Hashable, Any]:
        """(its `ready()` ref, the actor): placed where resources allow, maybe never."""
        actor = self._class.options(**self.options).remote(*self._args)
        return actor.ready.remote(), actor

    def take(self, n: int) -> dict[Hashable, Any]:
        """The first `n` actors made up front, by their `ready()` refs; the others are killed
        (fewer trials left than the pool holds)."""
        made, self._starting = list(self._starting.items()), {}
        for _, actor in made[n:]:
            self.kill(actor)
        return dict(made[:n])

    # -- calls: each returns at once; a ref's result comes from `get` ---------------------------
    def start(self, actor: Any, spec: TrialSpec) -> None:
        actor.start.remote(spec)  # an actor runs its calls in order: start, then train

    def train(self, actor: Any, steps: int) -> Hashable:
        return actor.train.remote(steps)

    def finish(self, actor: Any, state: str, reason: str) -> Hashable:
        return actor.finish.remote(state, reason)

    def flush(self, actor: Any) -> Hashable:
        return actor.flush.remote()

    def salvage(self, spec: TrialSpec) -> Hashable:
        """Write what a dead actor left unwritten (in its trial's last checkpoint) into the
        trial's run, as a task beside the driver (the checkpoint root may be a local folder of
        this node); its result: why it could not, or None."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from orchestrator.actor.worker import salvage_metrics

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        return ray.remote(salvage_metrics).options(
            num_cpus=0, scheduling_strategy=here).remote(spec, self.tracking_uri)

    def copy_state(self, recipient: TrialSpec, donor: int, step: int) -> Hashable:
        """PBT's exploit: the donor trial's checkpoint at `step` becomes the recipient's newest;
        its result: why it could not, or None. Done here, in the driver, which checked at
        launch that it can write the checkpoint root: a task would start a worker process and
        import torch at every round (measured: 1.8 s a copy, every actor idle meanwhile)."""
        import ray

        from orchestrator.actor.worker import copy_state

        return ray.put(copy_state(recipient, donor, step))

    def retire(self, actor: Any) -> None:
        """End the actor once the calls it was given are done; kept instead while the pool
        holds its actors for a next phase."""
        if self.holding:
            self._held.append(actor)
        else:
            actor.__ray_terminate__.remote()

    # -- phases: a sweep's confirm phase runs on the actors its search phase used -----------------
    def hold(self) -> None:
        """Keep the actors the scheduler retires at its end (`reuse` hands them out again):
        torch imported and the data in place, a next phase starts at once."""
        self.holding = True

    def reuse(self, payload: Any, n: int) -> None:
        """The held actors (and those made up front that no phase took yet), given `payload` as
        their data before any trial they start, become those `take` hands out: up to `n`, made
        anew only for those lost or left unused by the phase before."""
        import ray

        data_ref = ray.put(payload)
        held = self._held + list(self._starting.values())
        self._held, self._starting, self.holding = [], {}, False
        self._args = (data_ref, *self._args[1:])  # replacements get it too
        for actor in held[n:]:
            self.kill(actor)
        for actor in held[:n]:
            actor.use_data.remote(data_ref)  # an actor runs its calls in order
            self._starting[actor.ready.remote()] = actor
        while len(self._starting) < min(n, self.size):
            ref, actor = self.new_actor()
            self._starting[ref] = actor

    def let_go(self) -> None:
        """The held actors end: no next phase."""
        held, self._held, self.holding = self._held, [], False
        for actor in held:
            self.retire(actor)

    def kill(self, actor: Any) -> None:
        """End it now (an unreachable actor may still hold its GPU: release it)."""
        import ray

        ray.kill(actor)

    # -- waiting --------------------------------------------------------------------------------
    def wait(self, refs: list[Hashable], timeout: float) -> Hashable | None:
        """The first of `refs` to be ready, or None after `timeout` seconds."""
        import ray

        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        return ready[0] if ready else None

    def get(self, ref: Hashable) -> Any:
        """A ready call's result; `ActorLost` when its actor died (or could not start)."""
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            text = str(exc).strip()
            raise ActorLost(type(exc).__name__, text.splitlines()[0] if text else "") from exc
