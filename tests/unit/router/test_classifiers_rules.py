from __future__ import annotations

import pytest

from tierserve.config import parse_config
from tierserve.errors import ConfigError
from tierserve.router import features as feat
from tierserve.router.calibration import Thresholds
from tierserve.router.classifiers import (
    Classifier,
    RuleClassifier,
    classifier_from_config,
    Floors,
    apply_floors,
    make_classifier,
    softmax,
)
from tests.unit.conftest import small_config


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def dialogue(*texts: str) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
            for i, t in enumerate(texts)]


@pytest.mark.parametrize("messages, tier", [
    # long but simple: a long preamble around a one-fact question
    (user("My grandmother wrote her recipes on index cards that are now yellow and stained, "
          "and I'm recreating her lemon cake for her 90th birthday; the card says bake at 180 "
          "degrees but my oven shows Fahrenheit. So, quick one: what is the capital of Peru?"),
     "7b"),
    (user("我最近在准备一个家庭聚会，要招待二十多位亲戚，从菜单到座位安排都要操心。"
          "其中有一个小问题：一升等于多少毫升？"), "7b"),
    # short but hard
    (user("Prove that e is irrational."), "236b"),
    (user("证明根号3是无理数。"), "236b"),
    (user("Design a lock-free queue."), "236b"),
    # multi-turn whose last turn is simple: dialogue, neither 7b nor 236b
    (dialogue("Prove that there are infinitely many primes.", "Suppose finitely many...",
              "Thanks, that makes sense!"), "33b"),
    (dialogue("中国的首都是哪里？", "北京。", "那日本的呢？"), "33b"),
    # multi-turn whose last turn is hard
    (dialogue("What is a prime number?", "A number with exactly two divisors.",
              "Prove that there is a prime between n and 2n for every n > 1."), "236b"),
    (user("Write a bash script that renames all .jpeg files in a folder to .jpg."), "33b"),
    (user("hello!"), "7b"),
])
def test_rules_on_adversarial_cases(messages, tier):
    verdict = RuleClassifier().classify(messages)
    assert verdict.tier == tier, verdict
    assert verdict.reason.startswith("rules:")
    assert set(verdict.scores) == {"7b", "33b", "236b"}
    assert abs(sum(verdict.scores.values()) - 1) < 1e-3
    assert verdict.confidence == verdict.scores[tier]


def test_features_both_languages():
    f = feat.extract(user("So, settle it for us: what is the capital of Australia?"))
    assert f.final_ask_simple and f.words > 5
    z = feat.extract(user("设计一个秒杀系统，要求不超卖"))
    assert z.cjk_chars > 5 and z.design >= 1 and z.imperative_hard
    code = feat.extract(user("Fix this:\ndef f(x):\n    return x[0]"))
    assert code.has_code
    assert len(f.vector()) == len(feat.Features.names())


def test_features_accept_openai_content_parts():
    msgs = [{"role": "user", "content": [{"type": "text", "text": "Prove it"}]}]
    assert feat.last_user_text(msgs) == "Prove it"


def test_floors_move_7b_score_to_33b():
    scores = {"7b": 0.7, "33b": 0.2, "236b": 0.1}
    assert apply_floors(scores, user("x")) == scores
    floored = {"7b": 0.0, "33b": 0.9, "236b": 0.1}
    assert apply_floors(scores, dialogue("a", "b", "c")) == floored
    assert apply_floors(scores, user("Is 91 prime? Justify.")) == floored
    assert apply_floors(scores, user("这个结论为什么成立？请说明理由。")) == floored
    assert apply_floors(scores, user("Is 91 prime? Justify."), Floors(reasoning=False)) == scores


def test_a_floor_says_so_in_the_reason():
    verdict = RuleClassifier().classify(user("Is 91 prime? Justify."))
    assert verdict.tier != "7b" and verdict.reason.endswith(";floor:reasoning")


def test_thresholds_change_the_tier():
    text = user("Explain what the CAP theorem says, in plain language.")
    scores = RuleClassifier().score(text).scores
    strict = RuleClassifier(thresholds=Thresholds(min_236b=1.0, min_7b=1.0))
    assert strict.classify(text).tier == "33b"
    eager = RuleClassifier(thresholds=Thresholds(min_236b=0.0, min_7b=0.0))
    assert eager.classify(text).tier == "236b"
    assert scores == strict.classify(text).scores


def test_registry_knows_lazy_classifiers_and_rejects_unknown():
    with pytest.raises(ConfigError, match=r"known: \['cascade', 'embedding', 'rules'\]"):
        make_classifier("nope")
    assert isinstance(make_classifier("rules"), RuleClassifier)
    assert {"rules", "embedding", "cascade"} <= set(Classifier.registry) | {"embedding",
                                                                            "cascade"}


def test_config_thresholds_and_floor_reach_the_classifier():
    config = parse_config(small_config(routing={
        "classifier": "rules", "dialogue_floor": False, "reasoning_floor": False,
        "thresholds": {"rules": {"min_236b": 0.9, "min_7b": 0.1}}}))
    clf = classifier_from_config(config.routing)
    assert clf.thresholds == Thresholds(0.9, 0.1)
    assert clf.floors == Floors(dialogue=False, reasoning=False)


def test_config_rejects_bad_thresholds():
    with pytest.raises(ConfigError, match="min_7b"):
        parse_config(small_config(routing={"thresholds": {"rules": {"min_236b": 0.5,
                                                                     "min_7b": 2}}}))


def test_softmax_is_a_distribution():
    p = softmax({"7b": 1.0, "33b": 2.0, "236b": 3.0})
    assert abs(sum(p.values()) - 1) < 1e-3 and p["236b"] > p["33b"] > p["7b"]
