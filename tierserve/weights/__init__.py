"""Versioned weights and hot reload: a store of immutable, checksummed versions per
track, announcements, one-at-a-time reload leases, and an audit log (docs/weights.md).

Imports neither Ray nor vLLM; the engine side of a reload lives in
tierserve/deployments/vllm_engine.py.
"""

from tierserve.weights.errors import (
    ChecksumMismatch,
    VersionNotNewer,
    WeightsError,
    WeightsLoadFailed,
)
from tierserve.weights.manifest import Manifest
from tierserve.weights.store import LocalWeightStore, WeightStore, make_store

__all__ = [
    "ChecksumMismatch", "LocalWeightStore", "Manifest",
    "VersionNotNewer", "WeightStore", "WeightsError", "WeightsLoadFailed", "make_store",
]
