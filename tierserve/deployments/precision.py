"""Precision → vLLM dtype/quantization, in one place (pure; no vLLM import)."""

from __future__ import annotations

from tierserve.config import TierServeConfig, VariantConfig
from tierserve.errors import ConfigError

DENSE_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
INT8_METHODS = {None, "compressed-tensors", "fp8", "experts_int8", "int8_per_channel_weight_only"}
INT4_METHODS = {None, "awq", "awq_marlin", "gptq", "gptq_marlin", "compressed-tensors"}


def engine_precision(variant: VariantConfig) -> dict:
    """The `dtype` and `quantization` engine arguments for a variant; raise on a mismatch."""
    where = f"variant '{variant.name}'"
    if variant.precision in DENSE_DTYPES:
        if variant.quantization is not None:
            raise ConfigError(
                f"{where}: precision {variant.precision} is unquantized but quantization is "
                f"'{variant.quantization}'; use precision int8/int4 or drop quantization"
            )
        expected = DENSE_DTYPES[variant.precision]
        if variant.dtype not in ("auto", expected):
            raise ConfigError(f"{where}: precision {variant.precision} needs dtype {expected}")
        return {"dtype": expected, "quantization": None}
    allowed = INT8_METHODS if variant.precision == "int8" else INT4_METHODS
    if variant.quantization not in allowed:
        raise ConfigError(
            f"{where}: quantization '{variant.quantization}' is not a {variant.precision} "
            f"method; choose one of {sorted(m for m in allowed if m)} or leave it unset"
        )
    return {"dtype": variant.dtype, "quantization": variant.quantization}


def validate_precisions(config: TierServeConfig) -> None:
    for _, variant in config.variants():
        engine_precision(variant)
