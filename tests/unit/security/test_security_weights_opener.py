"""The 'encrypted' weights opener on the weight store's verify/load seam."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.fixtures.files import flip_byte
from tierserve.errors import ConfigError
from tierserve.security.crypto import MANIFEST, SUFFIX, encrypt_tree, is_tmpfs, write_new_key
from tierserve.security.weights_opener import EncryptedOpener
from tierserve.weights.errors import ChecksumMismatch
from tierserve.weights.manifest import FileEntry, Manifest, hash_file, source_files, utc_now
from tierserve.weights.verify import make_opener

pytestmark = pytest.mark.skipif(not is_tmpfs("/dev/shm"), reason="/dev/shm is not tmpfs")


@pytest.fixture
def shm():
    path = Path("/dev/shm") / f"tierserve-test-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def stored_version(root: Path, key_file: Path, version: int = 1) -> tuple[Path, Manifest]:
    """An encrypted checkpoint as the store keeps it, with the store's manifest."""
    src = root / "clear"
    src.mkdir()
    (src / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (src / "model.safetensors").write_bytes(os.urandom(5000))
    from tierserve.security.crypto import load_key

    encrypted = root / f"v{version:06d}"
    encrypt_tree(src, encrypted, load_key(key_file))
    files = tuple(FileEntry(rel, hash_file(encrypted / rel), (encrypted / rel).stat().st_size)
                  for rel in source_files(encrypted))
    return encrypted, Manifest("7b", version, "test", utc_now(), "tester", files)


def test_opens_into_tmpfs_and_releases(tmp_path, shm):
    key_file = tmp_path / "w.key"
    write_new_key(key_file)
    directory, manifest = stored_version(tmp_path, key_file)
    opener = make_opener("encrypted", key_file=str(key_file), tmpfs_dir=str(shm))
    assert isinstance(opener, EncryptedOpener)
    opened = opener.open(directory, manifest)
    assert opened.path.parent == shm and opened.version == 1
    assert (opened.path / "model.safetensors").read_bytes() == \
        (tmp_path / "clear" / "model.safetensors").read_bytes()
    assert not list(directory.glob("*.safetensors"))  # nothing clear beside the store
    opened.release()
    assert not opened.path.exists()


def test_the_store_checksum_catches_a_changed_file_first(tmp_path, shm):
    key_file = tmp_path / "w.key"
    write_new_key(key_file)
    directory, manifest = stored_version(tmp_path, key_file)
    flip_byte(directory / ("model.safetensors" + SUFFIX), -5)
    with pytest.raises(ChecksumMismatch, match="model.safetensors"):
        EncryptedOpener(str(key_file), str(shm)).open(directory, manifest)


def test_tampering_behind_a_rewritten_store_manifest_is_still_refused(tmp_path, shm):
    """Someone with write access to the store re-hashes its manifest: GCM still refuses."""
    key_file = tmp_path / "w.key"
    write_new_key(key_file)
    directory, _ = stored_version(tmp_path, key_file)
    flip_byte(directory / ("model.safetensors" + SUFFIX), 200)
    files = tuple(FileEntry(rel, hash_file(directory / rel), (directory / rel).stat().st_size)
                  for rel in source_files(directory))
    forged = Manifest("7b", 1, "test", utc_now(), "attacker", files)
    with pytest.raises(ChecksumMismatch, match="failed authentication"):
        EncryptedOpener(str(key_file), str(shm)).open(directory, forged)
    assert not shm.exists() or list(shm.iterdir()) == []


def test_clear_versions_and_missing_keys_are_refused(tmp_path, shm):
    key_file = tmp_path / "w.key"
    write_new_key(key_file)
    directory, manifest = stored_version(tmp_path, key_file)
    (directory / MANIFEST).unlink()
    files = tuple(f for f in manifest.files if f.path != MANIFEST)
    clear = Manifest("7b", 1, "test", utc_now(), "tester", files)
    with pytest.raises(ChecksumMismatch, match="stored in clear"):
        EncryptedOpener(str(key_file), str(shm)).open(directory, clear)
    with pytest.raises(ConfigError, match="weight key"):
        EncryptedOpener(None)
    other = tmp_path / "other.key"
    write_new_key(other)
    second = tmp_path / "second"
    second.mkdir()
    directory2, manifest2 = stored_version(second, key_file)
    with pytest.raises(ChecksumMismatch, match="key"):
        EncryptedOpener(str(other), str(shm)).open(directory2, manifest2)
    assert json.loads((directory2 / MANIFEST).read_text())["key_id"]


def test_publish_an_encrypted_checkpoint_and_open_it_from_the_store(tmp_path, shm):
    from tierserve.security.crypto import load_key
    from tierserve.weights.store import LocalWeightStore

    key_file = tmp_path / "w.key"
    write_new_key(key_file)
    clear = tmp_path / "clear"
    clear.mkdir()
    (clear / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (clear / "model.safetensors").write_bytes(os.urandom(2048))
    encrypt_tree(clear, tmp_path / "sealed", load_key(key_file))
    store = LocalWeightStore(tmp_path / "store")
    manifest = store.publish("7b", tmp_path / "sealed", publisher="tester")
    opened = make_opener("encrypted", key_file=str(key_file), tmpfs_dir=str(shm)).open(
        store.fetch("7b", manifest.version), manifest)
    assert (opened.path / "model.safetensors").read_bytes() == \
        (clear / "model.safetensors").read_bytes()
    opened.release()


def test_deploy_passes_the_key_reference_not_the_key(tmp_path):
    from tierserve.config import parse_config
    from tierserve.security.deploy import weights_opener_options

    from tests.unit.conftest import small_config

    assert weights_opener_options(parse_config(small_config())) == {}
    encrypted = small_config(weights={"opener": "encrypted"})
    with pytest.raises(ConfigError, match="weight key"):
        weights_opener_options(parse_config(encrypted))
    encrypted["security"] = {"auth": "disabled", "weights": {"key_file": "/run/w.key"}}
    assert weights_opener_options(parse_config(encrypted)) == {
        "key_file": "/run/w.key", "tmpfs_dir": "/dev/shm/tierserve"}
