"""The learned classifiers with a stub encoder (milliseconds), plus one check with the real
MiniLM encoder that the packaged head fits it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tierserve.config import parse_config
from tierserve.router import features as feat
from tierserve.router.calibration import Thresholds
from tierserve.router.classifiers import RuleClassifier, classifier_from_config
from tierserve.router.embedding import (
    CascadeClassifier,
    EmbeddingClassifier,
    Head,
    MiniLMEncoder,
)
from tests.unit.conftest import small_config

DIM = 384


class StubEncoder:
    max_tokens = 128

    def __init__(self):
        self.calls = 0

    def encode(self, text: str) -> np.ndarray:
        self.calls += 1
        v = np.zeros(DIM, dtype=np.float32)
        v[0] = 1.0 if "prove" in text.lower() else 0.0
        return v


def toy_head() -> Head:
    """Votes 236b when embedding[0] is set, else 33b."""
    width = DIM + len(feat.Features.names())
    coef = np.zeros((3, width), dtype=np.float32)
    coef[2, 0] = 10.0
    return Head(("7b", "33b", "236b"), np.zeros(width, np.float32), np.ones(width, np.float32),
                coef, np.array([0.0, 1.0, 0.0], np.float32), 128, {})


def embedding_classifier(**kw) -> EmbeddingClassifier:
    clf = EmbeddingClassifier(encoder=StubEncoder(), thresholds=Thresholds(), **kw)
    clf._head = toy_head()
    return clf


def user(text):
    return [{"role": "user", "content": text}]


def test_head_probabilities():
    p = toy_head().probabilities(np.concatenate([np.eye(1, DIM)[0],
                                                 np.zeros(len(feat.Features.names()))]))
    assert max(p, key=p.get) == "236b" and abs(sum(p.values()) - 1) < 1e-3


def test_embedding_classifier_returns_data():
    clf = embedding_classifier()
    hard = clf.classify(user("Prove it"))
    assert hard.tier == "236b" and hard.reason.startswith("embedding:p=")
    assert clf.classify(user("write a letter")).tier == "33b"


def test_cascade_uses_rules_when_confident_and_embeddings_otherwise():
    emb = embedding_classifier()
    cascade = CascadeClassifier(gate=0.8, rules=RuleClassifier(thresholds=Thresholds()),
                                embedding=emb)
    sure = cascade.classify(user("Prove that e is irrational, step by step, rigorously."))
    assert sure.reason.startswith("cascade:rules:") and emb._encoder.calls == 0
    unsure = cascade.classify(user("Can we prove the plan works?"))
    assert unsure.reason.startswith("cascade:embedding:") and "<0.80" in unsure.reason
    assert emb._encoder.calls == 1


def test_packaged_head_matches_the_feature_layout():
    head = Head.load()
    assert head.classes == ("7b", "33b", "236b")
    assert head.coef.shape == (3, DIM + len(feat.Features.names()))
    assert head.mean.shape == head.scale.shape == (head.coef.shape[1],)


def test_importing_the_learned_classifiers_loads_no_torch():
    code = ("import sys, tierserve.router.embedding, tierserve.router.service; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_picks_cascade_with_its_options():
    config = parse_config(small_config(routing={
        "classifier": "cascade", "cascade_gate": 0.55, "embedding": {"threads": 2}}))
    clf = classifier_from_config(config.routing)
    assert isinstance(clf, CascadeClassifier) and clf.gate == 0.55
    assert clf.embedding._encoder_options["threads"] == 2


@pytest.fixture(scope="module")
def real_encoder():
    return MiniLMEncoder(max_tokens=128, threads=1)


def test_real_encoder_and_packaged_head(real_encoder):
    v = real_encoder.encode("What is the capital of France?")
    assert v.shape == (DIM,) and abs(float(np.linalg.norm(v)) - 1) < 1e-3
    long = real_encoder.encode("word " * 2000 + "what is the capital of France?")
    assert long.shape == (DIM,)
    clf = EmbeddingClassifier(encoder=real_encoder)
    assert clf.classify(user("Prove that there are infinitely many primes.")).tier == "236b"
    assert clf.classify(user("What is the capital of France?")).tier == "7b"
