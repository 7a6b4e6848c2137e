"""`tierserve calibrate`: fit routing thresholds (and optionally retrain the embedding head)
on the labelled router data set for a target cost mix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tierserve.platform.settings import PACKAGE_ROOT

DEFAULT_DATA = PACKAGE_ROOT / "data" / "router" / "examples.jsonl"


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit routing thresholds for a target cost mix (and retrain the embedding head)",
        description="Fits, on the train split of the labelled data set, the thresholds of "
        "the rules, embedding and cascade classifiers: the most accurate ones that send at "
        "most --max-share-236b of traffic to 236b and at most --max-complex-to-7b of the "
        "236b-labelled requests to 7b. Embedding scores are out-of-fold (5-fold heads).",
    )
    p.add_argument("--data", default=str(DEFAULT_DATA), help="labelled JSONL (data/router)")
    p.add_argument("--max-share-236b", type=float, default=1.0,
                   help="largest fraction of traffic routed to 236b (e.g. 0.2)")
    p.add_argument("--max-complex-to-7b", type=float, default=0.01,
                   help="largest fraction of 236b-labelled requests routed to 7b (default 1%%: "
                   "tighter than the 2%% target, for margin on unseen data)")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="accuracy within this of the best counts as a tie; ties go to "
                   "thresholds nearest 0.5")
    p.add_argument("--train-head", action="store_true",
                   help="retrain the embedding head (scikit-learn) before calibrating")
    p.add_argument("--rules-only", action="store_true",
                   help="calibrate the rules classifier only (no torch, seconds)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for the encoder")
    p.add_argument("--max-tokens", type=int, default=64,
                   help="with --train-head: tokens of each text the encoder reads")
    p.add_argument("--no-quantize", action="store_true",
                   help="with --train-head: keep the encoder in fp32 (default: INT8 Linears)")
    p.add_argument("--write", action="store_true",
                   help="write the results into tierserve/router/artifacts/ (else print only)")
    p.set_defaults(func=_calibrate)


def _artifacts_dir() -> Path:
    import tierserve.router.artifacts as artifacts

    return Path(artifacts.__file__).resolve().parent


def _summary(name: str, entry: dict) -> str:
    fitted = entry["fitted_on"]
    m = fitted["metrics"]
    share = " ".join(f"{t}={v:.0%}" for t, v in m["share"].items())
    knobs = entry.get("thresholds") or {"gate": entry.get("gate")}
    knob_text = " ".join(f"{k}={v}" for k, v in knobs.items())
    feasible = "" if fitted.get("feasible", True) else "  (targets NOT met)"
    return (f"{name:<10} {knob_text:<28} accuracy={m['accuracy']:.1%} "
            f"complex->7b={m['complex_to_7b']:.1%} share[{share}]{feasible}")


def _encoder(args: argparse.Namespace):
    """A new head's encoder from the flags; else the one the packaged head was trained with."""
    from tierserve.router.embedding import Head, MiniLMEncoder

    if args.train_head:
        return MiniLMEncoder(max_tokens=args.max_tokens, threads=args.threads,
                             quantize=not args.no_quantize)
    head = Head.load()
    return MiniLMEncoder(max_tokens=head.max_tokens, threads=args.threads,
                         quantize=head.quantized)


def _calibrate(args: argparse.Namespace) -> int:
    from tierserve.router import training
    from tierserve.router.dataset import load_examples

    examples = load_examples(args.data, split="train")
    encoder = None if args.rules_only else _encoder(args)
    result = training.calibrate(
        examples, encoder, args.max_share_236b, args.max_complex_to_7b,
        train_head=args.train_head, dataset_sha=training.file_sha256(args.data),
        tolerance=args.tolerance,
    )
    head = result.pop("_head", None)
    print(f"fitted on {len(examples)} train examples of {args.data} "
          f"(train-split scores; embedding scores out-of-fold)")
    for name, entry in result.items():
        print(_summary(name, entry))
    if not args.write:
        print("\n(dry run: add --write to store these in tierserve/router/artifacts/)")
        return 0
    out = _artifacts_dir()
    path = out / "thresholds.json"
    merged = json.loads(path.read_text("utf-8")) if path.exists() else {}
    merged.update(result)
    path.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    if head is not None:
        (out / "embedding_head.json").write_text(json.dumps(head) + "\n", encoding="utf-8")
        print(f"wrote {out / 'embedding_head.json'}")
    return 0
