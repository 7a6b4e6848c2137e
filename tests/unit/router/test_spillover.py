from __future__ import annotations

import pytest

from tierserve.config import parse_config
from tierserve.router.classifiers import Classification, Classifier
from tierserve.router.decision import RouteDecision, decide
from tierserve.router.spillover import LoadSnapshot, spill
from tests.unit.conftest import small_config

SPILL = {"enabled": True, "max_waiting": 4, "max_confidence": 0.8, "min_neighbour_score": 0.1,
         "stale_after_s": 2.0}


@pytest.fixture
def config():
    return parse_config(small_config(routing={"spillover": SPILL}))


def load(waiting: int, at: float = 100.0, kv: float = 0.1) -> LoadSnapshot:
    return LoadSnapshot(waiting=waiting, running=2, kv_cache_usage=kv, at=at)


def big(confidence: float = 0.6, p33: float = 0.3) -> RouteDecision:
    scores = {"7b": round(1 - confidence - p33, 4), "33b": p33, "236b": confidence}
    return RouteDecision("236b", "large-bf16", "rules:reasoning", scores, confidence)


IDLE = {"small-fp32": load(0), "small-int8": load(0), "medium-fp32": load(0)}


def test_saturated_tier_spills_to_neighbour(config):
    d = spill(big(), config, {**IDLE, "large-bf16": load(12)}, now=100.5)
    assert (d.tier, d.variant) == ("33b", "medium-fp32")
    assert d.reason == "rules:reasoning;spill:236b->33b(waiting=12)"
    assert d.confidence == 0.3


def test_kv_cache_saturation_counts(config):
    d = spill(big(), config, {**IDLE, "large-bf16": load(0, kv=0.99)}, now=100.5)
    assert d.tier == "33b"


@pytest.mark.parametrize("case, loads, now", [
    ("not saturated", {**IDLE, "large-bf16": load(3)}, 100.5),
    ("stale snapshot", {**IDLE, "large-bf16": load(12)}, 103.0),
    ("neighbour saturated", {**IDLE, "large-bf16": load(12), "medium-fp32": load(9)}, 100.5),
    ("neighbour unknown", {"large-bf16": load(12)}, 100.5),
])
def test_no_spill(config, case, loads, now):
    assert spill(big(), config, loads, now) == big(), case


def test_confident_or_implausible_requests_stay(config):
    loads = {**IDLE, "large-bf16": load(12)}
    assert spill(big(confidence=0.85, p33=0.1), config, loads, 100.5).tier == "236b"
    assert spill(big(confidence=0.7, p33=0.05), config, loads, 100.5).tier == "236b"


def test_middle_tier_picks_the_likelier_neighbour_and_latency_variant(config):
    d = RouteDecision("33b", "medium-fp32", "r", {"7b": 0.35, "33b": 0.45, "236b": 0.2}, 0.45)
    loads = {"medium-fp32": load(10), "small-int8": load(0), "large-bf16": load(0)}
    out = spill(d, config, loads, 100.5, latency_critical=True)
    assert (out.tier, out.variant) == ("7b", "small-int8")


def test_disabled_by_default():
    config = parse_config(small_config())
    assert spill(big(), config, {**IDLE, "large-bf16": load(12)}, 100.5) == big()


class Fixed(Classifier):
    def __init__(self, verdict: Classification):
        self.verdict = verdict

    def classify(self, messages):
        return self.verdict


def test_decide_applies_spillover_only_to_auto(config):
    clf = Fixed(Classification("236b", 0.6, "x", {"7b": 0.1, "33b": 0.3, "236b": 0.6}))
    loads = {**IDLE, "large-bf16": load(12)}
    msgs = [{"role": "user", "content": "q"}]
    assert decide(config, clf, "auto", msgs, loads=loads, now=100.5).tier == "33b"
    assert decide(config, clf, "236b", msgs, loads=loads, now=100.5).tier == "236b"
    assert decide(config, clf, "auto", msgs).tier == "236b"
