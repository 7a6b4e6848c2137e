"""Thresholds that turn tier scores into a tier, and fitting them from data (pure).

A classifier scores the three tiers (probabilities summing to 1). `pick_tier` turns the
scores into a tier with two thresholds: 236b when its score reaches `min_236b`, else 7b
when its score reaches `min_7b`, else 33b, the middle tier. Raising `min_236b` sends less
traffic to the expensive tier; raising `min_7b` sends fewer requests to the cheap one.

`fit_thresholds` picks both from labelled scores for a target cost mix: the most accurate
pair whose share of traffic to 236b stays within `max_share_236b` and whose rate of complex
(236b-labelled) requests sent to 7b stays within `max_complex_to_7b`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources

TIERS: tuple[str, ...] = ("7b", "33b", "236b")
ARTIFACTS = "tierserve.router.artifacts"
THRESHOLDS_FILE = "thresholds.json"


@dataclass(frozen=True)
class Thresholds:
    """Score cut-offs, each in [0, 1]."""

    min_236b: float = 0.5
    min_7b: float = 0.5

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def pick_tier(scores: dict[str, float], t: Thresholds) -> str:
    if scores.get("236b", 0.0) >= t.min_236b:
        return "236b"
    if scores.get("7b", 0.0) >= t.min_7b:
        return "7b"
    return "33b"


def load_fitted(classifier: str) -> dict:
    """The fitted entry for `classifier` in the packaged thresholds file, or {}."""
    try:
        text = resources.files(ARTIFACTS).joinpath(THRESHOLDS_FILE).read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    return json.loads(text).get(classifier, {})


def default_thresholds(classifier: str) -> Thresholds:
    fitted = load_fitted(classifier).get("thresholds")
    return Thresholds(**fitted) if fitted else Thresholds()


@dataclass(frozen=True)
class RoutingMetrics:
    """How a set of routed requests compares with their labels."""

    n: int
    accuracy: float
    share: dict[str, float]
    confusion: dict[str, dict[str, int]]
    complex_to_7b: float
    """Fraction of 236b-labelled requests routed to 7b."""
    nonsimple_to_7b: float
    """Fraction of 33b- or 236b-labelled requests routed to 7b."""
    complex_recall: float
    """Fraction of 236b-labelled requests routed to 236b."""

    def as_dict(self) -> dict:
        return asdict(self)


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def evaluate(predicted: list[str], labels: list[str]) -> RoutingMetrics:
    confusion = {want: {got: 0 for got in TIERS} for want in TIERS}
    for got, want in zip(predicted, labels, strict=True):
        confusion[want][got] += 1
    n = len(labels)
    complex_total = sum(confusion["236b"].values())
    nonsimple = complex_total + sum(confusion["33b"].values())
    return RoutingMetrics(
        n=n,
        accuracy=_rate(sum(confusion[t][t] for t in TIERS), n),
        share={t: _rate(sum(confusion[w][t] for w in TIERS), n) for t in TIERS},
        confusion=confusion,
        complex_to_7b=_rate(confusion["236b"]["7b"], complex_total),
        nonsimple_to_7b=_rate(confusion["236b"]["7b"] + confusion["33b"]["7b"], nonsimple),
        complex_recall=_rate(confusion["236b"]["236b"], complex_total),
    )


@dataclass(frozen=True)
class Fit:
    thresholds: Thresholds
    metrics: RoutingMetrics
    feasible: bool
    """False when no threshold pair met the targets (the least-bad pair is returned)."""


def _grid(step: float) -> list[float]:
    count = round(1 / step)
    return [round(i * step, 4) for i in range(count + 1)]


def _candidates(values, step: float) -> list[float]:
    """A regular grid plus the scores' own percentiles: sharp (near 0 or 1) score
    distributions need cut-offs finer than the grid where the data are."""
    import numpy as np

    qs = np.quantile(np.asarray(values, dtype=float), np.linspace(0, 1, 101))
    return sorted(set(_grid(step)) | {round(float(q), 4) for q in qs})


def fit_thresholds(
    scores: list[dict[str, float]],
    labels: list[str],
    max_share_236b: float = 1.0,
    max_complex_to_7b: float = 0.02,
    step: float = 0.02,
    tolerance: float = 0.01,
) -> Fit:
    """Thresholds meeting both targets whose accuracy is within `tolerance` of the best
    such pair, nearest to (0.5, 0.5), then cheaper (less 236b, more 7b). On a few hundred
    examples, accuracy differences of a request or two are noise; preferring the middle of
    that plateau over its edge keeps the thresholds from chasing them."""
    import numpy as np

    p7 = np.array([s.get("7b", 0.0) for s in scores])
    p236 = np.array([s.get("236b", 0.0) for s in scores])
    y = np.array([TIERS.index(t) for t in labels])
    complex_n = max(1, int((y == 2).sum()))
    rows = []
    for hi in _candidates(p236, step):
        big = p236 >= hi
        for lo in _candidates(p7, step):
            pred = np.where(big, 2, np.where(p7 >= lo, 0, 1))
            share = float(big.mean())
            to7 = float(((y == 2) & (pred == 0)).sum()) / complex_n
            over = round(max(0.0, share - max_share_236b) + max(0.0, to7 - max_complex_to_7b), 6)
            rows.append((over, float((pred == y).mean()), hi, lo, share,
                         float((pred == 0).mean())))
    least = min(r[0] for r in rows)
    pool = [r for r in rows if r[0] == least]
    best = max(r[1] for r in pool)
    near = [r for r in pool if r[1] >= best - tolerance - 1e-9]
    pick = min(near, key=lambda r: (round(abs(r[2] - 0.5) + abs(r[3] - 0.5), 4),
                                    r[4], -r[5], -r[1]))
    t = Thresholds(pick[2], pick[3])
    return Fit(t, evaluate([pick_tier(s, t) for s in scores], labels), least == 0)


def fit_confidence_gate(
    first: list[dict[str, float]],
    second: list[dict[str, float]],
    labels: list[str],
    first_t: Thresholds,
    second_t: Thresholds,
    step: float = 0.02,
    max_share_236b: float = 1.0,
    max_complex_to_7b: float = 1.0,
) -> tuple[float, RoutingMetrics]:
    """For a cascade: the confidence of the first classifier above which its verdict is
    kept (else the second decides) that makes the cascade most accurate within the same
    targets as the thresholds (a mix of two feasible routings need not be feasible); ties
    prefer a lower gate (more requests answered by the cheap first stage)."""
    best, best_key = None, None
    for gate in _grid(step):
        tiers = []
        for a, b in zip(first, second, strict=True):
            tier = pick_tier(a, first_t)
            tiers.append(tier if a[tier] >= gate else pick_tier(b, second_t))
        m = evaluate(tiers, labels)
        over = max(0.0, m.share["236b"] - max_share_236b)
        over += max(0.0, m.complex_to_7b - max_complex_to_7b)
        key = (-round(over, 6), m.accuracy, -m.complex_to_7b, -gate)
        if best_key is None or key > best_key:
            best, best_key = (gate, m), key
    return best
