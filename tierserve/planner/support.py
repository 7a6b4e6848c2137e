"""Does the checkpoint and the GPU support the variant's precision? (pure)

Errors: what vLLM would refuse or silently get wrong. Notes: what works with a caveat.
"""

from __future__ import annotations

from tierserve.config import VariantConfig
from tierserve.planner.architecture import Architecture
from tierserve.planner.gpus import GpuSpec

PREQUANTIZED_METHODS = {"awq", "awq_marlin", "gptq", "gptq_marlin", "compressed-tensors"}
PRECISION_BITS = {"int8": 8, "int4": 4}


def checkpoint_errors(variant: VariantConfig, arch: Architecture) -> list[str]:
    """Mismatches between the declared precision and the checkpoint's quantization_config."""
    if not arch.checkpoint_known:
        return []
    bits, where = arch.checkpoint_bits, f"variant '{variant.name}'"
    if bits is not None and variant.precision not in PRECISION_BITS:
        return [f"{where}: the checkpoint is quantized to {bits} bits but precision is "
                f"{variant.precision}; declare precision int{bits}"]
    expected = PRECISION_BITS.get(variant.precision)
    if bits is not None and expected is not None and bits != expected:
        return [f"{where}: precision {variant.precision} but the checkpoint holds "
                f"{bits}-bit weights"]
    if bits is None and variant.quantization in PREQUANTIZED_METHODS:
        return [f"{where}: quantization '{variant.quantization}' needs a pre-quantized "
                "checkpoint, but the model's config.json has no quantization_config"]
    if bits is None and variant.precision == "int4":
        return [f"{where}: int4 needs a pre-quantized (AWQ/GPTQ) checkpoint; vLLM does not "
                "quantize to 4 bits at load time"]
    return []


def device_notes(variant: VariantConfig, gpu: GpuSpec) -> list[str]:
    notes = []
    if variant.quantization == "fp8" and not gpu.supports_fp8:
        notes.append(f"{gpu.label} has no FP8 tensor cores: vLLM runs fp8 weight-only "
                     "(W8A16 Marlin), saving memory but not compute")
    if variant.precision == "bf16" and not gpu.supports_bf16:
        notes.append(f"{gpu.label} has no bf16 tensor cores; use fp16")
    return notes
