"""The manifest of one weight version: what it is, who published it, and the sha256 and
size of every file. Pure data plus hashing; no store, no engine.

A manifest is written once, when the version is published, as `manifest.json` at the
top of the version directory, and never changes afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tierserve.weights.errors import BadSource, ChecksumMismatch

MANIFEST_NAME = "manifest.json"
SCHEMA = 1
CHUNK_BYTES = 8 << 20
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
ENCRYPTED_SUFFIX = ".tsenc"
"""A weight file encrypted at rest (`tierserve keys encrypt-weights`, docs/security.md)."""

Progress = Callable[[int], None]
"""Called with the number of bytes just processed (drives a progress bar)."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    """Relative to the version directory, '/'-separated."""
    sha256: str
    size: int
    """Bytes."""


@dataclass(frozen=True)
class Manifest:
    track: str
    """Store prefix the version belongs to (a tier id, or a variant's own track)."""
    version: int
    model_id: str
    created_at: str
    """ISO 8601, UTC."""
    publisher: str
    files: tuple[FileEntry, ...]
    architectures: tuple[str, ...] = ()
    schema: int = SCHEMA
    extra: dict = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def entry(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    def to_json(self) -> str:
        data = asdict(self)
        data["total_bytes"] = self.total_bytes
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> Manifest:
        try:
            data = json.loads(text)
            files = tuple(FileEntry(str(f["path"]), str(f["sha256"]), int(f["size"]))
                          for f in data["files"])
            return cls(
                track=str(data["track"]), version=int(data["version"]),
                model_id=str(data["model_id"]), created_at=str(data["created_at"]),
                publisher=str(data["publisher"]), files=files,
                architectures=tuple(data.get("architectures", ())),
                schema=int(data.get("schema", SCHEMA)), extra=dict(data.get("extra", {})),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise ChecksumMismatch(f"{source} is not a valid manifest: {err!r}") from None


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_chunks(path: Path, progress: Progress | None = None) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            if progress is not None:
                progress(len(chunk))
            yield chunk


def hash_file(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    for chunk in read_chunks(path, progress):
        digest.update(chunk)
    return digest.hexdigest()


def source_files(directory: Path) -> list[str]:
    """Files of a checkpoint directory to publish: every regular file, recursively,
    except hidden ones (.git, caches, markers) and an old manifest; sorted."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            rel = Path(root, name).relative_to(directory).as_posix()
            if not name.startswith(".") and rel != MANIFEST_NAME:
                found.append(rel)
    return sorted(found)


def check_checkpoint(directory: Path) -> list[str]:
    """The files to publish; BadSource unless this looks like a loadable HF checkpoint."""
    if not directory.is_dir():
        raise BadSource(f"{directory} is not a directory")
    files = source_files(directory)
    if "config.json" not in files:
        raise BadSource(f"{directory} has no config.json: not a model checkpoint")
    if not any(f.removesuffix(ENCRYPTED_SUFFIX).endswith(WEIGHT_SUFFIXES) for f in files):
        raise BadSource(f"{directory} has no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    return files


def architectures_of(directory: Path) -> tuple[str, ...]:
    try:
        data = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    return tuple(data.get("architectures") or ())
