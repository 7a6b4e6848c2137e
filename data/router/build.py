"""Build data/router/examples.jsonl from the hand-written sources in data/router/source/.

    .venv/bin/python data/router/build.py        # rewrites examples.jsonl deterministically

Single-turn sources (`<tier>_<lang>.txt`): one prompt per line, `#` comments, an optional
leading `{tag}` marking an adversarial case, `\\n` for a newline inside the prompt.
Multi-turn sources (`multi_<lang>.yaml`): a list of {tier, turns, tags?, system?}; turns
alternate user/assistant and end with the user.

Sources named `fresh_*` form the "fresh" split: a second test set written after the first
look at held-out results, never used for fitting (see README.md); sources named `train_*`
were added later and go to the train split whole, so that adding them moves no earlier
example between splits. The held-out split is
stratified: inside each (tier, lang, single/multi) group the examples
are ordered by a hash of their id and every fourth one is held out, so adding examples
never moves an existing one between splits unless its group's order changes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "source"
OUT = HERE / "examples.jsonl"
HELD_OUT_EVERY = 4


FRESH = "fresh_"
TRAIN_ONLY = "train_"


def _single(path: Path) -> list[dict]:
    tier, lang = path.stem.removeprefix(FRESH).removeprefix(TRAIN_ONLY).split("_")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        tags = []
        if line.startswith("{"):
            tag, line = line[1:].split("}", 1)
            tags.append(tag)
        text = line.strip().replace("\\n", "\n")
        rows.append({"tier": tier, "lang": lang, "tags": tags,
                     "messages": [{"role": "user", "content": text}]})
    return rows


def _multi(path: Path) -> list[dict]:
    lang = path.stem.removeprefix(FRESH).split("_")[1]
    rows = []
    for item in yaml.safe_load(path.read_text(encoding="utf-8")):
        messages = [{"role": "system", "content": item["system"]}] if "system" in item else []
        for i, text in enumerate(item["turns"]):
            messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
        assert messages[-1]["role"] == "user", item
        rows.append({"tier": item["tier"], "lang": lang, "tags": item.get("tags", []),
                     "messages": messages})
    return rows


def _stable(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def build() -> list[dict]:
    rows = []
    for path in sorted(SOURCE.iterdir()):
        made = _single(path) if path.suffix == ".txt" else _multi(path)
        for i, row in enumerate(made, 1):
            turns = sum(1 for m in row["messages"] if m["role"] == "user")
            rows.append({"id": f"{path.stem}-{i:03d}", **row, "turns": turns})
    groups = defaultdict(list)
    for row in rows:
        if row["id"].startswith(FRESH):
            row["split"] = "fresh"
            continue
        if row["id"].startswith(TRAIN_ONLY):
            row["split"] = "train"
            continue
        groups[(row["tier"], row["lang"], row["turns"] > 1)].append(row)
    for members in groups.values():
        for rank, row in enumerate(sorted(members, key=lambda r: _stable(r["id"]))):
            row["split"] = "heldout" if rank % HELD_OUT_EVERY == 0 else "train"
    return rows


def main() -> None:
    rows = build()
    with OUT.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = defaultdict(int)
    for row in rows:
        counts[(row["split"], row["tier"])] += 1
    print(f"{len(rows)} examples -> {OUT}")
    for key in sorted(counts):
        print(f"  {key[0]:<8} {key[1]:>5}: {counts[key]}")


if __name__ == "__main__":
    main()
