"""Invariants of the committed router data set (data/router/examples.jsonl)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from tierserve.router.dataset import load_examples

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data" / "router" / "examples.jsonl"


@pytest.fixture(scope="module")
def examples():
    return load_examples(DATA)


def test_size_languages_shapes_and_splits(examples):
    assert len(examples) >= 400
    assert len({e.id for e in examples}) == len(examples)
    assert {e.tier for e in examples} == {"7b", "33b", "236b"}
    langs = Counter(e.lang for e in examples)
    assert langs["en"] >= 200 and langs["zh"] >= 100
    assert sum(e.turns > 1 for e in examples) >= 60
    held = [e for e in examples if e.split == "heldout"]
    assert 0.2 <= len(held) / len(examples) <= 0.3
    assert {e.tier for e in held} == {"7b", "33b", "236b"}


def test_adversarial_cases_are_present_in_both_splits(examples):
    for tag in ("long-simple", "short-hard", "last-simple"):
        tagged = [e for e in examples if tag in e.tags]
        assert len(tagged) >= 10, tag
        assert {e.split for e in tagged} >= {"train", "heldout"}, tag


def test_conversations_end_with_the_user(examples):
    for e in examples:
        roles = [m["role"] for m in e.messages if m["role"] != "system"]
        assert roles[-1] == "user" and roles[::2] == ["user"] * len(roles[::2]), e.id


def test_file_is_what_the_builder_makes():
    spec = importlib.util.spec_from_file_location("build", DATA.parent / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    lines = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines()]
    assert lines == build.build()
