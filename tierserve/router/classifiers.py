"""Complexity classifiers behind one Protocol, picked by name from a registry (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from tierserve.errors import ConfigError
from tierserve.router import features as feat


@dataclass(frozen=True)
class Classification:
    """A classifier's verdict as data: the tier, how sure it is, and why."""

    tier: str
    confidence: float
    reason: str
    scores: dict[str, float] = field(default_factory=dict)


class Classifier:
    """Base of all classifiers; subclasses register themselves under `name`."""

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Classifier]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            Classifier.registry[cls.name] = cls

    def classify(self, messages: list[dict]) -> Classification:
        raise NotImplementedError


def make_classifier(name: str, **options) -> Classifier:
    try:
        cls = Classifier.registry[name]
    except KeyError:
        known = sorted(Classifier.registry)
        raise ConfigError(f"unknown classifier '{name}'; known: {known}") from None
    return cls(**options)


def _softmax_scores(raw: dict[str, float]) -> dict[str, float]:
    import math

    top = max(raw.values())
    exp = {k: math.exp(v - top) for k, v in raw.items()}
    total = sum(exp.values())
    return {k: round(v / total, 4) for k, v in exp.items()}


class RuleClassifier(Classifier):
    """Weighted cues: reasoning/math/design words → 236b, ordinary work or dialogue → 33b,
    short factual questions → 7b. Microseconds per call."""

    name = "rules"

    def classify(self, messages: list[dict]) -> Classification:
        f = feat.extract(messages)
        size = f.approx_tokens
        hard = 1.6 * f.hard_hits + 0.8 * min(f.math_hits, 3) + (0.6 if size > 120 else 0.0)
        ordinary = 0.9 * f.ordinary_hits + (0.8 if f.has_code else 0.0)
        ordinary += 0.6 * min(f.assistant_turns, 3) + (0.5 if size > 40 else 0.0)
        simple = (1.2 if f.simple_opening else 0.0) + (1.0 if size <= 20 else 0.0)
        raw = {"7b": simple, "33b": ordinary + 0.3, "236b": hard}
        scores = _softmax_scores(raw)
        tier = max(scores, key=scores.get)
        return Classification(tier, scores[tier], self._reason(tier, f), scores)

    @staticmethod
    def _reason(tier: str, f: feat.Features) -> str:
        if tier == "236b":
            return f"rules:reasoning(hard={f.hard_hits},math={f.math_hits})"
        if tier == "33b":
            cues = []
            if f.assistant_turns:
                cues.append(f"turns={f.user_turns}")
            if f.has_code:
                cues.append("code")
            if f.ordinary_hits:
                cues.append("task")
            return f"rules:ordinary({','.join(cues) or 'default'})"
        return f"rules:simple(tokens={f.approx_tokens})"
