"""A keyed router (FakeEngine tiers, in-memory store) and its keys."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tierserve.config import parse_config
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient
from tierserve.security.keys import generate_key, key_entry

from tests.unit.conftest import small_config


@dataclass
class Keys:
    admin: str
    inference: str
    other: str
    limited: str

    def auth(self, name: str) -> dict[str, str]:
        return {"authorization": f"Bearer {getattr(self, name)}"}


@pytest.fixture
def keys() -> Keys:
    return Keys(generate_key(), generate_key(), generate_key(), generate_key())


def secured_config(keys: Keys, tmp_path, **security):
    entries = [
        key_entry("ops", "admin", keys.admin),
        key_entry("app", "inference", keys.inference),
        key_entry("other", "inference", keys.other),
        key_entry("tight", "inference", keys.limited, requests_per_min=3, tokens_per_min=30),
    ]
    block = {"auth": "required", "api_keys": [e.model_dump() for e in entries],
             "audit": {"path": str(tmp_path / "audit.jsonl")}, **security}
    return parse_config(small_config(security=block))


@pytest.fixture
def secured(keys, tmp_path, tiers, conversations):
    return secured_config(keys, tmp_path)


@pytest.fixture
async def secure_client(secured, tiers, conversations):
    app = create_app(RouterService(secured, LocalTierClient(tiers), conversations))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        c.app = app
        yield c
