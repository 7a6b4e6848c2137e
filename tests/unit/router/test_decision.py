from __future__ import annotations

import pytest

from tierserve.config import parse_config
from tierserve.errors import ModelNotFound
from tierserve.router.classifiers import RuleClassifier, make_classifier
from tierserve.router.decision import decide, model_ids, nearest_tier
from tests.unit.conftest import small_config, variant


def msgs(*texts):
    out = []
    for i, t in enumerate(texts):
        out.append({"role": "user" if i % 2 == 0 else "assistant", "content": t})
    return out


@pytest.mark.parametrize(
    "conversation, tier",
    [
        (msgs("What is the capital of France?"), "7b"),
        (msgs("hi"), "7b"),
        (msgs("什么是光合作用？"), "7b"),
        (msgs("Prove that there are infinitely many primes, step by step."), "236b"),
        (msgs("Design a distributed rate limiter and discuss the trade-offs and failure modes."), "236b"),
        (msgs("请证明根号2是无理数，并逐步推导。"), "236b"),
        (msgs("Write a Python function that reverses a linked list and explain it."), "33b"),
        (msgs("Summarize the plot of Hamlet in a paragraph for a student essay."), "33b"),
        (msgs("Tell me about dogs", "Dogs are mammals...", "And how do they compare to cats in temperament?"), "33b"),
    ],
)
def test_rule_classifier_examples(conversation, tier):
    verdict = RuleClassifier().classify(conversation)
    assert verdict.tier == tier, verdict
    assert abs(sum(verdict.scores.values()) - 1) < 1e-3
    assert verdict.reason.startswith("rules:")


def test_registry_unknown_name():
    from tierserve.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown classifier"):
        make_classifier("nope")


def test_decide_pins_and_auto(config):
    clf = RuleClassifier()
    assert decide(config, clf, "medium-fp32", msgs("x")).variant == "medium-fp32"
    assert decide(config, clf, "236b", msgs("x")).variant == "large-bf16"
    d = decide(config, clf, "auto", msgs("What is 2+2?"), latency_critical=True)
    assert (d.tier, d.variant) == ("7b", "small-int8")
    assert "latency:critical" in d.reason
    with pytest.raises(ModelNotFound):
        decide(config, clf, "gpt-4", msgs("x"))


def test_missing_tier_falls_back_to_nearest():
    data = small_config(tiers=[{"id": "33b", "variants": [variant("m")]}])
    config = parse_config(data)
    assert nearest_tier(config, "7b") == "33b"
    d = decide(config, RuleClassifier(), "auto", msgs("hi"))
    assert d.tier == "33b" and "fallback:7b->33b" in d.reason
    assert model_ids(config) == ["auto", "33b", "m"]
