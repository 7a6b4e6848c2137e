"""Training the embedding head and collecting the scores calibration needs.

Heavy dependencies (scikit-learn, torch through the encoder) are imported inside the
functions; this module is used by `tierserve calibrate` and the router benchmark only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tierserve.router.calibration import TIERS
from tierserve.router.classifiers import Classifier, apply_floors
from tierserve.router.dataset import Example
from tierserve.router.embedding import MiniLMEncoder, input_vector
from tierserve.router.features import last_user_text

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def input_matrix(examples: Sequence[Example], encoder: MiniLMEncoder) -> np.ndarray:
    rows = [input_vector(encoder.encode(last_user_text(e.messages)), e.messages)[0]
            for e in examples]
    return np.vstack(rows)


def _model(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def _folds(labels: Sequence[str], folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)


def out_of_fold_scores(x: np.ndarray, labels: Sequence[str], c: float, folds: int = 5,
                       seed: int = 0) -> list[dict[str, float]]:
    """Each training example scored by a head that never saw it (k-fold)."""
    from sklearn.model_selection import cross_val_predict

    y = np.asarray(labels)
    proba = cross_val_predict(_model(c), x, y, cv=_folds(labels, folds, seed),
                              method="predict_proba")
    classes = sorted(set(labels))
    return [{t: round(float(row[classes.index(t)]), 4) for t in TIERS} for row in proba]


def temper(scores: dict[str, float], temperature: float) -> dict[str, float]:
    """Probabilities with their logits divided by `temperature` (same order, softer)."""
    powered = {t: max(p, 1e-6) ** (1 / temperature) for t, p in scores.items()}
    total = sum(powered.values())
    return {t: round(v / total, 4) for t, v in powered.items()}


def fit_temperature(scores: Sequence[dict[str, float]], labels: Sequence[str]) -> float:
    """Temperature scaling: the T minimising the log-loss of out-of-fold probabilities."""
    grid = [round(0.5 * 1.1 ** i, 3) for i in range(40)]  # 0.5 .. ~20

    def loss(t: float) -> float:
        return -sum(np.log(max(temper(s, t)[y], 1e-6)) for s, y in zip(scores, labels,
                                                                         strict=True))

    return min(grid, key=loss)


def choose_c(x: np.ndarray, labels: Sequence[str], folds: int = 5) -> tuple[float, dict]:
    """The regularisation strength with the best cross-validated accuracy."""
    accuracy = {}
    for c in C_GRID:
        scores = out_of_fold_scores(x, labels, c, folds)
        hits = sum(max(s, key=s.get) == t for s, t in zip(scores, labels, strict=True))
        accuracy[c] = round(hits / len(labels), 4)
    best = max(C_GRID, key=lambda c: (accuracy[c], -c))
    return best, accuracy


def fit_head(x: np.ndarray, labels: Sequence[str], c: float, max_tokens: int,
             info: dict) -> dict:
    """A trained head as the JSON-ready dict that `Head.from_dict` reads."""
    model = _model(c).fit(x, np.asarray(labels))
    scaler, lr = model[0], model[-1]
    order = [list(lr.classes_).index(t) for t in TIERS]

    def r(a) -> list:
        return [float(f"{v:.6g}") for v in np.asarray(a, dtype=np.float64).ravel()]

    return {
        "format": 1,
        "classes": list(TIERS),
        "max_tokens": max_tokens,
        "mean": r(scaler.mean_),
        "scale": r(np.where(scaler.scale_ < 1e-6, 1.0, scaler.scale_)),
        "coef": [r(row) for row in lr.coef_[order]],
        "intercept": r(lr.intercept_[order]),
        "info": {**info, "C": c},
    }


def classifier_scores(classifier: Classifier, examples: Sequence[Example]) -> list[dict]:
    return [classifier.scored(e.messages).scores for e in examples]


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def calibrate(
    examples: Sequence[Example],
    encoder: MiniLMEncoder | None,
    max_share_236b: float = 1.0,
    max_complex_to_7b: float = 0.02,
    train_head: bool = False,
    dataset_sha: str = "",
    tolerance: float = 0.01,
) -> dict:
    """Fit thresholds for rules, embedding and cascade on labelled `examples` (the train
    split). Embedding scores are out-of-fold (k-fold heads), so thresholds are not fitted on
    scores of examples the head has memorised. Returns the thresholds file's content, plus
    the new head under "_head" when `train_head`."""
    from tierserve.router.calibration import fit_confidence_gate, fit_thresholds
    from tierserve.router.classifiers import RuleClassifier
    from tierserve.router.embedding import Head

    labels = [e.tier for e in examples]
    targets = {"max_share_236b": max_share_236b, "max_complex_to_7b": max_complex_to_7b,
               "tolerance": tolerance,
               "examples": len(examples), "dataset_sha256": dataset_sha}
    rules_scores = classifier_scores(RuleClassifier(), examples)
    rules_fit = fit_thresholds(rules_scores, labels, max_share_236b, max_complex_to_7b,
                               tolerance=tolerance)
    out: dict = {"rules": _entry(rules_fit, targets)}
    if encoder is None:
        return out
    x = input_matrix(examples, encoder)
    if train_head:
        c, cv = choose_c(x, labels)
        raw = out_of_fold_scores(x, labels, c)
        temperature = fit_temperature(raw, labels)
        out["_head"] = fit_head(x, labels, c, encoder.max_tokens,
                                {"examples": len(examples), "cv_accuracy": cv,
                                 "dataset_sha256": dataset_sha})
        out["_head"]["temperature"] = temperature
        out["_head"]["quantized"] = encoder.quantize
    else:
        head = Head.load()
        c, temperature = float(head.info.get("C", 1.0)), head.temperature
        raw = out_of_fold_scores(x, labels, c)
    emb_scores = [apply_floors(temper(s, temperature), e.messages)
                  for s, e in zip(raw, examples, strict=True)]
    emb_fit = fit_thresholds(emb_scores, labels, max_share_236b, max_complex_to_7b,
                             tolerance=tolerance)
    out["embedding"] = _entry(emb_fit, targets)
    gate, cascade = fit_confidence_gate(rules_scores, emb_scores, labels,
                                        rules_fit.thresholds, emb_fit.thresholds,
                                        max_share_236b=max_share_236b,
                                        max_complex_to_7b=max_complex_to_7b)
    out["cascade"] = {"gate": gate, "fitted_on": {**targets, "metrics": cascade.as_dict()}}
    return out


def _entry(fit, targets: dict) -> dict:
    return {"thresholds": fit.thresholds.as_dict(),
            "fitted_on": {**targets, "feasible": fit.feasible, "metrics": fit.metrics.as_dict()}}
