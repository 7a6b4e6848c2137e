"""Router-side memory and CPU cost of replica routing (no engines needed).

- 100,000 conversations through the router's own state: the bounded in-process affinity
  table (context store 'memory') and the prefix index at its block cap, measured with
  tracemalloc, so memory follows the caps, not the traffic;
- the same 100,000 affinity records in real Redis (store 'redis': nothing kept in the
  router), measured as Redis used_memory growth;
- the per-request cost: fingerprinting a prompt with the variant's tokenizer, matching and
  recording it in the index, ranking the replicas.
"""

from __future__ import annotations

import asyncio
import random
import time
import tracemalloc

from tierserve.bench.stats import summary
from tierserve.config import ReplicaRoutingConfig
from tierserve.context.redis_store import RedisContextStore
from tierserve.context.store import ConversationKey
from tierserve.router.affinity import LocalAffinity, StoreAffinity
from tierserve.router.prefix_index import PrefixIndex, block_hashes
from tierserve.router.replica_scoring import ReplicaLoad, ScoringParams, Signals, rank_replicas

REPLICAS = [f"replica-{i}" for i in range(4)]


def local_state_bytes(conversations: int, routing: ReplicaRoutingConfig) -> dict:
    """Route `conversations` conversations (a shared 62-block system prompt, then 8 blocks
    of their own) through the router's local state, sized by `routing`'s caps. The shared
    blocks are re-recorded every 100th conversation only: it keeps the run short under
    tracemalloc and changes nothing in what memory holds (one entry per distinct block)."""
    affinity = LocalAffinity(routing.local_affinity_max, ttl_s=86400)
    index = PrefixIndex(routing.index_max_blocks, routing.index_ttl_s)
    system = block_hashes(list(range(62 * 16)), 16)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    checkpoints = {}
    for i in range(1, conversations + 1):
        replica = REPLICAS[i % len(REPLICAS)]
        affinity.put(f"0123456789abcdef01234567:conversation-{i:06d}", replica)
        own = tuple(hash((i, j)) for j in range(8))
        index.record(replica, system + own if i % 100 == 1 else own)
        if i in (conversations // 10, conversations // 2, conversations):
            checkpoints[i] = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    used = checkpoints[conversations]
    return {
        "conversations": conversations,
        "bytes_after_conversations": checkpoints,
        "total_bytes": used,
        "index_blocks": len(index),
        "index_cap_blocks": routing.index_max_blocks,
        "affinity_entries": len(affinity),
        "affinity_cap": routing.local_affinity_max,
    }


def component_bytes(n: int = 100_000) -> dict:
    """Bytes per prefix block and per affinity entry, each measured alone."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    index = PrefixIndex(n, 3600)
    for i in range(0, n, 50):
        index.record(REPLICAS[i % 4], [(i + j) * 2654435761 for j in range(50)])
    per_block = (tracemalloc.get_traced_memory()[0] - base) / len(index)
    del index
    base = tracemalloc.get_traced_memory()[0]
    table = LocalAffinity(n, 3600)
    for i in range(n):
        table.put(f"0123456789abcdef01234567:conversation-{i:06d}", "a1b2c3d4")
    per_entry = (tracemalloc.get_traced_memory()[0] - base) / len(table)
    tracemalloc.stop()
    return {"bytes_per_prefix_block": per_block, "bytes_per_local_affinity_entry": per_entry}


async def _redis_affinity(url: str, conversations: int) -> dict:
    store = RedisContextStore(url, max_turns=50, ttl_s=3600, op_timeout_s=5)
    affinity = StoreAffinity(store, "bench-deployment")
    info = await store._redis.info("memory")
    before = info["used_memory"]
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        key = ConversationKey("0123456789abcdef01234567", f"conversation-{i:06d}")
        async with sem:
            await affinity.remember(f"{key.owner}:{key.conversation_id}", REPLICAS[i % 4])

    begin = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(conversations)))
    elapsed = time.perf_counter() - begin
    after = (await store._redis.info("memory"))["used_memory"]
    lookups = []
    for i in range(0, conversations, max(1, conversations // 500)):
        t0 = time.perf_counter()
        await affinity.lookup(f"0123456789abcdef01234567:conversation-{i:06d}")
        lookups.append((time.perf_counter() - t0) * 1e3)
    await store.close()
    return {"conversations": conversations, "router_bytes": 0,
            "redis_used_memory_growth_bytes": after - before,
            "redis_bytes_per_conversation": (after - before) / conversations,
            "write_rate_per_s": conversations / elapsed, "lookup_ms": summary(lookups)}


def redis_affinity_bytes(url: str, conversations: int) -> dict:
    """Affinity records for `conversations` conversations in Redis (each a meta hash with
    one field, as when the record comes first; beside a stored conversation it adds one
    field to an existing hash)."""
    return asyncio.run(_redis_affinity(url, conversations))


def per_request_cost(tokenizer, system_text: str, iterations: int = 200) -> dict:
    """Router CPU per request: fingerprint (tokenize the templated prompt and hash its
    blocks), prefix match, record, rank."""
    messages = [{"role": "system", "content": system_text},
                {"role": "user", "content": "What should I see first?"}]
    index = PrefixIndex(200_000, 600)
    params = ScoringParams()
    rng = random.Random(0)
    fingerprint, route = [], []
    for i in range(iterations):
        messages[-1]["content"] = f"Question {i}: what should I see first?"
        t0 = time.perf_counter()
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer.encode(text, add_special_tokens=False)
        blocks = block_hashes(ids[:4096], 16)
        t1 = time.perf_counter()
        matches = index.match(blocks, REPLICAS[:2])
        loads = [ReplicaLoad(r, rng.randint(0, 4)) for r in REPLICAS[:2]]
        ranking = rank_replicas(loads, Signals(None, matches), params, rng)
        index.record(ranking.first, blocks)
        t2 = time.perf_counter()
        fingerprint.append((t1 - t0) * 1e3)
        route.append((t2 - t1) * 1e3)
    return {"prompt_tokens": len(ids), "blocks": len(blocks),
            "fingerprint_ms": summary(fingerprint), "match_rank_record_ms": summary(route)}
