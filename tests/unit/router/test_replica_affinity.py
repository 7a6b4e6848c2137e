"""Affinity records, router hints, and a conversation surviving the loss of its replica
(FakeEngine replicas, the pure scoring and index, the real RouterService)."""

from __future__ import annotations

import random

import httpx
import pytest

from tierserve.config import ContextConfig, ReplicaRoutingConfig, parse_config
from tierserve.context.conversations import ConversationService
from tierserve.context.memory import MemoryContextStore
from tierserve.context.store import ContextUnavailable, ConversationKey
from tierserve.context.tokens import WordTokenCounter
from tierserve.deployments.engine import GenerationRequest, SamplingOptions
from tierserve.deployments.fake_engine import FakeEngine
from tierserve.deployments.tier import TierDeployment
from tierserve.router.affinity import (
    LocalAffinity,
    StoreAffinity,
    conversation_token,
    make_affinity,
    parse_conversation_token,
)
from tierserve.router.http_app import create_app
from tierserve.router.prefix_index import PrefixIndex
from tierserve.router.replica_hints import ReplicaHints
from tierserve.router.replica_scoring import ReplicaLoad, ScoringParams, Signals, rank_replicas
from tierserve.router.service import RouterService

from tests.unit.conftest import small_config, variant


class WordTokenizer:
    """Chat template 'role: content' lines; one token per word."""

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def encode(self, text, add_special_tokens):
        return [sum(map(ord, word)) for word in text.split()]


def two_replica_config(policy: str = "affinity+prefix", **routing):
    data = small_config()
    data["tiers"][1]["variants"] = [variant(
        "medium-fp32", max_model_len=512, scaling={"min_replicas": 2, "max_replicas": 2},
        replica_routing={"policy": policy, "prefix_block_tokens": 4, **routing})]
    return parse_config(data)


def test_conversation_token_round_trip():
    key = ConversationKey.for_credential("sk-1", "chat:42")
    assert parse_conversation_token(conversation_token(key)) == key
    for bad in ("", "nocolon", ":x", "x:"):
        with pytest.raises(ValueError):
            parse_conversation_token(bad)


async def test_local_affinity_is_bounded_and_expires():
    now = [0.0]
    table = LocalAffinity(max_entries=3, ttl_s=10, clock=lambda: now[0])
    for i in range(5):
        await table.remember(f"o:c{i}", f"r{i}")
    assert len(table) == 3 and await table.lookup("o:c0") is None
    assert await table.lookup("o:c4") == "r4"
    now[0] = 11
    assert await table.lookup("o:c4") is None


async def test_store_affinity_uses_the_context_store_beside_the_conversation():
    store = MemoryContextStore(max_turns=10, ttl_s=60)
    affinity = StoreAffinity(store, "medium-fp32")
    token = conversation_token(ConversationKey("owner", "c1"))
    assert await affinity.lookup(token) is None
    await affinity.remember(token, "replica-a")
    assert await store.get_replica(ConversationKey("owner", "c1"), "medium-fp32") == "replica-a"
    assert await StoreAffinity(store, "other-deployment").lookup(token) is None


def test_make_affinity_picks_redis_only_when_configured():
    routing = ReplicaRoutingConfig(local_affinity_max=7)
    local = make_affinity(ContextConfig(store="memory"), routing, "d")
    assert isinstance(local, LocalAffinity) and local.max_entries == 7
    remote = make_affinity(ContextConfig(redis_url="redis://127.0.0.1:1/0"), routing, "d")
    assert isinstance(remote, StoreAffinity)


def test_hints_only_for_multi_replica_variants_and_the_policy_in_use():
    config = two_replica_config()
    hints = ReplicaHints(config, load_tokenizer=lambda path: WordTokenizer())
    request = GenerationRequest("r", SamplingOptions(), messages=(
        {"role": "system", "content": "one two three four five six seven eight nine ten"},
        {"role": "user", "content": "hello there"}))
    filled = hints.fill("medium-fp32", request, "o:c1")
    assert filled.conversation == "o:c1" and len(filled.prefix_blocks) == 3  # 15 words / 4
    assert hints.fill("small-fp32", request, "o:c1") is request  # one replica: nothing to choose
    p2c = GenerationRequest("r", SamplingOptions(), prompt="a b c d e f g h",
                            routing_policy="power_of_two")
    assert hints.fill("medium-fp32", p2c, "o:c1") is p2c
    aff = GenerationRequest("r", SamplingOptions(), prompt="a b c d", routing_policy="affinity")
    assert hints.fill("medium-fp32", aff, "o:c1").prefix_blocks == ()


def test_hints_survive_a_missing_tokenizer_and_cap_the_prompt():
    def broken(path):
        raise OSError("no tokenizer here")

    config = two_replica_config(prefix_max_tokens=8)
    request = GenerationRequest("r", SamplingOptions(), prompt=" ".join(["w"] * 100))
    assert ReplicaHints(config, load_tokenizer=broken).fill("medium-fp32", request, None) is request
    words = ReplicaHints(config, load_tokenizer=lambda p: WordTokenizer())
    capped = words.fill("medium-fp32", request)
    assert len(capped.prefix_blocks) == 2  # 8 tokens, 4 per block


class ReplicaSetClient:
    """Stands in for Serve's routing of one deployment: the same pure scoring, index and
    affinity table the Ray adapter uses, over in-process replicas."""

    def __init__(self, replicas: dict[str, TierDeployment], config: ReplicaRoutingConfig):
        self.replicas = replicas
        self.params = ScoringParams.from_config(config)
        self.index = PrefixIndex(config.index_max_blocks, config.index_ttl_s)
        self.affinity = LocalAffinity(100, 60)
        self.rng = random.Random(3)
        self.reasons: list[str] = []

    async def stream(self, variant: str, request: GenerationRequest):
        conversation = request.conversation
        remembered = await self.affinity.lookup(conversation) if conversation else None
        loads = [ReplicaLoad(name, len(r.engine.running)) for name, r in self.replicas.items()]
        matches = self.index.match(request.prefix_blocks, list(self.replicas))
        ranking = rank_replicas(loads, Signals(remembered, matches), self.params, self.rng)
        self.reasons.append(ranking.label)
        served = ranking.first
        if request.conversation:
            await self.affinity.remember(request.conversation, served)
        self.index.record(served, request.prefix_blocks)
        async for chunk in self.replicas[served].generate(request):
            yield chunk

    def kill(self, name: str) -> None:
        del self.replicas[name]
        self.index.drop_replica(name)


async def test_replica_gone_mid_conversation_moves_it_and_loses_nothing():
    config = two_replica_config()
    conversations = ConversationService(
        MemoryContextStore(50, 60), {v.name: WordTokenCounter() for _, v in config.variants()},
        {v.name: v.max_model_len for _, v in config.variants()}, config.context)
    replicas = {}
    for name in ("r1", "r2"):
        dep = TierDeployment("33b", "medium-fp32", {},
                             engine_factory=lambda n, a: FakeEngine(n, 512))
        dep.replica_id = name
        await dep.start()
        replicas[name] = dep
    client = ReplicaSetClient(replicas, config.tier("33b").default.replica_routing)
    service = RouterService(config, client, conversations)
    service.replica_hints = ReplicaHints(config, load_tokenizer=lambda p: WordTokenizer())
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        async def turn(text):
            r = await http.post("/v1/chat/completions", json={
                "model": "33b", "conversation_id": "c1",
                "messages": [{"role": "user", "content": text}]})
            assert r.status_code == 200, r.text
            return r

        first = [await turn(f"question {i} about the topic") for i in range(3)]
        home = {r.headers["x-tierserve-replica"] for r in first}
        assert len(home) == 1, "the turns of one conversation stay on one replica"
        client.kill(home.pop())
        moved = await turn("and after the replica died?")
        assert moved.headers["x-tierserve-replica"] in client.replicas
        assert moved.json()["usage"]["prompt_tokens"] > first[-1].json()["usage"]["prompt_tokens"]
        again = await turn("still here?")
        assert again.headers["x-tierserve-replica"] == moved.headers["x-tierserve-replica"]
        stored = (await http.get("/v1/conversations/c1")).json()["turns"]
    assert len(stored) == 10 and stored[6]["content"] == "and after the replica died?"
    assert client.reasons[0].startswith(("least_loaded", "prefix"))
    assert client.reasons[1:3] == ["affinity", "affinity"]
    assert "affinity_gone" in client.reasons[3] and client.reasons[4] == "affinity"


async def test_store_failure_is_not_a_routing_failure():
    class DownStore(MemoryContextStore):
        async def get_replica(self, key, deployment):
            raise ContextUnavailable("down")

    affinity = StoreAffinity(DownStore(10, 60), "d")
    with pytest.raises(ContextUnavailable):
        await affinity.lookup("o:c")
    # the router catches it and ranks without affinity: same as a new conversation
    loads = [ReplicaLoad("a", 0), ReplicaLoad("b", 3)]
    ranking = rank_replicas(loads, Signals(None), ScoringParams())
    assert ranking.first == "a"
