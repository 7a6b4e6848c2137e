from __future__ import annotations

import httpx
import pytest

from tierserve.config import parse_config
from tierserve.deployments.fake_engine import FakeEngine
from tierserve.deployments.tier import TierDeployment
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient


def variant(name: str, **extra) -> dict:
    return {"name": name, "model": f"/models/{name}", "precision": "fp32", "max_model_len": 64,
            **extra}


def small_config(**overrides) -> dict:
    data = {
        "tiers": [
            {"id": "7b", "variants": [variant("small-fp32"),
                                      variant("small-int8", precision="int8")]},
            {"id": "33b", "variants": [variant("medium-fp32")]},
            {"id": "236b", "variants": [variant("large-bf16", precision="bf16")]},
        ],
        # Explicitly open: router tests send no keys. tests/unit/security covers auth.
        "security": {"auth": "disabled"},
    }
    data.update(overrides)
    return data


@pytest.fixture
def config():
    return parse_config(small_config())


@pytest.fixture
async def tiers(config):
    made = {}
    for tier, v in config.variants():
        dep = TierDeployment(tier.id, v.name, {"max_model_len": v.max_model_len},
                             engine_factory=lambda name, args: FakeEngine(name, args["max_model_len"]))
        await dep.start()
        made[v.name] = dep
    return made


@pytest.fixture
def conversations(config):
    from tierserve.context.conversations import ConversationService
    from tierserve.context.memory import MemoryContextStore
    from tierserve.context.tokens import WordTokenCounter

    counter = WordTokenCounter()
    return ConversationService(
        MemoryContextStore(config.context.max_turns, config.context.ttl_s),
        {v.name: counter for _, v in config.variants()},
        {v.name: v.max_model_len for _, v in config.variants()},
        config.context,
    )


@pytest.fixture
async def client(config, tiers, conversations):
    app = create_app(RouterService(config, LocalTierClient(tiers), conversations))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
