"""Routing measured the RouteLLM way (pure): quality recovered versus the share of traffic
sent to the expensive model, on public data with paired per-question results.

A router gives each prompt a score for the expensive tier (our p(236b)); sweeping a
threshold over the scores traces quality against the share of prompts sent to the strong
model. PGR (performance gap recovered) = (quality - weak) / (strong - weak); APGR is the
area under PGR over the strong share from 0 to 1. A router that ignores the prompt scores
0.5 on average; the oracle (strong only where it beats weak) is the ceiling.

Data (read in place from ../shared/datasets, Apache-2.0 / MIT, see its README and
licenses/): RouteLLM's MT-Bench judgements (GPT-4-1106 as strong, Mixtral-8x7B as weak;
routed on the first turn, both turns scored, as RouteLLM does) and GSM8K correctness.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"


@dataclass(frozen=True)
class PairedItem:
    """One prompt with the quality each model got on it."""

    key: str
    messages: list[dict]
    strong: float
    weak: float
    category: str = ""


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def load_mt_bench(root: Path) -> list[PairedItem]:
    """72 decontaminated MT-Bench questions; quality = mean judge score over both turns."""
    dirty = {r["eval_prompt"] for r in _jsonl(root / "routellm/mt_bench/contaminated_prompts.jsonl")}
    scores: dict[tuple[int, str], list[float]] = {}
    for row in _jsonl(root / "routellm/mt_bench/judgements.jsonl"):
        scores.setdefault((row["question_id"], row["model"]), []).append(float(row["score"]))
    items = []
    for q in _jsonl(root / "mt_bench/question.jsonl"):
        if set(q["turns"]) & dirty:
            continue
        qid = q["question_id"]
        strong, weak = scores[(qid, STRONG)], scores[(qid, WEAK)]
        items.append(PairedItem(str(qid), [{"role": "user", "content": q["turns"][0]}],
                                sum(strong) / len(strong), sum(weak) / len(weak),
                                q["category"]))
    return items


def load_gsm8k(root: Path) -> list[PairedItem]:
    """1,307 decontaminated GSM8K test problems; quality = 1 if the answer was correct."""
    dirty = {r["eval_prompt"] for r in _jsonl(root / "routellm/gsm8k/contaminated_prompts.jsonl")}
    items = []
    with (root / "routellm/gsm8k/gsm8k_responses.csv").open(encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if row["prompt"] in dirty:
                continue
            items.append(PairedItem(str(i), [{"role": "user", "content": row["prompt"]}],
                                    float(row[STRONG] == "True"), float(row[WEAK] == "True")))
    return items


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def curve(items: list[PairedItem], scores: list[float]) -> list[tuple[float, float]]:
    """(strong share, quality) for every threshold; equal scores move together."""
    order = sorted(range(len(items)), key=lambda i: -scores[i])
    quality = sum(it.weak for it in items)
    points = [(0.0, quality / len(items))]
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and scores[order[j]] == scores[order[i]]:
            quality += items[order[j]].strong - items[order[j]].weak
            j += 1
        points.append((j / len(items), quality / len(items)))
        i = j
    return points


def apgr(items: list[PairedItem], scores: list[float]) -> float:
    """Area under PGR(share of strong calls), trapezoids over the threshold sweep."""
    strong = _mean([it.strong for it in items])
    weak = _mean([it.weak for it in items])
    pts = [(share, (q - weak) / (strong - weak)) for share, q in curve(items, scores)]
    return round(sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(pts, pts[1:])), 4)


def oracle_scores(items: list[PairedItem]) -> list[float]:
    return [it.strong - it.weak for it in items]


def at_share(items: list[PairedItem], routed_strong: list[bool]) -> dict:
    """Quality and PGR of one routing (e.g. the calibrated thresholds' own decisions)."""
    strong = _mean([it.strong for it in items])
    weak = _mean([it.weak for it in items])
    quality = _mean([it.strong if s else it.weak for it, s in zip(items, routed_strong, strict=True)])
    return {"strong_share": round(_mean([float(s) for s in routed_strong]), 4),
            "quality": round(quality, 4), "pgr": round((quality - weak) / (strong - weak), 4)}


def summary(items: list[PairedItem]) -> dict:
    return {"n": len(items), "strong_quality": round(_mean([it.strong for it in items]), 4),
            "weak_quality": round(_mean([it.weak for it in items]), 4),
            "oracle_apgr": apgr(items, oracle_scores(items))}
