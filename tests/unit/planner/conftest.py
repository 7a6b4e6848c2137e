from __future__ import annotations

from pathlib import Path

import pytest

from tierserve.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[3]
ARCHITECTURES = ROOT / "configs" / "architectures"
DEEPSEEK = ROOT / "configs" / "deepseek.yaml"
LOCAL = ROOT / "configs" / "local.yaml"


@pytest.fixture(scope="session")
def deepseek():
    return load_config(DEEPSEEK)


def gpu_variant(name: str, model: str, **extra) -> dict:
    return {"name": name, "model": model, "precision": "bf16", "max_model_len": 4096,
            "resources": {"num_gpus": 1, "accelerator_type": "H100"}, **extra}


def one_variant_config(variant: dict, tier: str = "33b") -> object:
    return parse_config({"tiers": [{"id": tier, "variants": [variant]}]})
