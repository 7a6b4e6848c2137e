"""On a real GPU: a DeepSeek-7B-shaped engine (vLLM load_format='dummy', the vendored
config.json, no weights) started through the platform's VLLMEngine; the KV cache vLLM
allocates must match the capacity planner's estimate for that GPU.

Skipped without a GPU (tests/gpu/conftest.py). Needs vLLM's CUDA build; the model
directory is made with ../shared/gpu/make_model.py (config.json + a padded tokenizer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tierserve.config import parse_config
from tierserve.planner.architecture import architecture_from
from tierserve.planner.gpus import GPUS
from tierserve.planner.plan import evaluate, PlannerPolicy

ROOT = Path(__file__).resolve().parents[2]
ARCH = ROOT / "configs/architectures/deepseek-ai/deepseek-llm-7b-chat/config.json"
MAKE_MODEL = ROOT.parent / "shared" / "gpu" / "make_model.py"


def local_gpu():
    name = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                          capture_output=True, text=True, check=True).stdout.lower()
    for key, spec in GPUS.items():
        if key.split("-")[0] in name:
            return spec
    pytest.skip(f"GPU {name.strip()!r} is not one the planner knows")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    if not MAKE_MODEL.exists():
        pytest.skip(f"{MAKE_MODEL} not found")
    out = tmp_path_factory.mktemp("ds7b")
    subprocess.run([sys.executable, str(MAKE_MODEL), str(out)], check=True)
    return out


async def test_kv_cache_matches_the_plan(model_dir):
    from tierserve.deployments.engine_args import engine_kwargs
    from tierserve.deployments.vllm_engine import VLLMEngine

    gpu = local_gpu()
    config = parse_config({"tiers": [{"id": "7b", "variants": [{
        "name": "ds7b", "model": str(model_dir), "precision": "bf16", "max_model_len": 4096,
        "max_num_seqs": 64, "resources": {"num_gpus": 1},
        "engine_kwargs": {"load_format": "dummy", "gpu_memory_utilization": 0.9}}]}]})
    variant = config.tiers[0].variants[0]
    arch = architecture_from(json.loads(ARCH.read_text()), {}, "ds7b")
    fit = evaluate(variant, arch, gpu, 1, 1, PlannerPolicy())
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    engine = VLLMEngine("ds7b", engine_kwargs(variant, str(model_dir), str(model_dir)))
    await engine.start()
    try:
        actual = engine.kv_cache_tokens
    finally:
        await engine.shutdown()
    print(f"\n{gpu.label}: vLLM KV cache {actual} tokens, planner {fit.kv_cache_tokens}")
    assert actual == pytest.approx(fit.kv_cache_tokens, rel=0.15)
