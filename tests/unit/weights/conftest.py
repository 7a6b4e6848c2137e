"""Tiny checkpoints and a store/follower kit for the weight tests (no torch, no vLLM)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tierserve.weights.audit import AuditLog
from tierserve.weights.store import LocalWeightStore

BASE_CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4, "num_hidden_layers": 1,
               "vocab_size": 8, "transformers_version": "5.19.0", "dtype": "bfloat16"}
BASE_SHAPES = {"embed.weight": (8, 4), "layer.0.weight": (4, 4)}


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], fill: int = 0) -> None:
    header, blobs, offset = {}, [], 0
    for name, shape in shapes.items():
        count = 1
        for dim in shape:
            count *= dim
        blob = struct.pack(f"<{count}f", *([float(fill)] * count))
        header[name] = {"dtype": "F32", "shape": list(shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def make_checkpoint(directory: Path, *, fill: int = 0, config: dict | None = None,
                    shapes: dict | None = None, tokenizer: str = '{"vocab": 8}') -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config or BASE_CONFIG))
    (directory / "tokenizer.json").write_text(tokenizer)
    write_safetensors(directory / "model.safetensors", shapes or BASE_SHAPES, fill)
    return directory


@pytest.fixture
def checkpoint(tmp_path):
    return lambda name, **kw: make_checkpoint(tmp_path / "src" / name, **kw)


@pytest.fixture
def store(tmp_path):
    return LocalWeightStore(tmp_path / "store")


@pytest.fixture
def audit(tmp_path):
    return AuditLog(tmp_path / "audit.jsonl")
