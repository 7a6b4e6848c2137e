"""The weights audit log: one JSON object per line for every publish and every reload
decision — who, what, when, result. Append-only: each record is one write() on a file
opened with O_APPEND, under an exclusive flock, followed by fsync, so records from
several processes never interleave and survive a crash once `record` returns.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = ("ok", "refused", "failed", "restored", "skipped")


def default_actor(role: str = "") -> str:
    """`user@host[:pid]`: who did it (a CLI user, or a replica process)."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry inside some containers
        user = str(os.getuid())
    suffix = f":{os.getpid()}" if role == "replica" else ""
    return f"{user}@{socket.gethostname()}{suffix}"


class AuditLog:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(os.path.expanduser(str(path)))

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
        return entry


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
