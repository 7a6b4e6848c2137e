"""The 'encrypted' weights opener: the weight store's verify/load seam for weights
encrypted at rest (`weights.opener: encrypted`, docs/security.md).

Opening a version: the store's manifest check of the stored (encrypted) bytes, then
`decrypt_tree` into a fresh tmpfs directory (the MAC'd encryption manifest, every GCM
tag, every clear digest), and that directory goes to vLLM; `release()` removes it once a
newer version replaced it. Any failure is a ChecksumMismatch, so the follower refuses
the version, marks it rejected in the store and audits why. A clear version in a store
configured for encryption is refused too.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from tierserve.errors import ConfigError
from tierserve.security.crypto import (
    WeightIntegrityError,
    decrypt_tree,
    is_encrypted_dir,
    key_id,
    load_key,
    sweep_stale,
)
from tierserve.weights.errors import ChecksumMismatch
from tierserve.weights.manifest import Manifest
from tierserve.weights.verify import OpenedWeights, verify_files

log = logging.getLogger(__name__)


class EncryptedOpener:
    def __init__(self, key_file: str | None = None, tmpfs_dir: str = "/dev/shm/tierserve"):
        if not key_file:
            raise ConfigError("weights.opener 'encrypted' needs the weight key: set "
                              "security.weights.key_file or TIERSERVE_WEIGHTS_KEY_FILE")
        self.key = load_key(key_file)
        self.tmpfs_dir = tmpfs_dir
        for stale in sweep_stale(tmpfs_dir):
            log.warning("removed a clear weight copy left by a dead process: %s", stale)
        log.info("encrypted weights opener: key %s, clear copies under %s", key_id(self.key),
                 tmpfs_dir)

    def open(self, directory: Path, manifest: Manifest) -> OpenedWeights:
        verify_files(directory, manifest)
        if not is_encrypted_dir(directory):
            raise ChecksumMismatch(f"{directory}: version {manifest.version} is stored in clear "
                                   "but weights.opener is 'encrypted'; publish the output of "
                                   "`tierserve keys encrypt-weights`")
        try:
            clear = decrypt_tree(directory, self.key, self.tmpfs_dir)
        except WeightIntegrityError as err:
            raise ChecksumMismatch(err.message) from None
        return OpenedWeights(manifest.version, clear, manifest,
                             release=lambda: shutil.rmtree(clear, ignore_errors=True))
