from __future__ import annotations

import asyncio

from tierserve.context.memory import MemoryContextStore
from tierserve.context.store import ConversationKey, Turn


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def key(cid="c1", cred="k1"):
    return ConversationKey.for_credential(cred, cid)


async def test_append_numbers_and_caps():
    store = MemoryContextStore(max_turns=4, ttl_s=60)
    for i in range(3):
        await store.append(key(), [Turn("user", f"q{i}"), Turn("assistant", f"a{i}")])
    conv = await store.load(key())
    assert [t.content for t in conv.turns] == ["q1", "a1", "q2", "a2"]
    assert [t.seq for t in conv.turns] == [3, 4, 5, 6]


async def test_ttl_expires_and_refreshes():
    clock = Clock()
    store = MemoryContextStore(max_turns=10, ttl_s=10, clock=clock)
    await store.append(key(), [Turn("user", "q")])
    clock.now = 9
    await store.append(key(), [Turn("user", "q2")])
    clock.now = 15
    assert len((await store.load(key())).turns) == 2
    clock.now = 30
    assert not (await store.load(key())).exists


async def test_scoped_by_credential():
    store = MemoryContextStore(max_turns=10, ttl_s=10)
    await store.append(key(cred="alice"), [Turn("user", "secret")])
    assert not (await store.load(key(cred="bob"))).exists
    assert ConversationKey.for_credential(None, "c").owner == "anonymous"


async def test_concurrent_appends_keep_every_turn():
    store = MemoryContextStore(max_turns=1000, ttl_s=10)
    await asyncio.gather(*(store.append(key(), [Turn("user", f"q{i}"), Turn("assistant", f"a{i}")])
                           for i in range(50)))
    turns = (await store.load(key())).turns
    assert len(turns) == 100 and [t.seq for t in turns] == list(range(1, 101))
    for q, a in zip(turns[::2], turns[1::2]):
        assert q.content[1:] == a.content[1:], "a pair is never split by another append"


async def test_delete_and_replica_affinity():
    store = MemoryContextStore(max_turns=10, ttl_s=10)
    await store.set_replica(key(), "dep", "replica-1")
    assert await store.get_replica(key(), "dep") == "replica-1"
    assert await store.delete(key())
    assert not await store.delete(key())
