"""The actor pool's size and each actor's request, planned from the cluster's nodes (pure)."""

from __future__ import annotations

from orchestrator.cluster.pool import pool_plan
from orchestrator.spec.sweep import SweepSpec
from tests.conftest import SYNTHETIC

GPU_SWEEP = SYNTHETIC.replace("resources: {cpus_per_trial: 1}",
                              "resources: {gpus_per_trial: 1, cpus_per_trial: 0.5}")


def _spec(write_spec, text=SYNTHETIC, **replace):
    for old, new in replace.items():
        text = text.replace(old, new)
    return SweepSpec.load(write_spec(text))


def test_pool_is_one_actor_per_gpu_share_or_per_cpu_share(write_spec):
    spec = _spec(write_spec, **{"resources: {cpus_per_trial: 1}":
                                "resources: {cpus_per_trial: 2, gpus_per_trial: 0.5}"})
    assert pool_plan(spec, [{"CPU": 16, "GPU": 2}]) == (4, {"num_cpus": 2.0, "num_gpus": 0.5})
    assert pool_plan(spec, [{"CPU": 4, "GPU": 2}]) == (2, {"num_cpus": 2.0, "num_gpus": 0.5})
    assert pool_plan(spec, [{"CPU": 7}]) == (3, {"num_cpus": 2.0, "num_gpus": 0})
    # a CPU head with no GPU holds no GPU actor; CPUs on a GPU node are shared with its GPU
    assert pool_plan(spec, [{"CPU": 0}, {"CPU": 16}, {"CPU": 16, "GPU": 1}]) == (
        2, {"num_cpus": 2.0, "num_gpus": 0.5})


def test_gpu_shares_are_planned_device_by_device(write_spec):
    spec = _spec(write_spec, **{"resources: {cpus_per_trial: 1}":
                                "resources: {cpus_per_trial: 1, gpus_per_trial: 0.3}"})
    one_gpu_nodes = [{"CPU": 8, "GPU": 1} for _ in range(8)]
    # 8 GPUs / 0.3 would say 26; each one-GPU node holds 3 actors of 0.3, so 24 fit
    assert pool_plan(spec, one_gpu_nodes)[0] == 24
    assert pool_plan(spec, [{"CPU": 32, "GPU": 8}])[0] == 24  # a share never spans two GPUs
    assert pool_plan(spec, [{"CPU": 2, "GPU": 8}])[0] == 2  # CPUs are the limit here


def test_a_gpu_share_packs_actors_per_device_and_actors_fixes_the_pool(write_spec):
    spec = SweepSpec.load(write_spec(GPU_SWEEP.replace("gpus_per_trial: 1", "gpus_per_trial: 0.5")))
    assert pool_plan(spec, [{"CPU": 8, "GPU": 2}]) == (4, {"num_cpus": 0.5, "num_gpus": 0.5})
    fixed = SweepSpec.load(write_spec(GPU_SWEEP.replace("cpus_per_trial: 0.5",
                                                        "cpus_per_trial: 0.5, actors: 6")))
    # an autoscaling cluster with no GPU node up yet still asks for GPU actors
    assert pool_plan(fixed, [{"CPU": 2}]) == (6, {"num_cpus": 0.5, "num_gpus": 1.0})
