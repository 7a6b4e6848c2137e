"""Complexity classifiers behind one small interface, picked by name from a registry (pure).

Every classifier scores the three tiers (probabilities summing to 1) and explains itself;
`Classifier.classify` turns the scores into a tier with calibrated thresholds
(tierserve/router/calibration.py). Registered here: "rules" (cue weights over cheap text
features, microseconds). Importing tierserve.router.embedding adds "embedding" (sentence
embeddings + a trained head) and "cascade" (rules when confident, else embeddings).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tierserve.errors import ConfigError
from tierserve.router import features as feat
from tierserve.router.calibration import Thresholds, default_thresholds, pick_tier

# Classifiers that live in modules with heavy (lazy) dependencies; imported on first use.
LAZY_MODULES: dict[str, str] = {
    "embedding": "tierserve.router.embedding",
    "cascade": "tierserve.router.embedding",
}


@dataclass(frozen=True)
class Classification:
    """A classifier's verdict as data: the tier, how sure it is, and why."""

    tier: str
    confidence: float
    reason: str
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Scored:
    """Tier probabilities plus whatever the classifier needs to explain a verdict."""

    scores: dict[str, float]
    detail: Any = None


class Classifier:
    """Base of all classifiers; subclasses register themselves under `name`.

    Subclasses implement `score` (probabilities per tier) and `explain` (a short reason
    for the chosen tier); thresholds come from the config or the fitted defaults."""

    name: ClassVar[str] = ""
    blocking: ClassVar[bool] = False
    """True when `classify` computes for milliseconds (callers run it off the event loop)."""
    registry: ClassVar[dict[str, type[Classifier]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            Classifier.registry[cls.name] = cls

    def __init__(self, thresholds: Thresholds | None = None, floors: Floors | None = None):
        self.thresholds = thresholds or default_thresholds(self.name)
        self.floors = floors or Floors()

    @classmethod
    def from_config(cls, routing) -> Classifier:
        """Build from a RoutingConfig; subclasses read their own options from it."""
        return cls(thresholds=_config_thresholds(routing, cls.name),
                   floors=Floors.from_routing(routing))

    def scored(self, messages: list[dict]) -> Scored:
        """`score`, with the floors applied."""
        scored = self.score(messages)
        return Scored(apply_floors(scored.scores, messages, self.floors), scored.detail)

    def score(self, messages: list[dict]) -> Scored:
        raise NotImplementedError

    def explain(self, tier: str, scored: Scored) -> str:
        return f"{self.name}:p={scored.scores[tier]:.2f}"

    def warmup(self) -> None:
        """Load whatever is loaded lazily (models, artifacts); a no-op by default."""

    def classify(self, messages: list[dict]) -> Classification:
        raw = self.score(messages)
        scored = Scored(apply_floors(raw.scores, messages, self.floors), raw.detail)
        tier = pick_tier(scored.scores, self.thresholds)
        reason = self.explain(tier, scored)
        if tier != "7b" and pick_tier(raw.scores, self.thresholds) == "7b":
            reason += f";floor:{floor_reason(messages, self.floors)}"
        return Classification(tier, scored.scores[tier], reason, scored.scores)


@dataclass(frozen=True)
class Floors:
    """Requests that may not go to 7b, whatever the scores say (their 7b score moves to
    33b): a conversation with earlier assistant turns (dialogue, the issue's tier
    definition) and a last turn that asks for a proof, derivation or justification (not
    a short lookup). `routing.dialogue_floor` / `routing.reasoning_floor`."""

    dialogue: bool = True
    reasoning: bool = True

    @classmethod
    def from_routing(cls, routing) -> Floors:
        return cls(dialogue=routing.dialogue_floor, reasoning=routing.reasoning_floor)


def floor_reason(messages: list[dict], floors: Floors) -> str | None:
    """Which floor, if any, keeps `messages` off 7b."""
    if floors.dialogue and any(m.get("role") == "assistant" for m in messages):
        return "dialogue"
    if floors.reasoning and feat.asks_reasoning(feat.last_user_text(messages)):
        return "reasoning"
    return None


def apply_floors(scores: dict[str, float], messages: list[dict],
                 floors: Floors = Floors()) -> dict[str, float]:
    if scores.get("7b", 0.0) == 0.0 or floor_reason(messages, floors) is None:
        return scores
    return {**scores, "7b": 0.0, "33b": round(scores["33b"] + scores["7b"], 4)}


def _config_thresholds(routing, name: str) -> Thresholds | None:
    given = getattr(routing, "thresholds", {}) or {}
    entry = given.get(name)
    if entry is None:
        return None
    return Thresholds(min_236b=entry.min_236b, min_7b=entry.min_7b)


def _lookup(name: str) -> type[Classifier]:
    if name not in Classifier.registry and name in LAZY_MODULES:
        importlib.import_module(LAZY_MODULES[name])
    try:
        return Classifier.registry[name]
    except KeyError:
        known = sorted(set(Classifier.registry) | set(LAZY_MODULES))
        raise ConfigError(f"unknown classifier '{name}'; known: {known}") from None


def make_classifier(name: str, **options) -> Classifier:
    return _lookup(name)(**options)


def classifier_from_config(routing) -> Classifier:
    """The classifier a RoutingConfig names, with its options and thresholds."""
    return _lookup(routing.classifier).from_config(routing)


def softmax(raw: dict[str, float], temperature: float = 1.0) -> dict[str, float]:
    top = max(raw.values())
    exp = {k: math.exp((v - top) / temperature) for k, v in raw.items()}
    total = sum(exp.values())
    return {k: round(v / total, 4) for k, v in exp.items()}


def _capped(count: int, cap: int = 3) -> int:
    return min(count, cap)


def rule_evidence(f: feat.Features) -> dict[str, float]:
    """Raw evidence per tier from the cue counts of the last turn and the history."""
    size = f.approx_tokens
    hard = (1.5 * _capped(f.proof_math) + 1.3 * _capped(f.design) + 1.2 * _capped(f.algorithm)
            + 1.2 * _capped(f.debug) + 0.6 * _capped(f.rigor, 2) + 0.3 * _capped(f.math_expr))
    if f.hard_hits and size > 40:
        hard += 0.6
    if f.imperative_hard:
        hard += 1.5
    word_problem = f.numbers >= 3 and f.questions > 0 and size > 25
    if word_problem:  # several quantities to combine, then a quantitative question
        hard += 2.0
    ordinary = 1.0 * _capped(f.ordinary) + (0.8 if f.has_code else 0.0)
    ordinary += 0.5 if size > 25 else 0.0
    simple = ((1.5 if f.simple_opening else 0.0) + (1.0 if size <= 12 else 0.0)
              + (1.2 if f.brevity else 0.0) + (2.0 if f.small_talk else 0.0)
              + (1.8 if f.final_ask_simple and not word_problem else 0.0))
    if f.has_history:
        # A dialogue to follow needs at least the middle tier, whatever its last turn says.
        ordinary += 1.0 + simple
        simple = 0.0
    return {"7b": simple, "33b": ordinary + 0.5, "236b": hard}


class RuleClassifier(Classifier):
    """Weighted cues: proof/math, design, algorithm, hard-debugging words → 236b; ordinary
    work, code or an ongoing dialogue → 33b; short factual questions and small talk → 7b.
    Microseconds per call."""

    name = "rules"

    def score(self, messages: list[dict]) -> Scored:
        f = feat.extract(messages)
        return Scored(softmax(rule_evidence(f)), f)

    def explain(self, tier: str, scored: Scored) -> str:
        f: feat.Features = scored.detail
        if tier == "236b":
            return (f"rules:reasoning(proof={f.proof_math},design={f.design},"
                    f"algo={f.algorithm},debug={f.debug})")
        if tier == "33b":
            cues = []
            if f.has_history:
                cues.append(f"turns={f.user_turns}")
            if f.has_code:
                cues.append("code")
            if f.ordinary:
                cues.append("task")
            return f"rules:ordinary({','.join(cues) or 'default'})"
        cue = "smalltalk" if f.small_talk else "lookup"
        return f"rules:simple({cue},tokens={f.approx_tokens})"
