"""How replicas learn that a version was published: Redis pub/sub when Redis is
configured, polling the store otherwise.

An announcement is only a wake-up call carrying a version number: replicas always read
the store itself before acting, so a lost, duplicated or forged message can make a
replica look sooner, never load something the store does not hold and verify. With
Redis, replicas still poll (slowly) as a safety net for messages missed while
disconnected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announcement:
    track: str
    version: int
    publisher: str = ""
    at: float = 0.0
    """Unix time of the publish."""

    def encode(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes | str) -> Announcement | None:
        try:
            data = json.loads(raw)
            return cls(str(data["track"]), int(data["version"]), str(data.get("publisher", "")),
                       float(data.get("at", 0.0)))
        except (ValueError, KeyError, TypeError):
            return None


class Subscription(Protocol):
    async def next(self, timeout_s: float) -> Announcement | None:
        """The next announcement for the track, or None after `timeout_s` (time to poll)."""

    async def close(self) -> None: ...


class Announcer(Protocol):
    kind: str
    poll_interval_s: float
    """How often subscribers poll the store besides listening."""

    async def announce(self, announcement: Announcement) -> None: ...

    def subscribe(self, track: str) -> Subscription: ...


class _Sleep:
    async def next(self, timeout_s: float) -> Announcement | None:
        await asyncio.sleep(timeout_s)
        return None

    async def close(self) -> None:
        return None


class PollingAnnouncer:
    """No messages: replicas find new versions by listing the store every interval."""

    kind = "poll"

    def __init__(self, poll_interval_s: float):
        self.poll_interval_s = poll_interval_s

    async def announce(self, announcement: Announcement) -> None:
        return None

    def subscribe(self, track: str) -> Subscription:
        return _Sleep()


class _RedisSubscription:
    def __init__(self, url: str, channel: str, track: str):
        self.url, self.channel, self.track = url, channel, track
        self._client = None
        self._pubsub = None

    async def _connect(self) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(self.url, socket_connect_timeout=2.0)
        self._pubsub = self._client.pubsub()
        await self._pubsub.subscribe(self.channel)

    async def next(self, timeout_s: float) -> Announcement | None:
        deadline = time.monotonic() + timeout_s
        try:
            if self._pubsub is None:
                await self._connect()
            while (left := deadline - time.monotonic()) > 0:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True,
                                                         timeout=min(left, 1.0))
                if message is None or message.get("type") != "message":
                    continue
                found = Announcement.decode(message["data"])
                if found is not None and found.track == self.track:
                    return found
        except Exception as err:  # Redis down: fall back to polling until it is back
            log.warning("weights announcements on %s unavailable (%r); polling", self.channel, err)
            await self.close()
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        return None

    async def close(self) -> None:
        pubsub, client, self._pubsub, self._client = self._pubsub, self._client, None, None
        for closing in (pubsub, client):
            if closing is not None:
                try:
                    await closing.aclose()
                except Exception:  # already broken
                    pass


class RedisAnnouncer:
    """PUBLISH on `<prefix>:<track>`; replicas SUBSCRIBE to their track's channel."""

    kind = "redis"

    def __init__(self, url: str, channel_prefix: str, poll_interval_s: float):
        self.url = url
        self.channel_prefix = channel_prefix
        self.poll_interval_s = poll_interval_s

    def channel(self, track: str) -> str:
        return f"{self.channel_prefix}:{track}"

    async def announce(self, announcement: Announcement) -> int:
        """Publish; returns how many subscribers received it."""
        import redis.asyncio as redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=2.0)
        try:
            channel = self.channel(announcement.track)
            return int(await client.publish(channel, announcement.encode()))
        finally:
            await client.aclose()

    def subscribe(self, track: str) -> Subscription:
        return _RedisSubscription(self.url, self.channel(track), track)


def make_announcer(mode: str, redis_url: str | None, channel_prefix: str,
                   poll_interval_s: float, redis_poll_interval_s: float) -> Announcer:
    """'auto' uses Redis when a URL is configured; 'redis' insists on it; 'poll' never."""
    from tierserve.errors import ConfigError

    if mode == "redis" and not redis_url:
        raise ConfigError("weights.announce is 'redis' but no Redis URL is configured (REDIS_URL)")
    if mode in ("auto", "redis") and redis_url:
        return RedisAnnouncer(redis_url, channel_prefix, redis_poll_interval_s)
    return PollingAnnouncer(poll_interval_s)
