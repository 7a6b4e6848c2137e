"""Which replica recently served which prompt prefix, in bounded memory (pure).

A prompt is fingerprinted as chained hashes of its full token blocks, the way vLLM keys
its prefix cache: block i's hash covers tokens 0 .. (i+1)*block-1, so one hash names a
whole prefix and a match is the run of leading blocks a replica has served. The index
keeps one small int per remembered block (which replicas served it, when), in LRU
order, capped in count and aged out by TTL.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

MAX_REPLICAS = 64
"""Replicas one index tells apart (bits of the per-block mask); more go untracked."""
_MASK = (1 << MAX_REPLICAS) - 1
_TICKS_PER_S = 10  # touch times are kept in tenths of a second, packed beside the mask


def block_hashes(token_ids: Sequence[int], block_tokens: int,
                 max_blocks: int | None = None) -> tuple[int, ...]:
    """Chained hashes of the full `block_tokens`-token blocks of `token_ids` (a partial
    last block is not hashed, as in vLLM). Python's int/tuple hashing is not salted, so
    the hashes are stable across processes."""
    count = len(token_ids) // block_tokens
    if max_blocks is not None:
        count = min(count, max_blocks)
    out, prev = [], 0
    for i in range(count):
        prev = hash((prev, *token_ids[i * block_tokens:(i + 1) * block_tokens]))
        out.append(prev)
    return tuple(out)


class PrefixIndex:
    """Per-replica recently served prefix blocks of one deployment.

    Memory is bounded by `max_blocks` entries whatever the traffic; a block not served
    for `ttl_s` seconds no longer matches and is dropped on the next write.
    """

    def __init__(self, max_blocks: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic):
        if max_blocks < 1 or ttl_s <= 0:
            raise ValueError("max_blocks must be >= 1 and ttl_s > 0")
        self.max_blocks = max_blocks
        self.ttl_s = ttl_s
        self._clock = clock
        # block hash -> (touch tick << MAX_REPLICAS) | replica bit mask; oldest first.
        self._entries: OrderedDict[int, int] = OrderedDict()
        self._bits: dict[str, int] = {}
        self.evicted_total = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def replicas(self) -> list[str]:
        return list(self._bits)

    def _tick(self) -> int:
        return int(self._clock() * _TICKS_PER_S)

    def _bit_for(self, replica: str) -> int | None:
        bit = self._bits.get(replica)
        if bit is None:
            used = set(self._bits.values())
            free = next((b for b in range(MAX_REPLICAS) if b not in used), None)
            if free is None:
                return None
            bit = self._bits[replica] = free
        return bit

    def record(self, replica: str, blocks: Sequence[int]) -> None:
        """`replica` just served a prompt starting with `blocks`."""
        bit = self._bit_for(replica)
        if bit is None or not blocks:
            return
        flag, tick = 1 << bit, self._tick()
        stamp = tick << MAX_REPLICAS
        entries = self._entries
        # Newest last; the leading blocks go in last so that LRU eviction trims prompts
        # from their tails, never leaving a tail without its prefix.
        for block in reversed(blocks):
            old = entries.pop(block, 0)
            entries[block] = stamp | (old & _MASK) | flag
        self._evict(tick)

    def _evict(self, tick: int) -> None:
        entries = self._entries
        oldest_alive = tick - int(self.ttl_s * _TICKS_PER_S)
        while entries:
            block, packed = next(iter(entries.items()))
            if len(entries) <= self.max_blocks and packed >> MAX_REPLICAS >= oldest_alive:
                break
            del entries[block]
            self.evicted_total += 1

    def match(self, blocks: Sequence[int], replicas: Iterable[str]) -> dict[str, int]:
        """Leading blocks of `blocks` each replica served recently (0 when none)."""
        result = dict.fromkeys(replicas, 0)
        bits = {r: 1 << self._bits[r] for r in result if r in self._bits}
        alive = 0
        for flag in bits.values():
            alive |= flag
        oldest_alive = self._tick() - int(self.ttl_s * _TICKS_PER_S)
        for depth, block in enumerate(blocks, start=1):
            packed = self._entries.get(block)
            if packed is None or packed >> MAX_REPLICAS < oldest_alive:
                break
            alive &= packed
            if not alive:
                break
            for replica, flag in bits.items():
                if alive & flag:
                    result[replica] = depth
        return result

    def drop_replica(self, replica: str) -> None:
        """Forget a replica that is gone (its blocks and its bit)."""
        bit = self._bits.pop(replica, None)
        if bit is None:
            return
        keep = ~(1 << bit)
        entries = self._entries
        for block in list(entries):
            packed = entries[block] & keep
            if packed & _MASK:
                entries[block] = packed
            else:
                del entries[block]

    def retain(self, replicas: Iterable[str]) -> None:
        """Forget every replica not in `replicas`."""
        keep = set(replicas)
        for replica in [r for r in self._bits if r not in keep]:
            self.drop_replica(replica)
