"""Versioned weight stores, chosen by name from config (`weights.store`).

Layout (the same keys on a local disk or under an object-store prefix):

    <root>/<track>/v000003/manifest.json       one immutable directory per version
    <root>/<track>/v000003/config.json, model.safetensors, tokenizer.json, ...
    <root>/<track>/_rejected/v000003.json      a replica refused or failed to load it

A track is what one deployment follows: a tier id ('7b'), or a variant's own track (e.g.
'7b-int8', since an INT8 variant cannot load FP32 weights). Versions are integers that
only go up; publishing writes into a temporary directory and renames it into place, so a
reader sees either nothing or the complete version with its manifest.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from tierserve.config import NAME_PATTERN
from tierserve.errors import ConfigError
from tierserve.weights.errors import VersionExists, VersionNotFound, WeightsError
from tierserve.weights.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    Progress,
    architectures_of,
    check_checkpoint,
    read_chunks,
    utc_now,
)

VERSION_DIR = re.compile(r"^v(\d{6,})$")
REJECTED_DIR = "_rejected"
TRACK_PATTERN = re.compile(NAME_PATTERN)  # a track may be named after a tier or a variant


def version_dir_name(version: int) -> str:
    return f"v{version:06d}"


def check_track(track: str) -> str:
    if not TRACK_PATTERN.match(track):
        raise WeightsError(f"invalid track name {track!r} (lowercase letters, digits, '.', '-')")
    return track


@runtime_checkable
class WeightStore(Protocol):
    """Where versions live. Methods are blocking (file or network I/O): async callers run
    them in a worker thread."""

    def tracks(self) -> list[str]: ...

    def versions(self, track: str) -> list[int]:
        """Published versions of `track`, ascending (empty when none)."""

    def manifest(self, track: str, version: int) -> Manifest: ...

    def fetch(self, track: str, version: int) -> Path:
        """A local directory holding the version's files as stored (a local store returns
        the version directory itself; an object store would download it to a cache)."""

    def publish(self, track: str, source: Path, *, publisher: str, model_id: str | None = None,
                version: int | None = None, progress: Progress | None = None) -> Manifest:
        """Copy `source` in as a new version (next number unless `version` is given)."""

    def reject(self, track: str, version: int, reason: str, by: str) -> None:
        """Record that `version` must not be loaded (bad checksum, failed load)."""

    def rejected(self, track: str) -> dict[int, str]:
        """Rejected versions of `track` and why."""


STORES: dict[str, Callable[[str], WeightStore]] = {}


def register_store(name: str):
    def wrap(factory):
        STORES[name] = factory
        return factory

    return wrap


def make_store(kind: str, root: str) -> WeightStore:
    try:
        factory = STORES[kind]
    except KeyError:
        raise ConfigError(f"unknown weights.store {kind!r}; known: {sorted(STORES)}") from None
    return factory(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_hashing(src: Path, dest: Path, progress: Progress | None) -> tuple[str, int]:
    """Copy one file while hashing it (one read pass), fsync'd; (sha256, bytes)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        for chunk in read_chunks(src, progress):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


@register_store("local")
class LocalWeightStore:
    """A directory tree; on a shared volume (NFS, a mounted bucket) every replica sees it."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(os.path.expanduser(str(root)))

    def _track_dir(self, track: str) -> Path:
        return self.root / check_track(track)

    def version_path(self, track: str, version: int) -> Path:
        return self._track_dir(track) / version_dir_name(version)

    def tracks(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and TRACK_PATTERN.match(p.name))

    def versions(self, track: str) -> list[int]:
        directory = self._track_dir(track)
        if not directory.is_dir():
            return []
        found = (VERSION_DIR.match(p.name) for p in directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def manifest(self, track: str, version: int) -> Manifest:
        path = self.version_path(track, version) / MANIFEST_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise VersionNotFound(
                f"no version {version} of track {track!r} in {self.root}") from None
        return Manifest.from_json(text, str(path))

    def fetch(self, track: str, version: int) -> Path:
        path = self.version_path(track, version)
        if not (path / MANIFEST_NAME).is_file():
            raise VersionNotFound(f"no version {version} of track {track!r} in {self.root}")
        return path

    def publish(self, track: str, source: Path, *, publisher: str, model_id: str | None = None,
                version: int | None = None, progress: Progress | None = None) -> Manifest:
        source = Path(source)
        files = check_checkpoint(source)
        track_dir = self._track_dir(track)
        track_dir.mkdir(parents=True, exist_ok=True)
        tmp = track_dir / f".tmp-{uuid.uuid4().hex}"
        try:
            entries = []
            for rel in files:
                entries.append(FileEntry(rel, *_copy_hashing(source / rel, tmp / rel, progress)))
            base = Manifest(track=track, version=0, model_id=model_id or source.name,
                            created_at=utc_now(), publisher=publisher, files=tuple(entries),
                            architectures=architectures_of(source))
            return self._commit(tmp, base, version)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _commit(self, tmp: Path, base: Manifest, version: int | None) -> Manifest:
        """Write the manifest and rename the temporary directory into place; with an
        automatic number, a concurrent publisher that took it makes us try the next."""
        latest = max(self.versions(base.track), default=0)
        candidate = version if version is not None else latest + 1
        for _ in range(100):
            manifest = replace(base, version=candidate)
            with open(tmp / MANIFEST_NAME, "w", encoding="utf-8") as out:
                out.write(manifest.to_json())
                out.flush()
                os.fsync(out.fileno())
            _fsync_dir(tmp)
            final = self.version_path(base.track, candidate)
            try:
                os.rename(tmp, final)
            except OSError as err:
                if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                if version is not None:
                    raise VersionExists(f"version {version} of {base.track!r} already exists; "
                                        "versions are immutable") from None
                candidate += 1
                continue
            _fsync_dir(final.parent)
            return manifest
        raise WeightsError(f"could not allocate a version number for {base.track!r}")

    def reject(self, track: str, version: int, reason: str, by: str) -> None:
        directory = self._track_dir(track) / REJECTED_DIR
        directory.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"version": version, "reason": reason, "by": by, "at": utc_now()})
        tmp = directory / f".{version_dir_name(version)}.{uuid.uuid4().hex}"
        tmp.write_text(body + "\n", encoding="utf-8")
        os.replace(tmp, directory / f"{version_dir_name(version)}.json")

    def rejected(self, track: str) -> dict[int, str]:
        directory = self._track_dir(track) / REJECTED_DIR
        if not directory.is_dir():
            return {}
        found = {}
        for path in directory.glob("v*.json"):
            match = VERSION_DIR.match(path.stem)
            if match:
                try:
                    found[int(match.group(1))] = json.loads(path.read_text())["reason"]
                except (OSError, ValueError, KeyError):
                    found[int(match.group(1))] = "rejected"
        return found
