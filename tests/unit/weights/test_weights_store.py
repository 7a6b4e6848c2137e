import json
import threading

import pytest

from tierserve.weights.errors import BadSource, VersionExists, VersionNotFound, WeightsError
from tierserve.weights.manifest import MANIFEST_NAME, Manifest, hash_file
from tierserve.weights.store import make_store


def test_publish_writes_an_immutable_version_with_a_manifest(store, checkpoint):
    src = checkpoint("a", fill=1)
    (src / ".hidden-marker").write_text("not published")
    manifest = store.publish("7b", src, publisher="alice@host", model_id="smol-a")
    assert manifest.version == 1 and manifest.track == "7b"
    directory = store.fetch("7b", 1)
    assert directory.name == "v000001" and directory.parent.name == "7b"
    assert sorted(f.path for f in manifest.files) == ["config.json", "model.safetensors",
                                                      "tokenizer.json"]
    for entry in manifest.files:
        assert hash_file(directory / entry.path) == entry.sha256
        assert (directory / entry.path).stat().st_size == entry.size
    on_disk = json.loads((directory / MANIFEST_NAME).read_text())
    assert on_disk["publisher"] == "alice@host" and on_disk["model_id"] == "smol-a"
    assert on_disk["architectures"] == ["LlamaForCausalLM"] and on_disk["created_at"]
    assert on_disk["total_bytes"] == manifest.total_bytes
    assert store.manifest("7b", 1) == manifest
    assert not (directory / ".hidden-marker").exists()
    assert [p.name for p in directory.parent.iterdir()] == ["v000001"]  # no temp dir left


def test_versions_go_up_and_explicit_numbers_are_immutable(store, checkpoint):
    src = checkpoint("a")
    assert [store.publish("7b", src, publisher="p").version for _ in range(3)] == [1, 2, 3]
    assert store.publish("7b", src, publisher="p", version=10).version == 10
    assert store.publish("7b", src, publisher="p").version == 11
    with pytest.raises(VersionExists):
        store.publish("7b", src, publisher="p", version=2)
    assert store.versions("7b") == [1, 2, 3, 10, 11]
    assert store.versions("33b") == [] and store.tracks() == ["7b"]


def test_concurrent_publishers_get_distinct_versions(store, checkpoint):
    src = checkpoint("a")
    got, errors = [], []

    def publish():
        try:
            got.append(store.publish("7b", src, publisher="p").version)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=publish) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(got) == [1, 2, 3, 4, 5, 6]


def test_a_failed_copy_leaves_no_version_behind(store, checkpoint, monkeypatch):
    src = checkpoint("a")
    import tierserve.weights.store as mod

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(mod, "_copy_hashing", boom)
    with pytest.raises(OSError):
        store.publish("7b", src, publisher="p")
    assert store.versions("7b") == []
    assert list((store.root / "7b").iterdir()) == []


def test_bad_sources_are_refused(store, tmp_path, checkpoint):
    with pytest.raises(BadSource, match="not a directory"):
        store.publish("7b", tmp_path / "missing", publisher="p")
    no_config = checkpoint("b")
    (no_config / "config.json").unlink()
    with pytest.raises(BadSource, match="config.json"):
        store.publish("7b", no_config, publisher="p")
    no_weights = checkpoint("c")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(BadSource, match="weight files"):
        store.publish("7b", no_weights, publisher="p")
    with pytest.raises(WeightsError, match="invalid track"):
        store.publish("../etc", checkpoint("d"), publisher="p")


def test_rejections_are_recorded_beside_the_versions(store, checkpoint):
    store.publish("7b", checkpoint("a"), publisher="p")
    assert store.rejected("7b") == {}
    store.reject("7b", 1, "checksum: model.safetensors", by="replica-1")
    assert store.rejected("7b") == {1: "checksum: model.safetensors"}
    assert store.versions("7b") == [1]


def test_missing_versions_and_unknown_stores(store):
    with pytest.raises(VersionNotFound):
        store.manifest("7b", 4)
    with pytest.raises(VersionNotFound):
        store.fetch("7b", 4)
    from tierserve.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown weights.store"):
        make_store("s3", "bucket")


def test_manifest_round_trip_and_garbage():
    from tierserve.weights.errors import ChecksumMismatch
    from tierserve.weights.manifest import FileEntry

    m = Manifest("7b", 3, "m", "2026-01-01T00:00:00+00:00", "p", (FileEntry("a", "00", 1),))
    assert Manifest.from_json(m.to_json()) == m
    with pytest.raises(ChecksumMismatch, match="not a valid manifest"):
        Manifest.from_json('{"track": "7b"}')
