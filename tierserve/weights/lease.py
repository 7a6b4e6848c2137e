"""One replica of a deployment reloads at a time: a lease per deployment.

While one replica holds the lease (verify, pause, load, resume), the others keep
serving, so the deployment's capacity never drops to zero. Redis (SET NX PX, renewed
while held, released only by its holder) when Redis is configured; otherwise an flock
on a file beside the store (works for every replica that shares that filesystem; the
kernel drops it if the holder dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from tierserve.weights.errors import WeightsError

log = logging.getLogger(__name__)

RETRY_S = 0.1


class LeaseTimeout(WeightsError):
    """Another replica held the reload lease for longer than we were willing to wait."""


class ReloadLease(Protocol):
    kind: str

    def hold(self, key: str, wait_s: float) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait up to `wait_s` for the lease on `key`, hold it for the block, release it."""


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


class RedisLease:
    kind = "redis"

    def __init__(self, url: str, prefix: str, ttl_s: float, holder: str = ""):
        self.url, self.prefix, self.ttl_s = url, prefix, ttl_s
        self.holder = holder or uuid.uuid4().hex

    def key(self, key: str) -> str:
        return f"{self.prefix}:lease:{key}"

    async def _renew(self, client, name: str, token: str) -> None:
        ttl_ms = int(self.ttl_s * 1000)
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                if not await client.eval(_RENEW, 1, name, token, ttl_ms):
                    log.error("reload lease %s was lost (expired or taken)", name)
                    return
            except Exception as err:  # keep trying; the TTL covers us meanwhile
                log.warning("could not renew reload lease %s: %r", name, err)

    @contextlib.asynccontextmanager
    async def hold(self, key: str, wait_s: float) -> AsyncIterator[None]:
        import redis.asyncio as redis

        name, token = self.key(key), f"{self.holder}:{uuid.uuid4().hex[:8]}"
        client = redis.Redis.from_url(self.url, socket_connect_timeout=2.0)
        try:
            deadline = time.monotonic() + wait_s
            while not await client.set(name, token, nx=True, px=int(self.ttl_s * 1000)):
                if time.monotonic() > deadline:
                    holder = await client.get(name)
                    raise LeaseTimeout(
                        f"reload lease {name} held by {holder!r} for > {wait_s:.0f} s")
                await asyncio.sleep(RETRY_S)
            renew = asyncio.create_task(self._renew(client, name, token))
            try:
                yield
            finally:
                renew.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renew
                await asyncio.shield(client.eval(_RELEASE, 1, name, token))
        finally:
            await client.aclose()


class FileLease:
    kind = "file"

    def __init__(self, directory: str | os.PathLike[str], holder: str = ""):
        self.directory = Path(os.path.expanduser(str(directory)))
        self.holder = holder or f"pid {os.getpid()}"

    @contextlib.asynccontextmanager
    async def hold(self, key: str, wait_s: float) -> AsyncIterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LeaseTimeout(
                            f"reload lease {key} busy for > {wait_s:.0f} s") from None
                    await asyncio.sleep(RETRY_S)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.holder} since {time.time():.3f}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the flock


def make_lease(redis_url: str | None, prefix: str, ttl_s: float, lease_dir: Path,
               holder: str) -> ReloadLease:
    if redis_url:
        return RedisLease(redis_url, prefix, ttl_s, holder)
    return FileLease(lease_dir, holder)
