"""Find the architecture of a variant's model (pure: reads files, starts nothing).

Order: the variant's `architecture` block overrides fields of the config.json of
`architecture.source` (default: the model), looked up as a local model directory, then
as a file vendored under `<architectures_dir>/<repo id>/config.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tierserve.config import TierServeConfig, VariantConfig
from tierserve.errors import ConfigError
from tierserve.planner.architecture import Architecture, architecture_from


def config_json_candidates(
    ref: str, config: TierServeConfig, architectures_dir: Path | None
) -> list[Path]:
    paths = [Path(config.resolve_model(ref)) / "config.json"]
    if architectures_dir is not None and not Path(ref).is_absolute() and ".." not in ref:
        paths.append(architectures_dir / ref / "config.json")
    return paths


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return data


def find_architecture(
    variant: VariantConfig, config: TierServeConfig, architectures_dir: Path | None
) -> Architecture:
    block = variant.architecture
    source = block.source if block is not None and block.source else variant.model
    overrides = block.model_dump(exclude={"source"}) if block is not None else {}
    candidates = config_json_candidates(source, config, architectures_dir)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None and not any(v is not None for v in overrides.values()):
        looked = ", ".join(str(p) for p in candidates)
        raise ConfigError(
            f"variant '{variant.name}': no architecture for '{source}' (looked for {looked}); "
            "add an `architecture:` block to the variant or vendor the model's config.json "
            f"as configs/architectures/{source}/config.json"
        )
    hf = _read_json(found) if found is not None else {}
    where = str(found) if found is not None else f"variant '{variant.name}'"
    return architecture_from(hf, overrides, where, checkpoint=source == variant.model)
