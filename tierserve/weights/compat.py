"""Can a version be swapped into a running engine in place? (pure: reads JSON and the
safetensors headers, never the tensors)

In-place reload copies new values into the engine's existing tensors; the engine's
config, tokenizer and chat template were read when it started. So a version qualifies
only if its config.json matches the loaded one (ignoring bookkeeping keys), its
tokenizer and generation files are byte-identical, and every tensor has the same name
and shape. Anything else is an architecture change: refused here, rolled out by
redeploying (docs/weights.md).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from tierserve.weights.manifest import hash_file

BOOKKEEPING_KEYS = frozenset({
    "_name_or_path", "_model_name_or_path", "transformers_version", "dtype", "torch_dtype",
    "use_cache", "_commit_hash",
})
"""config.json keys that do not change the computation graph (the engine's dtype is fixed
by the deployment, so a checkpoint stored in bf16 or fp32 loads either way)."""

RUNTIME_FILES = (
    "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja",
    "chat_template.json", "generation_config.json", "preprocessor_config.json",
)
"""Files read once at engine start; a change needs a fresh engine."""

MAX_HEADER_BYTES = 100 << 20


@dataclass(frozen=True)
class Compatibility:
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons

    def describe(self) -> str:
        return "compatible" if self.ok else "; ".join(self.reasons)


def _config(directory: Path) -> dict:
    try:
        data = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if k not in BOOKKEEPING_KEYS}


def config_changes(current: Path, new: Path) -> list[str]:
    old_cfg, new_cfg = _config(current), _config(new)
    if not new_cfg:
        return ["config.json is missing or unreadable"]
    changes = []
    for key in sorted(old_cfg.keys() | new_cfg.keys()):
        if old_cfg.get(key) != new_cfg.get(key):
            changes.append(f"config.json {key}: {old_cfg.get(key)!r} -> {new_cfg.get(key)!r}")
    return changes


def runtime_file_changes(current: Path, new: Path) -> list[str]:
    changes = []
    for name in RUNTIME_FILES:
        old_file, new_file = current / name, new / name
        if old_file.is_file() != new_file.is_file():
            changes.append(f"{name} {'added' if new_file.is_file() else 'removed'}")
        elif old_file.is_file() and hash_file(old_file) != hash_file(new_file):
            changes.append(f"{name} changed")
    return changes


def safetensors_header(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, from the JSON header at the start of a .safetensors file."""
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path.name}: too short for a safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"{path.name}: header of {length} bytes is implausible")
        header = json.loads(handle.read(length))
    return {name: tuple(meta["shape"]) for name, meta in header.items() if name != "__metadata__"}


def tensor_layout(directory: Path) -> dict[str, tuple[int, ...]] | None:
    files = sorted(directory.rglob("*.safetensors"))
    if not files:
        return None
    layout: dict[str, tuple[int, ...]] = {}
    for path in files:
        layout.update(safetensors_header(path))
    return layout


def tensor_changes(current: Path, new: Path) -> list[str]:
    try:
        old_layout, new_layout = tensor_layout(current), tensor_layout(new)
    except (OSError, ValueError, KeyError) as err:
        return [f"unreadable safetensors header: {err}"]
    if new_layout is None:
        return ["no .safetensors files (in-place reload reads safetensors)"]
    if old_layout is None:
        return []  # the running checkpoint is not safetensors: nothing to compare against
    changes = []
    missing = sorted(old_layout.keys() - new_layout.keys())
    added = sorted(new_layout.keys() - old_layout.keys())
    if missing:
        changes.append(f"{len(missing)} tensor(s) missing, e.g. {missing[0]}")
    if added:
        changes.append(f"{len(added)} new tensor(s), e.g. {added[0]}")
    reshaped = [n for n in sorted(old_layout.keys() & new_layout.keys())
                if old_layout[n] != new_layout[n]]
    if reshaped:
        name = reshaped[0]
        changes.append(f"{len(reshaped)} tensor(s) changed shape, e.g. {name} "
                       f"{list(old_layout[name])} -> {list(new_layout[name])}")
    return changes


def check_compatible(current: Path, new: Path) -> Compatibility:
    """Whether the checkpoint at `new` can replace the one at `current` in place."""
    return Compatibility(tuple(config_changes(current, new) + runtime_file_changes(current, new)
                               + tensor_changes(current, new)))
