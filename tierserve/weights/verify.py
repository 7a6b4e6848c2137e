"""Verify a version before anything loads it, and hand the engine a directory to load.

This is the one seam between "bytes in the store" and "a path vLLM reads". The default
opener checks every file against the manifest (size, sha256; no file missing, none
extra) and returns the version directory itself. Weights encrypted at rest (issue 11)
plug in here as another opener: verify the stored bytes, decrypt to tmpfs, return that
directory, and remove it in `release()` once a newer version has replaced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tierserve.errors import ConfigError
from tierserve.weights.errors import ChecksumMismatch
from tierserve.weights.manifest import Manifest, Progress, hash_file, source_files


def verify_files(directory: Path, manifest: Manifest, progress: Progress | None = None) -> None:
    """Raise ChecksumMismatch naming the first file that differs from the manifest."""
    present = set(source_files(directory))
    listed = {f.path for f in manifest.files}
    extra = sorted(present - listed)
    if extra:
        raise ChecksumMismatch(f"{directory}: files not in the manifest: {extra[:5]}",
                               path=extra[0])
    for entry in manifest.files:
        path = directory / entry.path
        if not path.is_file():
            raise ChecksumMismatch(f"{entry.path}: missing", path=entry.path)
        size = path.stat().st_size
        if size != entry.size:
            raise ChecksumMismatch(f"{entry.path}: {size} bytes, manifest says {entry.size}",
                                   path=entry.path)
        digest = hash_file(path, progress)
        if digest != entry.sha256:
            raise ChecksumMismatch(f"{entry.path}: sha256 {digest[:16]}… does not match the "
                                   f"manifest's {entry.sha256[:16]}…", path=entry.path)


@dataclass
class OpenedWeights:
    """A verified version, ready for the engine at `path`."""

    version: int
    path: Path
    manifest: Manifest | None
    """None for the configured base checkpoint (version 0), which has no manifest."""
    release: Callable[[], None] = field(default=lambda: None)
    """Frees what opening created (e.g. a decrypted copy); called when replaced."""


class WeightsOpener(Protocol):
    def open(self, directory: Path, manifest: Manifest) -> OpenedWeights:
        """Verify the stored files and return what the engine should load; raise
        ChecksumMismatch (or another WeightsError) to refuse the version."""


OPENERS: dict[str, Callable[..., WeightsOpener]] = {}


def register_opener(name: str):
    def wrap(factory):
        OPENERS[name] = factory
        return factory

    return wrap


def make_opener(name: str, **options) -> WeightsOpener:
    """The opener registered as `name`, built with `options` (e.g. a key file)."""
    try:
        factory = OPENERS[name]
    except KeyError:
        raise ConfigError(f"unknown weights opener {name!r}; known: {sorted(OPENERS)}") from None
    return factory(**options)


@register_opener("encrypted")
def _encrypted_opener(**options) -> WeightsOpener:
    """Weights encrypted at rest: verify the stored bytes, decrypt to tmpfs
    (tierserve/security/weights_opener.py; options: key_file, tmpfs_dir)."""
    from tierserve.security.weights_opener import EncryptedOpener

    return EncryptedOpener(**options)


@register_opener("plain")
class VerifyingOpener:
    """Clear files on disk: verify them in place, load them from where they are."""

    def open(self, directory: Path, manifest: Manifest) -> OpenedWeights:
        verify_files(directory, manifest)
        return OpenedWeights(manifest.version, directory, manifest)
