"""The audit log: who did what, when, with what result, for every admin action.

Records are appended to a JSONL file (one write per record under an exclusive lock,
then fsync) and, when Redis is configured, to a Redis stream (XADD) that every router
replica and CLI shares. Each file record carries the SHA-256 of the line before it, so
an edited or deleted line breaks the chain (`tierserve audit verify`).

The file is the durable copy: a Redis failure is logged and counted, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import getpass
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TAIL_BLOCK = 8192


@dataclass(frozen=True)
class AuditEvent:
    actor: str
    """Key id of the caller ('anonymous' when auth is disabled, 'unauthenticated' when the
    key was missing or invalid, 'cli:<user>' for command-line tools)."""
    action: str
    """What was attempted, e.g. 'GET /admin/config', 'weights.publish'."""
    result: str
    """'ok', 'denied', 'failed', or an HTTP status."""
    role: str | None = None
    target: str | None = None
    source: str | None = None
    """Client address, or the host name for command-line tools."""
    detail: dict | None = None


def _last_line(handle) -> bytes:
    """The file's last complete line (without its newline), b'' when empty."""
    end = handle.seek(0, os.SEEK_END)
    pos, tail = end, b""
    while pos > 0:
        step = min(TAIL_BLOCK, pos)
        pos -= step
        handle.seek(pos)
        tail = handle.read(step) + tail
        body = tail.rstrip(b"\n")
        cut = body.rfind(b"\n")
        if cut >= 0:
            return body[cut + 1:]
    return tail.rstrip(b"\n")


def _ends_torn(handle) -> bool:
    handle.seek(-1, os.SEEK_END)
    return handle.read(1) != b"\n"


def line_digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


class AuditLog:
    def __init__(self, path: str | os.PathLike[str], redis_url: str | None = None,
                 stream: str | None = "tierserve:audit", stream_max_len: int = 1_000_000,
                 clock: Callable[[], float] = time.time):
        self.path = Path(path).expanduser()
        self.stream = stream if redis_url else None
        self.stream_max_len = stream_max_len
        self.redis_errors_total = 0
        self.file_errors_total = 0
        self._clock = clock
        self._redis_url = redis_url
        self._aredis = None

    def _record(self, event: AuditEvent) -> dict:
        record = {"at": round(self._clock(), 6), "actor": event.actor, "role": event.role,
                  "action": event.action, "target": event.target, "result": event.result,
                  "source": event.source}
        if event.detail:
            record["detail"] = event.detail
        return record

    def append(self, event: AuditEvent) -> dict:
        """Append one record to the file (locked, fsync'd, chained); return it."""
        record = self._record(event)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                last = _last_line(handle)
                record["prev"] = line_digest(last) if last else ""
                line = json.dumps(record, ensure_ascii=False, sort_keys=True).encode()
                if handle.seek(0, os.SEEK_END) and _ends_torn(handle):
                    line = b"\n" + line  # a writer died mid-line: never glue onto it
                handle.write(line + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return record

    async def record(self, event: AuditEvent) -> dict:
        """Append to the file (in a worker thread: fsync blocks) and to the Redis stream."""
        try:
            record = await asyncio.to_thread(self.append, event)
        except OSError as err:
            self.file_errors_total += 1
            log.error("audit: cannot append to %s: %s; record: %s", self.path, err, event)
            record = self._record(event)
        if self.stream is not None:
            await self._xadd(record)
        return record

    async def _xadd(self, record: dict) -> None:
        try:
            if self._aredis is None:
                import redis.asyncio as aioredis

                self._aredis = aioredis.Redis.from_url(
                    self._redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            await self._aredis.xadd(self.stream, {"record": json.dumps(record, sort_keys=True)},
                                    maxlen=self.stream_max_len, approximate=True)
        except Exception as err:  # the file is the durable copy; Redis is best effort
            self.redis_errors_total += 1
            log.warning("audit: redis stream %s unavailable: %s", self.stream, err)
            client, self._aredis = self._aredis, None  # reconnect from scratch next time
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def record_sync(self, event: AuditEvent) -> dict:
        """For command-line tools (publish, key creation): file, then stream."""
        record = self.append(event)
        if self.stream is not None:
            try:
                import redis

                client = redis.Redis.from_url(self._redis_url, socket_timeout=2,
                                              socket_connect_timeout=2)
                client.xadd(self.stream, {"record": json.dumps(record, sort_keys=True)},
                            maxlen=self.stream_max_len, approximate=True)
                client.close()
            except Exception as err:
                self.redis_errors_total += 1
                log.warning("audit: redis stream %s unavailable: %s", self.stream, err)
        return record

    def tail(self, limit: int = 100) -> list[dict]:
        """The last `limit` records of the file (oldest first)."""
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().splitlines()[-limit:]
        return [json.loads(line) for line in lines if line.strip()]

    async def close(self) -> None:
        if self._aredis is not None:
            await self._aredis.aclose()


def cli_actor() -> tuple[str, str]:
    """Actor and source for records written by command-line tools."""
    return f"cli:{getpass.getuser()}", socket.gethostname()


@dataclass(frozen=True)
class ChainReport:
    records: int
    broken_at: int | None
    """1-based line number of the first record whose `prev` does not match, or None."""
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(path: str | os.PathLike[str]) -> ChainReport:
    """Check every record's `prev` against the digest of the line before it."""
    prev, count = "", 0
    with open(Path(path).expanduser(), "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\n")
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                return ChainReport(count, number, "not valid JSON")
            if record.get("prev") != prev:
                return ChainReport(count, number, "prev digest does not match the line before")
            prev, count = line_digest(line), count + 1
    return ChainReport(count, None)
