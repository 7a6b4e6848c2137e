from __future__ import annotations

from tierserve.router.calibration import (
    Thresholds,
    default_thresholds,
    evaluate,
    fit_confidence_gate,
    fit_thresholds,
    pick_tier,
)


def s(p7: float, p33: float, p236: float) -> dict[str, float]:
    return {"7b": p7, "33b": p33, "236b": p236}


def test_pick_tier_order():
    t = Thresholds(min_236b=0.4, min_7b=0.6)
    assert pick_tier(s(0.1, 0.5, 0.4), t) == "236b"
    assert pick_tier(s(0.6, 0.1, 0.3), t) == "7b"
    assert pick_tier(s(0.55, 0.1, 0.35), t) == "33b"


def test_evaluate_confusion_and_rates():
    m = evaluate(["7b", "33b", "7b", "236b"], ["7b", "33b", "236b", "236b"])
    assert m.accuracy == 0.75
    assert m.confusion["236b"] == {"7b": 1, "33b": 0, "236b": 1}
    assert m.complex_to_7b == 0.5 and m.complex_recall == 0.5
    assert m.share == {"7b": 0.5, "33b": 0.25, "236b": 0.25}


def _population():
    scores, labels = [], []
    for i in range(10):  # hard ones, with growing 236b score
        scores.append(s(0.05, 0.45 - i * 0.04, 0.5 + i * 0.04))
        labels.append("236b")
    for _ in range(10):
        scores.append(s(0.1, 0.8, 0.1))
        labels.append("33b")
    for _ in range(10):
        scores.append(s(0.8, 0.15, 0.05))
        labels.append("7b")
    return scores, labels


def test_fit_is_accurate_without_a_cost_target():
    scores, labels = _population()
    fit = fit_thresholds(scores, labels)
    assert fit.feasible and fit.metrics.accuracy == 1.0


def test_fit_respects_a_cost_mix():
    scores, labels = _population()
    fit = fit_thresholds(scores, labels, max_share_236b=0.2)
    assert fit.feasible
    assert fit.metrics.share["236b"] <= 0.2
    assert fit.metrics.share["236b"] == 0.2  # the whole budget: the only most-accurate way
    assert fit.metrics.complex_to_7b == 0.0


def test_fit_meets_hard_targets_by_falling_back_to_the_middle_tier():
    scores = [s(0.9, 0.05, 0.05)] * 4
    fit = fit_thresholds(scores, ["236b"] * 4, max_complex_to_7b=0.0, max_share_236b=0.0)
    assert fit.feasible
    assert fit.metrics.share["33b"] == 1.0 and fit.metrics.complex_to_7b == 0.0


def test_confidence_gate_prefers_the_better_stage_when_unsure():
    first = [s(0.9, 0.05, 0.05), s(0.4, 0.35, 0.25)]
    second = [s(0.1, 0.1, 0.8), s(0.1, 0.1, 0.8)]
    gate, m = fit_confidence_gate(first, second, ["7b", "236b"], Thresholds(), Thresholds())
    assert 0.35 < gate <= 0.9 and m.accuracy == 1.0


def test_packaged_thresholds_load():
    t = default_thresholds("rules")
    assert 0 <= t.min_236b <= 1 and 0 <= t.min_7b <= 1
    assert default_thresholds("no-such-classifier") == Thresholds()


def test_fit_prefers_the_middle_of_an_accuracy_plateau():
    # one 7b example at p7=0.2 would pull min_7b down to 0.2 for one more hit
    scores = [s(0.2, 0.7, 0.1)] + [s(0.8, 0.1, 0.1)] * 60 + [s(0.1, 0.8, 0.1)] * 60
    labels = ["7b"] + ["7b"] * 60 + ["33b"] * 60
    exact = fit_thresholds(scores, labels, tolerance=0.0)
    assert exact.thresholds.min_7b <= 0.2 and exact.metrics.accuracy == 1.0
    robust = fit_thresholds(scores, labels, tolerance=0.01)
    assert robust.thresholds.min_7b == 0.5 and robust.metrics.accuracy >= 0.99
