"""A replica following its track in the weight store: notice, check, verify, reload.

One WeightsFollower lives in each hot-reloading tier replica. It starts the engine on
the newest good version, then waits for announcements (or polls) and, for each new
version: refuses it unless it is newer than the loaded one; takes the deployment's
reload lease (so replicas reload one at a time); verifies every checksum and the
architecture BEFORE the engine sees a byte; asks the engine to reload in place (the
engine puts the previous weights back if that fails); reports the loaded version; and
writes every decision to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Protocol

from tierserve.weights.announce import Announcer, make_announcer
from tierserve.weights.audit import AuditLog, default_actor
from tierserve.weights.compat import check_compatible
from tierserve.weights.errors import ChecksumMismatch, WeightsError, WeightsLoadFailed
from tierserve.weights.lease import LeaseTimeout, ReloadLease, make_lease
from tierserve.weights.plan import plan_reload
from tierserve.weights.spec import ReplicaWeightsSpec
from tierserve.weights.store import WeightStore, make_store
from tierserve.weights.verify import OpenedWeights, WeightsOpener, make_opener

log = logging.getLogger(__name__)

START_CANDIDATES = 3
"""Newest versions a starting replica tries before falling back to the deployed checkpoint."""


class Reloadable(Protocol):
    async def reload_weights(self, path: str, label: str | None = None) -> dict:
        """Swap in the checkpoint at `path`; raise WeightsLoadFailed (previous weights
        restored or not) on failure; return timings ({'pause_s', 'load_s'})."""


class WeightsFollower:
    def __init__(self, spec: ReplicaWeightsSpec, actor: str | None = None, *,
                 store: WeightStore | None = None, announcer: Announcer | None = None,
                 lease: ReloadLease | None = None, audit: AuditLog | None = None,
                 opener: WeightsOpener | None = None):
        self.spec = spec
        self.actor = actor or default_actor("replica")
        self.store = store or make_store(spec.store, spec.root)
        self.announcer = announcer or make_announcer(
            spec.announce, spec.redis_url, spec.channel_prefix, spec.poll_interval_s,
            spec.redis_poll_interval_s)
        self.lease = lease or make_lease(spec.redis_url, spec.channel_prefix, spec.lease_ttl_s,
                                         spec.lease_dir, self.actor)
        self.audit = audit or AuditLog(spec.audit_log, spec.redis_url)
        self.opener = opener or make_opener(spec.opener, **spec.opener_options)
        self.current: OpenedWeights | None = None
        self.loaded_at: float | None = None
        self.reloads = 0
        self.last: dict | None = None
        """The latest audit record this replica wrote (shown in info())."""
        self._engine: Reloadable | None = None
        self._seen: set[int] = set()
        self._skip: set[int] = set()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    @property
    def version(self) -> int:
        """The loaded version; 0 is the checkpoint the deployment was configured with."""
        return self.current.version if self.current is not None else 0

    def _record(self, event: str, result: str, version: int | None, **details) -> dict:
        self.last = self.audit.record(event, actor=self.actor, result=result,
                                      track=self.spec.track, version=version,
                                      deployment=self.spec.lease_key, **details)
        return self.last

    async def _refuse(self, version: int, reason: str, detail: str, trigger: str,
                      reject: bool = False) -> None:
        self._skip.add(version)
        log.warning("weights v%d of %s refused (%s): %s", version, self.spec.track, reason, detail)
        if reject:
            await asyncio.to_thread(self.store.reject, self.spec.track, version,
                                    f"{reason}: {detail}", self.actor)
        self._record("reload", "refused", version, reason=reason, detail=detail,
                     trigger=trigger, loaded_version=self.version)

    async def _open(self, version: int, trigger: str) -> OpenedWeights | None:
        """Verify `version` and check it fits the running engine; None when refused."""
        track = self.spec.track
        try:
            manifest = await asyncio.to_thread(self.store.manifest, track, version)
            directory = await asyncio.to_thread(self.store.fetch, track, version)
            opened = await asyncio.to_thread(self.opener.open, directory, manifest)
        except ChecksumMismatch as err:
            await self._refuse(version, "checksum", err.message, trigger, reject=True)
            return None
        except WeightsError as err:
            await self._refuse(version, "unreadable", err.message, trigger)
            return None
        if self.current is not None:
            compat = await asyncio.to_thread(check_compatible, self.current.path, opened.path)
            if not compat.ok:
                opened.release()
                await self._refuse(version, "architecture", compat.describe() + " (in-place "
                                   "reload refused: roll a redeploy, see docs/weights.md)", trigger)
                return None
        return opened

    async def initial(self, base_path: str | None) -> str | None:
        """Pick the newest verified, compatible version to start the engine from; return
        its directory, or None to start from the configured checkpoint `base_path`."""
        self.current = OpenedWeights(0, Path(base_path), None) if base_path else None
        track = self.spec.track
        try:
            available = await asyncio.to_thread(self.store.versions, track)
            rejected = await asyncio.to_thread(self.store.rejected, track)
        except (OSError, WeightsError) as err:  # serve the configured model; retry on polls
            log.error("weight store unavailable at start (%r): starting from %s", err, base_path)
            return None
        self._seen = set(available)
        for version in sorted(set(available) - set(rejected), reverse=True)[:START_CANDIDATES]:
            opened = await self._open(version, "start")
            if opened is not None:
                self.current, self.loaded_at = opened, time.time()
                self._record("start", "ok", version, model_id=opened.manifest.model_id)
                return str(opened.path)
        return None

    def attach(self, engine: Reloadable, watch: bool = True) -> None:
        """Reload `engine` (started) from now on; `watch` starts the announcement/poll loop
        (tests drive `check()` themselves)."""
        self._engine = engine
        if watch and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        subscription = self.announcer.subscribe(self.spec.track)
        try:
            while True:
                found = await subscription.next(self.announcer.poll_interval_s)
                try:
                    await self.check("announce" if found else "poll",
                                     found.version if found else None)
                except Exception:  # the watcher must outlive any one bad version
                    log.exception("weights check of %s failed", self.spec.track)
        finally:
            await subscription.close()

    async def check(self, trigger: str = "manual", announced: int | None = None) -> dict | None:
        """Look at the store once; reload if there is a newer good version. Returns the
        audit record of the reload attempt, or None when there was nothing to load."""
        async with self._lock:
            track = self.spec.track
            available = await asyncio.to_thread(self.store.versions, track)
            rejected = await asyncio.to_thread(self.store.rejected, track)
            plan = plan_reload(self.version, available, self._seen,
                               set(rejected) | self._skip, announced)
            self._seen |= set(available)
            for version in plan.refuse:
                await self._refuse(version, "not_newer", f"version {version} is not newer than "
                                   f"the loaded version {self.version}", trigger)
            if plan.load is None:
                return None
            return await self._reload(plan.load, trigger)

    async def _reload(self, version: int, trigger: str) -> dict | None:
        asked = time.monotonic()
        try:
            async with self.lease.hold(self.spec.lease_key, self.spec.lease_wait_s):
                waited = time.monotonic() - asked
                rejected = await asyncio.to_thread(self.store.rejected, self.spec.track)
                if version in rejected:  # another replica found it bad while we waited
                    self._skip.add(version)
                    return self._record("reload", "skipped", version, trigger=trigger,
                                        detail=f"rejected by another replica: {rejected[version]}")
                opened = await self._open(version, trigger)
                if opened is None:
                    return self.last
                return await self._swap(opened, trigger, waited)
        except LeaseTimeout as err:
            log.warning("%s; will retry", err.message)
            return self._record("reload", "skipped", version, trigger=trigger, detail=err.message)

    async def _swap(self, opened: OpenedWeights, trigger: str, lease_wait_s: float) -> dict:
        previous, started = self.current, time.time()
        try:
            timings = await self._engine.reload_weights(str(opened.path), f"v{opened.version}")
        except Exception as err:
            opened.release()
            restored = isinstance(err, WeightsLoadFailed) and err.restored
            detail = getattr(err, "message", repr(err))
            self._skip.add(opened.version)
            await asyncio.to_thread(self.store.reject, self.spec.track, opened.version,
                                    f"load failed: {detail}", self.actor)
            log.error("weights v%d failed to load (%s): %s", opened.version,
                      "previous weights restored" if restored else "ENGINE UNUSABLE", detail)
            return self._record("reload", "restored" if restored else "failed", opened.version,
                                trigger=trigger, detail=detail, loaded_version=self.version)
        self.current, self.loaded_at = opened, time.time()
        self.reloads += 1
        if previous is not None:
            previous.release()
        return self._record(
            "reload", "ok", opened.version, trigger=trigger, model_id=opened.manifest.model_id,
            from_version=previous.version if previous else 0, started_at=round(started, 3),
            finished_at=round(self.loaded_at, 3), lease_wait_s=round(lease_wait_s, 3),
            **{k: round(v, 4) for k, v in (timings or {}).items()})

    def status(self) -> dict:
        current = self.current
        return {
            "track": self.spec.track,
            "version": self.version,
            "model_id": current.manifest.model_id if current and current.manifest else None,
            "path": str(current.path) if current else None,
            "loaded_at": self.loaded_at,
            "reloads": self.reloads,
            "announce": self.announcer.kind,
            "last": self.last,
        }

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.current is not None:  # e.g. a decrypted copy on tmpfs (issue 11)
            self.current.release()
