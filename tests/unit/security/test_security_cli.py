"""`tierserve keys ...` and `tierserve audit ...`."""

from __future__ import annotations

import io
import re
import shutil
import uuid
from pathlib import Path

import pytest
import yaml

from tierserve.platform.cli import main
from tierserve.security.crypto import decrypt_tree, is_encrypted_dir, is_tmpfs
from tierserve.security.keys import hash_key


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "security": {"auth": "disabled", "audit": {"path": str(tmp_path / "audit.jsonl")}},
        "tiers": [{"id": "7b", "variants": [{"name": "a", "model": "/m", "precision": "fp32",
                                             "max_model_len": 64}]}]}))
    return path


def test_keys_create_prints_the_key_once_and_its_entry(capsys, config_file, tmp_path):
    assert main(["keys", "create", "--id", "alice", "--role", "admin",
                 "--requests-per-min", "10", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    key = re.search(r"^\s+(ts-\S+)$", out, re.M).group(1)
    entry = yaml.safe_load(out[out.index("- id:"):])[0]
    assert entry == {"id": "alice", "role": "admin", "sha256": hash_key(key),
                     "requests_per_min": 10}
    assert out.count(key) == 1
    assert main(["audit", "tail", "--config", str(config_file)]) == 0
    tail = capsys.readouterr().out
    assert "keys.create" in tail and key not in tail


def test_keys_hash_of_an_existing_key(capsys, monkeypatch, config_file):
    monkeypatch.setattr("sys.stdin", io.StringIO("ts-existing-key\n"))
    assert main(["keys", "hash", "--id", "bob", "--role", "inference",
                 "--config", str(config_file)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)[0]["sha256"] == hash_key("ts-existing-key")


def test_weights_key_and_encrypt_weights(capsys, tmp_path, config_file):
    src = tmp_path / "model"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "model.safetensors").write_bytes(b"\x00" * 4096)
    key_file = tmp_path / "w.key"
    assert main(["keys", "weights-key", "--out", str(key_file)]) == 0
    assert main(["keys", "encrypt-weights", str(src), str(tmp_path / "enc"), "--key-file",
                 str(key_file), "--config", str(config_file)]) == 0
    assert "encrypted model.safetensors" in capsys.readouterr().out
    assert is_encrypted_dir(tmp_path / "enc")
    if is_tmpfs("/dev/shm"):
        from tierserve.security.crypto import load_key

        root = Path("/dev/shm") / f"tierserve-test-{uuid.uuid4().hex[:8]}"
        try:
            out = decrypt_tree(tmp_path / "enc", load_key(key_file), root)
            assert (out / "model.safetensors").read_bytes() == b"\x00" * 4096
        finally:
            shutil.rmtree(root, ignore_errors=True)


def test_audit_verify_exit_codes(capsys, tmp_path, config_file):
    assert main(["audit", "verify", "--config", str(config_file)]) == 0  # no log yet
    for i in range(2):
        main(["keys", "create", "--id", f"k{i}", "--role", "inference",
              "--config", str(config_file)])
    assert main(["audit", "verify", "--config", str(config_file)]) == 0
    assert "2 record(s), hash chain intact" in capsys.readouterr().out
    log = tmp_path / "audit.jsonl"
    log.write_text(log.read_text().replace("k0", "kX"))
    assert main(["audit", "verify", str(log)]) == 1
    assert "BROKEN at line 2" in capsys.readouterr().err
