"""Placement-group construction as data: bundles, strategy, actor options, executor backend."""

from __future__ import annotations

import pytest

from tierserve.config import load_config, parse_config
from tierserve.deployments.engine_args import engine_kwargs
from tierserve.errors import ConfigError
from tierserve.deployments.placement import (
    ACCELERATOR_PIN,
    placement_for,
    placement_problems,
)
from tests.unit.planner.conftest import DEEPSEEK


def variant(**extra):
    data = {"name": "v", "model": "/m", "precision": "fp32", "max_model_len": 64, **extra}
    return parse_config({"tiers": [{"id": "7b", "variants": [data]}]}).tiers[0].variants[0]


def deepseek(name):
    return load_config(DEEPSEEK).find_variant(name)[1]


def test_236b_tp4_pp2_is_one_actor_bundle_plus_eight_gpu_bundles():
    p = placement_for(deepseek("deepseek-236b-bf16"))
    worker = {"CPU": 8.0, "GPU": 1.0, "accelerator_type:H100": ACCELERATOR_PIN}
    assert p.bundles == [{"CPU": 1.0}] + [worker] * 8
    assert p.strategy == "PACK"  # pipeline stages may span nodes
    options = p.serve_options()
    assert options["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert options["placement_group_bundles"] == p.bundles
    assert options["placement_group_strategy"] == "PACK"


def test_tp2_packs_its_ranks_on_one_node():
    p = placement_for(deepseek("deepseek-33b-bf16"))
    assert len(p.bundles) == 3 and p.strategy == "STRICT_PACK"
    assert all(b["GPU"] == 1.0 for b in p.bundles[1:])


def test_single_gpu_replica_needs_no_placement_group():
    p = placement_for(deepseek("deepseek-7b-bf16"))
    assert p.bundles is None and p.strategy is None
    assert p.serve_options() == {"ray_actor_options": {
        "num_cpus": 4.0, "num_gpus": 1.0, "accelerator_type": "H100"}}


def test_cpu_tensor_parallel_reserves_cpus_of_all_ranks_in_the_actor():
    v = variant(tensor_parallel_size=2, resources={"num_cpus": 0.5, "memory_bytes": 1 << 30})
    p = placement_for(v)
    assert p.bundles is None
    assert p.ray_actor_options() == {"num_cpus": 1.0, "num_gpus": 0.0, "memory": float(1 << 30)}


@pytest.mark.parametrize(
    "extra, backend",
    [
        ({"tensor_parallel_size": 2}, "mp"),  # vLLM CPU: no Ray executor
        ({"tensor_parallel_size": 2, "resources": {"num_gpus": 1}}, "ray"),
        ({}, None),
    ],
)
def test_executor_backend_follows_the_device(extra, backend):
    args = engine_kwargs(variant(**extra), "/m", "/m")
    assert args.get("distributed_executor_backend") == backend
    assert args["tensor_parallel_size"] == extra.get("tensor_parallel_size", 1)


def test_placement_problems():
    assert "needs GPUs" in placement_problems(variant(pipeline_parallel_size=2))[0]
    fractional = variant(tensor_parallel_size=2, resources={"num_gpus": 0.5})
    assert "one whole GPU" in placement_problems(fractional)[0]
    assert placement_problems(variant(tensor_parallel_size=2)) == []


def test_stream_interval_reaches_the_engine_and_is_bounded():
    assert engine_kwargs(variant(), "/m", "/m")["stream_interval"] == 1
    assert engine_kwargs(variant(stream_interval_tokens=4), "/m", "/m")["stream_interval"] == 4
    with pytest.raises(ConfigError, match="stream_interval_tokens"):
        variant(stream_interval_tokens=0)
