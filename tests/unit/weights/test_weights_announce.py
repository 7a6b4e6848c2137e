"""Announcements over a real redis-server, and the fall-back to polling."""

import asyncio
import time

import pytest

from tierserve.errors import ConfigError
from tierserve.weights.announce import (
    Announcement,
    PollingAnnouncer,
    RedisAnnouncer,
    make_announcer,
)


async def test_a_published_version_reaches_subscribers_of_its_track(redis_server):
    announcer = RedisAnnouncer(redis_server.url, "tierserve:weights", 60)
    seven, other = announcer.subscribe("7b"), announcer.subscribe("33b")
    assert await seven.next(0.3) is None  # connects and subscribes; nothing yet
    assert await other.next(0.1) is None
    sent = Announcement("7b", 4, "alice", time.time())
    assert await announcer.announce(sent) == 1  # one subscriber on the 7b channel
    assert await seven.next(2) == sent
    assert await other.next(0.3) is None  # another track's message is ignored
    await seven.close()
    await other.close()


async def test_garbage_on_the_channel_is_ignored(redis_server):
    import redis.asyncio as redis

    announcer = RedisAnnouncer(redis_server.url, "p", 60)
    sub = announcer.subscribe("7b")
    await sub.next(0.2)
    client = redis.Redis.from_url(redis_server.url)
    await client.publish("p:7b", "not json")
    await client.publish("p:7b", Announcement("7b", 2).encode())
    assert (await sub.next(2)).version == 2
    await client.aclose()
    await sub.close()


async def test_redis_going_away_degrades_to_polling_and_recovers(tmp_path):
    from tests.fixtures.redis_server import start_redis

    server = start_redis(tmp_path)
    announcer = RedisAnnouncer(server.url, "p", 60)
    sub = announcer.subscribe("7b")
    await sub.next(0.2)
    server.kill()
    begin = time.monotonic()
    assert await sub.next(0.5) is None  # times out like a poll tick, no exception
    assert time.monotonic() - begin < 3
    server.start()
    assert await sub.next(0.5) is None  # reconnects
    await announcer.announce(Announcement("7b", 9))
    assert (await sub.next(2)).version == 9
    await sub.close()
    server.stop()


async def test_polling_announcer_only_ticks():
    announcer = PollingAnnouncer(0.05)
    assert await announcer.announce(Announcement("7b", 1)) is None
    begin = time.monotonic()
    assert await announcer.subscribe("7b").next(0.05) is None
    assert time.monotonic() - begin >= 0.04


def test_announcer_choice_follows_config():
    assert make_announcer("auto", None, "p", 5, 60).kind == "poll"
    assert make_announcer("auto", "redis://x", "p", 5, 60).kind == "redis"
    assert make_announcer("poll", "redis://x", "p", 5, 60).kind == "poll"
    assert make_announcer("redis", "redis://x", "p", 5, 60).poll_interval_s == 60
    with pytest.raises(ConfigError, match="REDIS_URL"):
        make_announcer("redis", None, "p", 5, 60)


async def test_announce_fails_loudly_when_redis_is_down():
    announcer = RedisAnnouncer("redis://127.0.0.1:1/0", "p", 60)
    with pytest.raises(Exception):
        await asyncio.wait_for(announcer.announce(Announcement("7b", 1)), 10)
