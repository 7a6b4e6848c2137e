"""AES-256-GCM weight encryption: round trips, every kind of tampering, tmpfs only."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.fixtures.files import flip_byte
from tierserve.errors import ConfigError
from tierserve.security.crypto import (
    MANIFEST,
    SUFFIX,
    WeightIntegrityError,
    decrypt_bytes,
    decrypt_file,
    decrypt_tree,
    encrypt_file,
    encrypt_tree,
    is_encrypted_dir,
    is_tmpfs,
    iter_decrypted,
    key_id,
    load_key,
    write_new_key,
)

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
SHM = Path("/dev/shm")


@pytest.fixture
def shm():
    if not is_tmpfs(SHM):
        pytest.skip("/dev/shm is not tmpfs here")
    path = SHM / f"tierserve-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("size", [0, 1, 100, 256, 1000])
def test_round_trip_across_chunk_boundaries(tmp_path, size):
    clear = os.urandom(size)
    (tmp_path / "w.bin").write_bytes(clear)
    sha = encrypt_file(tmp_path / "w.bin", tmp_path / "w.tsenc", KEY, chunk=256)
    sealed = (tmp_path / "w.tsenc").read_bytes()
    assert size < 16 or clear[:16] not in sealed
    assert decrypt_bytes(tmp_path / "w.tsenc", KEY) == clear
    assert sha == hashlib.sha256(clear).hexdigest()


def _sealed(tmp_path, size=1000, chunk=256) -> Path:
    (tmp_path / "w.bin").write_bytes(os.urandom(size))
    encrypt_file(tmp_path / "w.bin", tmp_path / "w.tsenc", KEY, chunk=chunk)
    return tmp_path / "w.tsenc"


def _body_start(path: Path) -> int:
    raw = path.read_bytes()
    return 7 + 4 + int.from_bytes(raw[7:11], "big")


@pytest.mark.parametrize("tamper", ["flip", "truncate", "append", "swap", "drop_last", "header"])
def test_any_tampering_is_refused(tmp_path, tamper):
    path = _sealed(tmp_path)
    raw = bytearray(path.read_bytes())
    body, sealed_chunk = _body_start(path), 256 + 16
    if tamper == "flip":
        raw[body + 300] ^= 0x01
    elif tamper == "truncate":
        raw = raw[:-10]
    elif tamper == "append":
        raw += b"extra"
    elif tamper == "swap":  # exchange chunks 0 and 1
        a, b = raw[body:body + sealed_chunk], raw[body + sealed_chunk:body + 2 * sealed_chunk]
        raw[body:body + 2 * sealed_chunk] = b + a
    elif tamper == "drop_last":  # remove the last chunk and re-mark nothing: size disagrees
        raw = raw[:body + 3 * sealed_chunk]
    else:  # claim a smaller size in the (authenticated) header
        raw = bytearray(bytes(raw).replace(b'"size": 1000', b'"size":  999'))
    path.write_bytes(bytes(raw))
    with pytest.raises(WeightIntegrityError):
        decrypt_bytes(path, KEY)


def test_wrong_key_and_wrong_name_are_refused(tmp_path):
    path = _sealed(tmp_path)
    with pytest.raises(WeightIntegrityError, match="key"):
        decrypt_bytes(path, OTHER)
    with pytest.raises(WeightIntegrityError, match="holds 'w.bin'"):
        list(iter_decrypted(path, KEY, expected_name="other.bin"))
    (tmp_path / "plain").write_bytes(b"not encrypted at all")
    with pytest.raises(WeightIntegrityError, match="magic"):
        decrypt_bytes(tmp_path / "plain", KEY)


def test_clear_text_goes_only_to_tmpfs(tmp_path, shm):
    if is_tmpfs(tmp_path):
        pytest.skip("tmp_path is tmpfs here")
    path = _sealed(tmp_path)
    with pytest.raises(ConfigError, match="not tmpfs"):
        decrypt_file(path, tmp_path / "clear.bin", KEY)
    assert not (tmp_path / "clear.bin").exists()
    decrypt_file(path, shm / "clear.bin", KEY)
    assert (shm / "clear.bin").read_bytes() == (tmp_path / "w.bin").read_bytes()
    assert (shm / "clear.bin").stat().st_mode & 0o777 == 0o600


def test_failed_decryption_leaves_nothing(tmp_path, shm):
    path = _sealed(tmp_path)
    flip_byte(path, -1, 0xFF)  # the last chunk fails after earlier chunks were written
    with pytest.raises(WeightIntegrityError):
        decrypt_file(path, shm / "clear.bin", KEY)
    assert not (shm / "clear.bin").exists()


def model_dir(root: Path) -> Path:
    src = root / "model"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text('{"hidden_size": 8}')
    (src / "tokenizer.json").write_text('{"vocab": {}}')
    (src / "model.safetensors").write_bytes(os.urandom(3000))
    (src / "sub" / "extra.bin").write_bytes(os.urandom(10))
    (src / ".cache").mkdir()
    (src / ".cache" / "x.bin").write_bytes(b"cache")
    (src / ".marker.json").write_text("{}")
    return src


def test_tree_round_trip_into_tmpfs(tmp_path, shm):
    src = model_dir(tmp_path)
    manifest = encrypt_tree(src, tmp_path / "enc", KEY)
    enc = tmp_path / "enc"
    assert is_encrypted_dir(enc) and manifest["key_id"] == key_id(KEY)
    assert (enc / ("model.safetensors" + SUFFIX)).exists()
    assert not (enc / "model.safetensors").exists()
    assert (enc / "config.json").read_text() == '{"hidden_size": 8}'
    out = decrypt_tree(enc, KEY, shm)
    assert out.parent == shm
    for rel in ("config.json", "tokenizer.json", "model.safetensors", "sub/extra.bin"):
        assert (out / rel).read_bytes() == (src / rel).read_bytes()
    assert not (out / MANIFEST).exists()
    assert not (enc / ".marker.json").exists() and not (out / ".cache").exists()


@pytest.mark.parametrize("tamper", ["manifest", "clear_file", "missing", "swap_weights",
                                    "wrong_key"])
def test_tampered_tree_is_refused_and_cleaned_up(tmp_path, shm, tamper):
    src = model_dir(tmp_path)
    enc = tmp_path / "enc"
    encrypt_tree(src, enc, KEY)
    key = KEY
    if tamper == "manifest":
        data = json.loads((enc / MANIFEST).read_text())
        data["files"]["config.json"]["sha256"] = "0" * 64
        (enc / MANIFEST).write_text(json.dumps(data))
    elif tamper == "clear_file":
        (enc / "config.json").write_text('{"hidden_size": 9}')
    elif tamper == "missing":
        (enc / "tokenizer.json").unlink()
    elif tamper == "swap_weights":  # a validly encrypted file put in another's place
        shutil.copyfile(enc / ("sub/extra.bin" + SUFFIX), enc / ("model.safetensors" + SUFFIX))
    else:
        key = OTHER
    with pytest.raises(WeightIntegrityError):
        decrypt_tree(enc, key, shm)
    assert list(shm.iterdir()) == []


def test_decrypt_tree_refuses_a_persistent_directory(tmp_path):
    if is_tmpfs(tmp_path):
        pytest.skip("tmp_path is tmpfs here")
    enc = tmp_path / "enc"
    encrypt_tree(model_dir(tmp_path), enc, KEY)
    with pytest.raises(ConfigError, match="tmpfs"):
        decrypt_tree(enc, KEY, tmp_path / "out")


def test_key_files(tmp_path):
    path = tmp_path / "weights.key"
    key = write_new_key(path)
    assert load_key(path) == key and path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        write_new_key(path)
    (tmp_path / "hex.key").write_text(KEY.hex())
    assert load_key(tmp_path / "hex.key") == KEY
    (tmp_path / "short.key").write_text("abcd")
    with pytest.raises(ConfigError, match="32 bytes"):
        load_key(tmp_path / "short.key")
    with pytest.raises(ConfigError, match="cannot read"):
        load_key(tmp_path / "missing.key")


def test_stale_clear_copies_of_dead_processes_are_swept(tmp_path, shm):
    from tierserve.security.crypto import sweep_stale

    enc = tmp_path / "enc"
    encrypt_tree(model_dir(tmp_path), enc, KEY)
    mine = decrypt_tree(enc, KEY, shm)
    dead = shm / "model-999999999-deadbeef"
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"clear")
    assert sweep_stale(shm) == [dead]
    assert mine.exists() and not dead.exists()
