"""PrefixIndex: block fingerprints, matching, the memory bound, LRU/TTL eviction."""

from __future__ import annotations

import tracemalloc

import pytest

from tierserve.router import prefix_index
from tierserve.router.prefix_index import MAX_REPLICAS, PrefixIndex, block_hashes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def prompt(shared: int, own: int, tag: int, block: int = 4) -> tuple[int, ...]:
    """`shared` blocks common to all prompts, then `own` blocks unique to `tag`."""
    ids = list(range(shared * block)) + [10_000 * (tag + 1) + i for i in range(own * block)]
    return block_hashes(ids, block)


def test_block_hashes_chain_whole_blocks_only():
    a = block_hashes(list(range(35)), 16)
    assert len(a) == 2  # the 3 trailing tokens are not a block
    b = block_hashes([*range(16), 99, *range(17, 40)], 16)
    assert a[0] == b[0] and a[1] != b[1]  # same first block, then diverged
    c = block_hashes([7, *range(1, 16), *range(16, 32)], 16)
    assert c[1] != a[1]  # chained: a different first block changes every later hash
    assert block_hashes(list(range(100)), 16, max_blocks=3) == block_hashes(list(range(48)), 16)
    assert block_hashes([], 16) == ()


def test_match_counts_leading_blocks_per_replica():
    index = PrefixIndex(1000, 60, Clock())
    index.record("r1", prompt(3, 2, tag=1))
    index.record("r2", prompt(3, 0, tag=2))
    assert index.match(prompt(3, 2, tag=1), ["r1", "r2", "r3"]) == {"r1": 5, "r2": 3, "r3": 0}
    assert index.match(prompt(3, 4, tag=9), ["r1", "r2"]) == {"r1": 3, "r2": 3}
    assert index.match(prompt(0, 2, tag=1), ["r1"]) == {"r1": 0}  # no common start
    assert index.match((), ["r1"]) == {"r1": 0}


def test_size_stays_under_the_cap_and_evicts_tails_first():
    index = PrefixIndex(max_blocks=50, ttl_s=600, clock=Clock())
    for tag in range(100):
        index.record(f"r{tag % 2}", prompt(2, 8, tag))
        assert len(index) <= 50
    assert index.evicted_total > 0
    # the latest prompt is whole; an older one kept its shared prefix but lost its tail
    assert index.match(prompt(2, 8, 99), ["r1"]) == {"r1": 10}
    old = index.match(prompt(2, 8, 3), ["r1"])["r1"]
    assert 2 <= old < 10


def test_ttl_forgets_blocks_not_served_recently():
    clock = Clock()
    index = PrefixIndex(1000, ttl_s=30, clock=clock)
    index.record("r1", prompt(2, 2, 1))
    clock.now += 20
    index.record("r2", prompt(2, 0, 2))  # refreshes only the shared blocks
    clock.now += 20
    assert index.match(prompt(2, 2, 1), ["r1", "r2"]) == {"r1": 2, "r2": 2}
    index.record("r2", prompt(0, 1, 5))  # a write drops what expired
    assert len(index) == 3
    clock.now += 31
    assert index.match(prompt(2, 2, 1), ["r1", "r2"]) == {"r1": 0, "r2": 0}


def test_drop_replica_forgets_it_and_frees_its_slot():
    index = PrefixIndex(1000, 60, Clock())
    index.record("r1", prompt(2, 1, 1))
    index.record("r2", prompt(2, 0, 2))
    index.drop_replica("r1")
    assert index.match(prompt(2, 1, 1), ["r1", "r2"]) == {"r1": 0, "r2": 2}
    assert len(index) == 2  # r1's own block went with it
    index.retain(["r3"])
    assert len(index) == 0 and index.replicas == []
    index.drop_replica("never-seen")


def test_replicas_beyond_the_mask_are_ignored_not_mixed_up():
    index = PrefixIndex(10_000, 60, Clock())
    blocks = prompt(1, 0, 0)
    for i in range(MAX_REPLICAS + 3):
        index.record(f"r{i}", blocks)
    got = index.match(blocks, [f"r{i}" for i in range(MAX_REPLICAS + 3)])
    assert sum(got.values()) == MAX_REPLICAS
    assert got[f"r{MAX_REPLICAS + 2}"] == 0


def test_invalid_bounds():
    with pytest.raises(ValueError):
        PrefixIndex(0, 10)
    with pytest.raises(ValueError):
        PrefixIndex(10, 0)


def test_memory_is_bounded_by_the_block_cap():
    """3,000 prompts of 20 blocks through an index capped at 2,000 blocks: memory follows
    the cap, not the traffic (the benchmark measures 100,000 conversations)."""
    prompts = [prompt(4, 16, tag, block=2) for tag in range(3_000)]
    index = PrefixIndex(max_blocks=2_000, ttl_s=3600, clock=Clock())
    tracemalloc.start()
    early = None
    for tag, blocks in enumerate(prompts):
        index.record(f"r{tag % 4}", blocks)
        if tag == 500:
            early = _index_bytes()
    used = _index_bytes()
    tracemalloc.stop()
    assert len(index) == 2_000
    assert used <= early * 1.1, "memory grew with traffic beyond the cap"
    assert used / len(index) < 300, f"{used / len(index):.0f} bytes per block"


def _index_bytes() -> int:
    """Bytes allocated from prefix_index.py still alive; other threads (e.g. a Ray
    driver left by an earlier test) allocate meanwhile and must not count."""
    only_index = tracemalloc.Filter(True, prefix_index.__file__)
    snapshot = tracemalloc.take_snapshot().filter_traces([only_index])
    return sum(stat.size for stat in snapshot.statistics("filename"))
