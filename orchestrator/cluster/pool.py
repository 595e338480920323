"""Sizing the actor pool: how many trial actors a Ray cluster holds, and what each one asks
for. Pure: `launch` passes the live nodes' resources in."""

from __future__ import annotations

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
