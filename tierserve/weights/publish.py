"""Publish a checkpoint as the next version of a track: refuse a version that does not go
up, warn when replicas will refuse it in place, copy + hash it atomically into the store,
announce it, and audit the outcome either way."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from tierserve.weights.announce import Announcement, Announcer
from tierserve.weights.audit import AuditLog
from tierserve.weights.compat import check_compatible
from tierserve.weights.errors import VersionNotNewer, WeightsError
from tierserve.weights.manifest import Manifest, Progress, check_checkpoint
from tierserve.weights.store import WeightStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    manifest: Manifest
    subscribers: int | None
    """Replicas that received the Redis announcement (None when polling)."""
    announce_error: str | None
    warnings: tuple[str, ...]


def source_bytes(source: Path) -> int:
    return sum((source / rel).stat().st_size for rel in check_checkpoint(source))


def _preflight(store: WeightStore, track: str, source: Path, version: int | None) -> list[str]:
    """Refuse a version number that does not go up; warn about an architecture change."""
    check_checkpoint(source)
    versions = store.versions(track)
    latest = max(versions, default=0)
    if version is not None and version <= latest:
        raise VersionNotNewer(
            f"version {version} is not newer than the latest of track {track} ({latest}); "
            "versions only go up — to roll back, publish the old weights again as a new version")
    if not versions:
        return []
    from tierserve.security.crypto import is_encrypted_dir

    if is_encrypted_dir(source):  # no key here: replicas compare the decrypted checkpoints
        return []
    compat = check_compatible(store.fetch(track, latest), source)
    if compat.ok:
        return []
    return [f"replicas will refuse this version in place ({compat.describe()}); roll it out "
            "by redeploying with the new checkpoint (docs/weights.md#architecture-changes)"]


async def _announce(announcer: Announcer, manifest: Manifest) -> tuple[int | None, str | None]:
    try:
        count = await announcer.announce(Announcement(manifest.track, manifest.version,
                                                      manifest.publisher, time.time()))
        return count, None
    except Exception as err:  # published all the same: replicas will find it by polling
        return None, repr(err)


async def publish_weights(store: WeightStore, audit: AuditLog, announcer: Announcer, track: str,
                          source: Path, *, publisher: str, version: int | None = None,
                          model_id: str | None = None, progress: Progress | None = None
                          ) -> Published:
    source = Path(source).expanduser().resolve()
    begin = time.monotonic()
    try:
        warnings = await asyncio.to_thread(_preflight, store, track, source, version)
        manifest = await asyncio.to_thread(
            store.publish, track, source, publisher=publisher, model_id=model_id,
            version=version, progress=progress)
    except WeightsError as err:
        result = "refused" if isinstance(err, VersionNotNewer) else "failed"
        audit.record("publish", actor=publisher, result=result, track=track, version=version,
                     source=str(source), detail=err.message)
        raise
    subscribers, announce_error = await _announce(announcer, manifest)
    audit.record("publish", actor=publisher, result="ok", track=track, version=manifest.version,
                 model_id=manifest.model_id, source=str(source), files=len(manifest.files),
                 total_bytes=manifest.total_bytes, seconds=round(time.monotonic() - begin, 3),
                 announce=announcer.kind, subscribers=subscribers, announce_error=announce_error,
                 warnings=list(warnings))
    return Published(manifest, subscribers, announce_error, tuple(warnings))
