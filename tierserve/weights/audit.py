"""The weights audit log: one JSON object per line for every publish and every reload
decision — who, what, when, result. Append-only: each record is one write() on a file
opened with O_APPEND, under an exclusive flock, followed by fsync, so records from
several processes never interleave and survive a crash once `record` returns.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import logging
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

RESULTS = ("ok", "refused", "failed", "restored", "skipped")


def default_actor(role: str = "") -> str:
    """`user@host[:pid]`: who did it (a CLI user, or a replica process)."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry inside some containers
        user = str(os.getuid())
    suffix = f":{os.getpid()}" if role == "replica" else ""
    return f"{user}@{socket.gethostname()}{suffix}"


STREAM = "tierserve:audit"
"""Redis stream that also receives every record when a Redis URL is given (the same stream
as the router's admin audit, security.audit.redis_stream's default; docs/security.md)."""


class AuditLog:
    def __init__(self, path: str | os.PathLike[str], redis_url: str | None = None,
                 stream: str = STREAM):
        self.path = Path(os.path.expanduser(str(path)))
        self.redis_url, self.stream = redis_url, stream
        self._redis = None

    def record(self, event: str, *, actor: str, result: str, track: str,
               version: int | None, **details) -> dict:
        """Append one record and return it. `result` is one of RESULTS."""
        if result not in RESULTS:
            raise ValueError(f"result must be one of {RESULTS}, not {result!r}")
        now = time.time()
        entry = {
            "ts": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
            "unix": round(now, 3), "event": event, "actor": actor, "track": track,
            "version": version, "result": result, **details,
        }
        line = (json.dumps(entry, sort_keys=False, default=str) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a writer died mid-line
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the flock
        if self.redis_url:
            self._mirror(entry)
        return entry

    def _mirror(self, entry: dict) -> None:
        """XADD the record; best effort: the file above is the durable copy."""
        try:
            if self._redis is None:
                import redis

                self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=1,
                                                   socket_connect_timeout=1)
            self._redis.xadd(self.stream, {"record": json.dumps(entry, default=str)},
                             maxlen=1_000_000, approximate=True)
        except Exception as err:
            self._redis = None
            log.warning("weights audit: redis stream %s unavailable: %s", self.stream, err)


def read_audit(path: str | os.PathLike[str]) -> list[dict]:
    """All records, oldest first; a torn last line (crash mid-write) is skipped."""
    path = Path(os.path.expanduser(str(path)))
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
