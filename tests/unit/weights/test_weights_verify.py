import json

import pytest

from tests.fixtures.files import flip_byte
from tests.unit.weights.conftest import BASE_CONFIG, BASE_SHAPES
from tierserve.weights.compat import check_compatible, safetensors_header
from tierserve.weights.errors import ChecksumMismatch
from tierserve.weights.verify import VerifyingOpener, make_opener, verify_files


@pytest.fixture
def published(store, checkpoint):
    manifest = store.publish("7b", checkpoint("a", fill=1), publisher="p")
    return store.fetch("7b", 1), manifest


def test_an_intact_version_verifies(published):
    directory, manifest = published
    seen = []
    verify_files(directory, manifest, seen.append)
    assert sum(seen) == manifest.total_bytes
    opened = VerifyingOpener().open(directory, manifest)
    assert opened.path == directory and opened.version == 1
    assert isinstance(make_opener("plain"), VerifyingOpener)


def test_one_flipped_byte_is_caught(published):
    directory, manifest = published
    flip_byte(directory / "model.safetensors", -3)
    with pytest.raises(ChecksumMismatch, match="model.safetensors: sha256") as err:
        verify_files(directory, manifest)
    assert err.value.path == "model.safetensors"


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json: missing"),
    (lambda d: (d / "model.safetensors").write_bytes(b"short"), "bytes, manifest says"),
    (lambda d: (d / "extra.safetensors").write_bytes(b"x"), "not in the manifest"),
])
def test_missing_truncated_or_extra_files_are_caught(published, damage, message):
    directory, manifest = published
    damage(directory)
    with pytest.raises(ChecksumMismatch, match=message):
        verify_files(directory, manifest)


def test_same_architecture_is_compatible(checkpoint):
    old = checkpoint("old", fill=1)
    new = checkpoint("new", fill=2, config={**BASE_CONFIG, "transformers_version": "6.0",
                                            "dtype": "float32", "_name_or_path": "x"})
    assert check_compatible(old, new).ok
    assert safetensors_header(new / "model.safetensors") == BASE_SHAPES


@pytest.mark.parametrize("change, reason", [
    ({"config": {**BASE_CONFIG, "num_hidden_layers": 2}}, "config.json num_hidden_layers: 1 -> 2"),
    ({"config": {**BASE_CONFIG, "architectures": ["Qwen2ForCausalLM"]}}, "architectures"),
    ({"tokenizer": '{"vocab": 9}'}, "tokenizer.json changed"),
    ({"shapes": {"embed.weight": (8, 4), "layer.0.weight": (4, 2)}},
     "layer.0.weight [4, 4] -> [4, 2]"),
    ({"shapes": {"embed.weight": (8, 4)}}, "1 tensor(s) missing, e.g. layer.0.weight"),
    ({"shapes": {**BASE_SHAPES, "lm_head.weight": (8, 4)}}, "1 new tensor(s)"),
])
def test_architecture_changes_are_refused_with_a_reason(checkpoint, change, reason):
    old = checkpoint("old")
    new = checkpoint("new", **change)
    compat = check_compatible(old, new)
    assert not compat.ok and reason in compat.describe()


def test_a_new_template_or_unreadable_weights_are_refused(checkpoint):
    old = checkpoint("old")
    new = checkpoint("new")
    (new / "chat_template.jinja").write_text("{{ messages }}")
    assert "chat_template.jinja added" in check_compatible(old, new).describe()
    broken = checkpoint("broken")
    (broken / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    assert "unreadable safetensors header" in check_compatible(old, broken).describe()
    (broken / "config.json").write_text(json.dumps(BASE_CONFIG)[:-3])
    assert "config.json is missing or unreadable" in check_compatible(old, broken).describe()
