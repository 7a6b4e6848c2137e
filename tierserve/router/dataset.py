"""The labelled routing data set (data/router/examples.jsonl) and public eval sets (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATASET = Path("data/router/examples.jsonl")


@dataclass(frozen=True)
class Example:
    id: str
    messages: list[dict]
    tier: str
    lang: str = "en"
    split: str = "train"
    tags: tuple[str, ...] = ()
    turns: int = 1


def load_examples(path: str | Path = DEFAULT_DATASET, split: str | None = None) -> list[Example]:
    """Examples of `path` (JSONL), optionally only one split ('train' or 'heldout')."""
    rows = []
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            item = json.loads(line)
            if split is not None and item.get("split") != split:
                continue
            rows.append(Example(
                id=item["id"], messages=item["messages"], tier=item["tier"],
                lang=item.get("lang", "en"), split=item.get("split", "train"),
                tags=tuple(item.get("tags", ())), turns=item.get("turns", 1),
            ))
    return rows
