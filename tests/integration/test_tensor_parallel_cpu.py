"""A real tensor-parallel engine (TP=2) on the CPU, deployed by the platform's app builder.

vLLM's CPU build runs TP ranks as child processes (`mp` executor; it has no Ray executor),
so the tier deployment reserves the CPUs of both ranks itself. Qwen2.5-Coder-0.5B is used
because TP=2 must divide the attention heads (14 here; SmolLM2 has 9). Also checks the
capacity planner's KV bytes per token per GPU against the KV cache vLLM actually allocates.
"""

from __future__ import annotations

import time

import pytest

from tierserve.config import parse_config
from tierserve.deployments.engine import GenerationRequest, SamplingOptions
from tierserve.planner import validate_deployment
from tierserve.planner.memory import kv_bytes_per_token_per_gpu
from tierserve.planner.resolve import find_architecture
from tierserve.platform.settings import ARCHITECTURES_DIR, load_settings
from tests.integration.conftest import MODELS_DIR, free_port

pytestmark = pytest.mark.integration

APP = "tierserve-tp2"
MODEL = "qwen2.5-coder-0.5b-instruct"
KV_BYTES = 128 << 20
VLLM_BLOCK = 128  # vLLM's CPU KV block size in tokens


def tp2_config():
    return parse_config({
        "models_dir": str(MODELS_DIR),
        "tiers": [{"id": "33b", "variants": [{
            "name": "qwen-0.5b-tp2",
            "model": MODEL,
            "precision": "fp32",
            "tensor_parallel_size": 2,
            "max_model_len": 1024,
            "max_num_seqs": 4,
            "kv_cache_bytes": KV_BYTES,
            "enforce_eager": True,
            # one core per rank; the two ranks all-reduce through shared memory
            "env": {"VLLM_CPU_OMP_THREADS_BIND": "0|1"},
            "resources": {"num_cpus": 0.5},
        }]}],
    })


@pytest.fixture(scope="module")
def tp2(ray_cluster):
    from ray import serve

    from tierserve.platform.app import tier_deployment

    if not (MODELS_DIR / MODEL).exists():
        pytest.fail(f"model missing in {MODELS_DIR}: {MODEL}; run `make install`")
    config = tp2_config()
    validate_deployment(config, ARCHITECTURES_DIR)
    tier, variant = config.variants()[0]
    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    begin = time.monotonic()
    serve.run(tier_deployment(config, tier.id, variant, load_settings()), name=APP,
              route_prefix=None)
    print(f"\nTP=2 engine deployed in {time.monotonic() - begin:.1f} s")
    yield config, variant, serve.get_deployment_handle(variant.name, app_name=APP)
    serve.delete(APP)


def test_tp2_engine_answers(tp2):
    _, variant, handle = tp2
    request = GenerationRequest(
        request_id="tp2-1",
        sampling=SamplingOptions(max_tokens=12, temperature=0.0),
        messages=({"role": "user", "content": "What is the capital of France?"},),
    )
    begin = time.monotonic()
    chunks = list(handle.options(stream=True).generate.remote(request))
    elapsed = time.monotonic() - begin
    text = "".join(c.text for c in chunks)
    print(f"TP=2 answer in {elapsed:.1f} s ({chunks[-1].completion_tokens} tokens): {text!r}")
    assert "Paris" in text
    assert chunks[-1].finish_reason in ("stop", "length")


def test_vllm_kv_cache_matches_the_planner_per_rank(tp2):
    config, variant, handle = tp2
    stats = handle.stats.remote().result(timeout_s=30)
    arch = find_architecture(variant, config, ARCHITECTURES_DIR)
    per_rank = kv_bytes_per_token_per_gpu(variant, arch, 2, 1)
    assert per_rank == 24 * 2 * 1 * 64 * 4  # 24 layers, 2 KV heads split over 2 ranks, fp32
    planned_tokens = KV_BYTES // per_rank
    assert stats.extra["kv_cache_tokens"] == planned_tokens // VLLM_BLOCK * VLLM_BLOCK
