"""Variant config → vLLM AsyncEngineArgs keyword arguments (pure)."""

from __future__ import annotations

from tierserve.config import VariantConfig
from tierserve.deployments.precision import engine_precision


def engine_kwargs(variant: VariantConfig, model_path: str, tokenizer_path: str) -> dict:
    args = {
        "model": model_path,
        "tokenizer": tokenizer_path,
        "served_model_name": [variant.name],
        "tensor_parallel_size": variant.tensor_parallel_size,
        "pipeline_parallel_size": variant.pipeline_parallel_size,
        "max_model_len": variant.max_model_len,
        "max_num_seqs": variant.max_num_seqs,
        "enforce_eager": variant.enforce_eager,
        "enable_prefix_caching": True,
        "stream_interval": variant.stream_interval_tokens,
        **engine_precision(variant),
    }
    if args["quantization"] is None:
        del args["quantization"]
    if variant.kv_cache_bytes is not None:
        args["kv_cache_memory_bytes"] = variant.kv_cache_bytes
    if variant.world_size > 1:
        # vLLM's CPU build has no Ray executor: CPU ranks are child processes (mp).
        gpus = variant.resources.num_gpus > 0
        args["distributed_executor_backend"] = "ray" if gpus else "mp"
    args.update(variant.engine_kwargs)
    return args
