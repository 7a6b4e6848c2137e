"""Bytes of weights and KV cache from an architecture and a precision (pure).

Weights: linear layers inside the blocks take the precision's bytes per parameter
(fp32 4, bf16/fp16 2, int8 1, int4 0.5 plus a 16-bit scale and 4-bit zero per group);
embedding, output head, norms and the MoE router stay at the compute dtype, as vLLM's
quantized checkpoints keep them.
KV cache per token: 2 (K and V) x layers x KV heads x head dim x bytes for MHA/GQA;
MLA caches one latent of kv_lora_rank + qk_rope_head_dim per layer.
"""

from __future__ import annotations

import math

from tierserve.config import VariantConfig
from tierserve.planner.architecture import Architecture, ParamCount, param_count

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
PRECISION_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
DEFAULT_INT4_GROUP = 128


def compute_dtype_bytes(variant: VariantConfig) -> int:
    """Bytes of the activations / unquantized parts: the precision, or the dtype for ints."""
    if variant.precision in PRECISION_BYTES:
        return PRECISION_BYTES[variant.precision]
    return DTYPE_BYTES.get(variant.dtype, 2)  # 'auto': the checkpoint's bf16/fp16


def linear_bytes_per_param(variant: VariantConfig, arch: Architecture) -> float:
    if variant.precision == "int8":
        return 1.0
    if variant.precision == "int4":
        group = arch.checkpoint_group_size or DEFAULT_INT4_GROUP
        return 0.5 + 2.5 / group  # fp16 scale + 4-bit zero point per group
    return float(compute_dtype_bytes(variant))


def weight_bytes_of(count: ParamCount, variant: VariantConfig, arch: Architecture) -> int:
    linear = count.linear * linear_bytes_per_param(variant, arch)
    return math.ceil(linear + count.other * compute_dtype_bytes(variant))


def weight_bytes(variant: VariantConfig, arch: Architecture) -> int:
    return weight_bytes_of(param_count(arch), variant, arch)


def active_weight_bytes(variant: VariantConfig, arch: Architecture) -> int:
    """Bytes of the weights one token runs through (all of them for a dense model)."""
    return weight_bytes_of(param_count(arch, active_only=True), variant, arch)


def kv_dtype_bytes(variant: VariantConfig) -> int:
    kv_dtype = str(variant.engine_kwargs.get("kv_cache_dtype", "auto"))
    if kv_dtype.startswith("fp8"):
        return 1
    return DTYPE_BYTES.get(kv_dtype, compute_dtype_bytes(variant))


def kv_elements_per_layer(arch: Architecture, tensor_parallel_size: int = 1) -> int:
    """Cached elements per token per layer on one tensor-parallel rank.

    TP splits KV heads across ranks (a rank keeps at least one head: vLLM replicates heads
    when TP exceeds them); MLA's latent is not split by heads, so every rank holds all of it.
    """
    if arch.uses_mla:
        return arch.kv_lora_rank + arch.qk_rope_head_dim
    heads_per_rank = max(1, arch.num_kv_heads // tensor_parallel_size)
    return 2 * heads_per_rank * arch.head_dim


def kv_bytes_per_token(variant: VariantConfig, arch: Architecture) -> int:
    """KV cache of one token for the whole model (all layers, all heads, one copy)."""
    return arch.num_layers * kv_elements_per_layer(arch) * kv_dtype_bytes(variant)


def kv_bytes_per_token_per_gpu(
    variant: VariantConfig, arch: Architecture, tensor_parallel_size: int, pipeline_parallel_size: int
) -> int:
    """KV cache of one token on the fullest GPU: its stage's layers, its rank's heads."""
    layers = math.ceil(arch.num_layers / pipeline_parallel_size)
    return layers * kv_elements_per_layer(arch, tensor_parallel_size) * kv_dtype_bytes(variant)
