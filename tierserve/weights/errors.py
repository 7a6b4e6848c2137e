"""Typed errors of the weight store and hot reload.

They subclass the platform's TierServeError, so they pickle across Ray and print as
one clear line in the CLI; none of them reaches an inference client (a reload never
fails a request).
"""

from __future__ import annotations

from tierserve.errors import EngineFailure, TierServeError


class WeightsError(TierServeError):
    """Base of every weight-store error."""

    error_type = "weights_error"


class VersionNotFound(WeightsError):
    """The track or version does not exist in the store."""


class VersionExists(WeightsError):
    """Versions are immutable: this number is already published."""


class VersionNotNewer(WeightsError):
    """A version not newer than the one loaded (or published) was offered."""


class BadSource(WeightsError):
    """The directory to publish is not a loadable model checkpoint."""


class ChecksumMismatch(WeightsError):
    """A file of a version does not match its manifest (corrupted, truncated, tampered)."""

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(message)
        self.path = path


class WeightsLoadFailed(EngineFailure):
    """The engine failed to load a verified version; `restored` says whether the previous
    weights were put back (the replica keeps serving them) or the engine is unusable."""

    def __init__(self, message: str, *, restored: bool):
        super().__init__(message)
        self.restored = restored
