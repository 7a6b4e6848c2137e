"""Write a W8A8 INT8 checkpoint (compressed-tensors `int-quantized` format) from a dense one.

Weights: symmetric per-output-channel int8 with a float scale per row; activations:
dynamic symmetric per-token int8 (computed by vLLM at run time, so no calibration data
is needed). vLLM reads the scheme from `quantization_config` in config.json.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

QUANTIZED_SUFFIXES = (
    "q_proj.weight",
    "k_proj.weight",
    "v_proj.weight",
    "o_proj.weight",
    "gate_proj.weight",
    "up_proj.weight",
    "down_proj.weight",
)

W8A8_CONFIG = {
    "quant_method": "compressed-tensors",
    "format": "int-quantized",
    "quantization_status": "compressed",
    "ignore": ["lm_head"],
    "config_groups": {
        "group_0": {
            "targets": ["Linear"],
            "weights": {
                "num_bits": 8,
                "type": "int",
                "symmetric": True,
                "strategy": "channel",
                "dynamic": False,
            },
            "input_activations": {
                "num_bits": 8,
                "type": "int",
                "symmetric": True,
                "strategy": "token",
                "dynamic": True,
            },
        }
    },
}


def quantize_per_channel(weight):
    """int8 weight and its per-row float32 scale: weight ≈ q * scale."""
    import torch

    w = weight.to(torch.float32)
    scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127.0
    q = torch.round(w / scale).clamp(-127, 127).to(torch.int8)
    return q, scale


def write_w8a8(base: Path, out: Path) -> None:
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True)
    for item in base.iterdir():
        if item.is_file() and item.suffix != ".safetensors" and item.name != "config.json":
            shutil.copy2(item, out / item.name)
    weight_map: dict[str, str] = {}
    for shard in sorted(base.glob("*.safetensors")):
        result = {}
        for key, tensor in load_file(str(shard)).items():
            if key.endswith(QUANTIZED_SUFFIXES):
                q, scale = quantize_per_channel(tensor)
                result[key] = q.contiguous()
                result[key.removesuffix("weight") + "weight_scale"] = scale.contiguous()
            else:
                result[key] = tensor
        save_file(result, str(out / shard.name), metadata={"format": "pt"})
        weight_map.update({key: shard.name for key in result})
    index = out / "model.safetensors.index.json"
    if index.exists():
        data = json.loads(index.read_text())
        data["weight_map"] = dict(sorted(weight_map.items()))
        index.write_text(json.dumps(data, indent=2) + "\n")
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = W8A8_CONFIG
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
