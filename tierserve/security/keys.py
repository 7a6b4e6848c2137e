"""API keys with roles, stored hashed (pure: no Ray, no FastAPI).

A key is 256 random bits (`ts-` + 43 url-safe characters); the server keeps only its
SHA-256 digest. A plain digest is enough for keys this long (nothing to brute-force) and
keeps the check at one hash per request; it is also the owner id that scopes a key's
conversations (`ConversationKey.for_credential`), so an admin can address them by key id.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from tierserve.config import ApiKeyConfig, RateLimitConfig, Role, SecurityConfig
from tierserve.errors import ConfigError

KEY_PREFIX = "ts-"
KEY_BYTES = 32
OWNER_CHARS = 24
"""Leading hex characters of the digest that name a key's conversations in the store."""


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_entry(key_id: str, role: Role, key: str, **limits: int | None) -> ApiKeyConfig:
    """The config entry (digest only) for `key`."""
    return ApiKeyConfig(id=key_id, role=role, sha256=hash_key(key),
                        **{k: v for k, v in limits.items() if v is not None})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key id, its role and its per-minute limits (None: unlimited)."""

    key_id: str
    role: Role
    requests_per_min: int | None = None
    tokens_per_min: int | None = None
    owner: str | None = None
    """The key's conversation-owner id (digest prefix); None when auth is disabled."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def limited(self) -> bool:
        return self.requests_per_min is not None or self.tokens_per_min is not None


ANONYMOUS = Principal("anonymous", "admin")
"""Everyone, when `security.auth` is 'disabled' (local demos only)."""


class KeyRing:
    """Hashed keys by digest; `lookup` costs one SHA-256 and a dict probe."""

    def __init__(self, entries: list[ApiKeyConfig], limits: RateLimitConfig):
        self._by_digest: dict[str, Principal] = {}
        self._by_id: dict[str, Principal] = {}
        for entry in entries:
            principal = Principal(
                entry.id, entry.role,
                (entry.requests_per_min or limits.requests_per_min) if limits.enabled else None,
                (entry.tokens_per_min or limits.tokens_per_min) if limits.enabled else None,
                entry.sha256[:OWNER_CHARS],
            )
            self._by_digest[entry.sha256] = principal
            self._by_id[entry.id] = principal

    @classmethod
    def from_config(cls, security: SecurityConfig) -> KeyRing:
        return cls(security.api_keys, security.rate_limits)

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, key: str) -> Principal | None:
        # Probing by digest leaks nothing useful through timing: a caller cannot choose
        # digests without preimages of SHA-256.
        return self._by_digest.get(hash_key(key))

    def by_id(self, key_id: str) -> Principal | None:
        return self._by_id.get(key_id)

    def describe(self) -> list[dict]:
        return [{"id": p.key_id, "role": p.role, "requests_per_min": p.requests_per_min,
                 "tokens_per_min": p.tokens_per_min} for p in self._by_id.values()]


_ENTRIES = TypeAdapter(list[ApiKeyConfig])


def load_key_file(path: str | Path) -> list[ApiKeyConfig]:
    """Hashed key entries from a YAML file: a list, or a mapping with `api_keys`."""
    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read API key file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"API key file {path} is not valid YAML: {err}") from None
    if isinstance(data, dict):
        data = data.get("api_keys", [])
    try:
        return _ENTRIES.validate_python(data or [])
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"API key file {path}: {where}: {first['msg']}") from None


def with_key_file(security: SecurityConfig, path: str | Path | None) -> SecurityConfig:
    """`security` with the entries of `path` (or of `security.api_keys_file`) merged in."""
    path = security.api_keys_file or path
    if not path:
        return security
    known = {e.sha256 for e in security.api_keys}  # idempotent: merging twice adds nothing
    merged = [*security.api_keys, *(e for e in load_key_file(path) if e.sha256 not in known)]
    return SecurityConfig.model_validate(
        {**security.model_dump(), "api_keys": [e.model_dump() for e in merged],
         "api_keys_file": str(path)}
    )
