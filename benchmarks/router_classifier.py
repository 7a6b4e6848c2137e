"""Router classifier benchmark: held-out accuracy, decision latency on one core, and
RouteLLM-style quality-vs-cost on MT-Bench and GSM8K.

    .venv/bin/python benchmarks/router_classifier.py [--rounds 5] [--shared ../shared/datasets]

Writes benchmarks/results/router_classifier.json. Latency: the process is pinned to one
CPU core and torch to one thread; each round times `decide()` for every held-out request
with each classifier, in a rotated order, with a second "rules" pass as an A/A control.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSIFIERS = ("rules", "embedding", "cascade")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def heldout_quality(classifiers, examples) -> dict:
    from tierserve.router.calibration import evaluate

    out = {}
    for name, clf in classifiers.items():
        verdicts = [clf.classify(e.messages) for e in examples]
        tiers = [v.tier for v in verdicts]
        metrics = evaluate(tiers, [e.tier for e in examples]).as_dict()
        groups = defaultdict(list)
        for e, t in zip(examples, tiers, strict=True):
            groups[f"lang:{e.lang}"].append(t == e.tier)
            groups["multi-turn" if e.turns > 1 else "single-turn"].append(t == e.tier)
            for tag in e.tags:
                groups[f"tag:{tag}"].append(t == e.tier)
        metrics["accuracy_by_group"] = {k: {"n": len(v), "accuracy": round(sum(v) / len(v), 4)}
                                        for k, v in sorted(groups.items())}
        metrics["misrouted"] = [{"id": e.id, "label": e.tier, "got": t}
                                for e, t in zip(examples, tiers, strict=True) if t != e.tier]
        if name == "cascade":
            metrics["answered_by_rules"] = round(
                sum(v.reason.startswith("cascade:rules") for v in verdicts) / len(verdicts), 4)
        out[name] = metrics
    return out


def latency(config, classifiers, examples, rounds: int) -> dict:
    from tierserve.router.decision import decide

    plan = [*CLASSIFIERS, "rules_aa"]
    samples = defaultdict(list)
    per_round = defaultdict(list)
    for r in range(rounds):
        order = plan[r % len(plan):] + plan[:r % len(plan)]
        for name in order:
            clf = classifiers[name.removesuffix("_aa")]
            times = []
            for e in examples:
                start = time.perf_counter()
                decide(config, clf, "auto", e.messages)
                times.append((time.perf_counter() - start) * 1000)
            samples[name] += times
            per_round[name].append({"p50": _pct(times, 0.5), "p99": _pct(times, 0.99)})
    out = {}
    for name in plan:
        p99s = [x["p99"] for x in per_round[name]]
        p50s = [x["p50"] for x in per_round[name]]
        out[name] = {
            "calls": len(samples[name]),
            "p50_ms": round(_pct(samples[name], 0.5), 4),
            "p90_ms": round(_pct(samples[name], 0.9), 4),
            "p99_ms": round(_pct(samples[name], 0.99), 4),
            "max_ms": round(max(samples[name]), 4),
            "round_p99_ms": {"median": round(statistics.median(p99s), 4),
                             "min": round(min(p99s), 4), "max": round(max(p99s), 4)},
            "round_p50_ms": {"median": round(statistics.median(p50s), 4),
                             "min": round(min(p50s), 4), "max": round(max(p50s), 4)},
        }
    ratios = [a["p50"] / b["p50"] for a, b in zip(per_round["rules_aa"], per_round["rules"],
                                                   strict=True)]
    out["aa_control_rules_p50_ratio"] = {"median": round(statistics.median(ratios), 4),
                                         "min": round(min(ratios), 4),
                                         "max": round(max(ratios), 4)}
    return out


def routellm(classifiers, shared: Path) -> dict:
    from tierserve.router import evaluation as ev

    out = {}
    for bench, items in (("mt_bench", ev.load_mt_bench(shared)), ("gsm8k", ev.load_gsm8k(shared))):
        result = {**ev.summary(items), "routers": {}}
        for name, clf in classifiers.items():
            verdicts = [clf.classify(it.messages) for it in items]
            p236 = [v.scores["236b"] for v in verdicts]
            entry = {"apgr": ev.apgr(items, p236),
                     "calibrated_point": ev.at_share(items, [v.tier == "236b" for v in verdicts]),
                     "tier_share": {t: round(sum(v.tier == t for v in verdicts) / len(items), 4)
                                    for t in ("7b", "33b", "236b")}}
            if bench == "mt_bench":
                by_cat = defaultdict(lambda: defaultdict(int))
                for it, v in zip(items, verdicts, strict=True):
                    by_cat[it.category][v.tier] += 1
                entry["tiers_by_category"] = {c: dict(t) for c, t in sorted(by_cat.items())}
            result["routers"][name] = entry
        out[bench] = result
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/router_classifier.json"))
    args = parser.parse_args()

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    from tierserve.config import parse_config
    from tierserve.router.classifiers import make_classifier
    from tierserve.router.dataset import load_examples

    config = parse_config({"tiers": [
        {"id": t, "variants": [{"name": f"m-{t}", "model": "/m", "precision": "fp32",
                                "max_model_len": 2048}]} for t in ("7b", "33b", "236b")]})
    classifiers = {name: make_classifier(name) for name in CLASSIFIERS}
    for clf in classifiers.values():
        clf.warmup()
    held = load_examples(ROOT / "data/router/examples.jsonl", split="heldout")
    fresh = load_examples(ROOT / "data/router/examples.jsonl", split="fresh")
    started = time.time()
    report = {
        "machine": {"cpu_count": os.cpu_count(), "pinned_cores": sorted(os.sched_getaffinity(0)),
                    "python": platform.python_version(), "load_avg_at_start": os.getloadavg()},
        "thresholds": {n: c.thresholds.as_dict() for n, c in classifiers.items()},
        "cascade_gate": classifiers["cascade"].gate,
        "heldout": {"n": len(held), **heldout_quality(classifiers, held)},
        "fresh": {"n": len(fresh), **heldout_quality(classifiers, fresh)},
        "latency_one_core": latency(config, classifiers, held, args.rounds),
        "routellm": routellm(classifiers, Path(args.shared)),
    }
    report["machine"]["load_avg_at_end"] = os.getloadavg()
    report["wall_s"] = round(time.time() - started, 1)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("thresholds", "cascade_gate")}, indent=1))
    for name in CLASSIFIERS:
        h, lat = report["heldout"][name], report["latency_one_core"][name]
        f = report["fresh"][name]
        print(f"{name:<10} acc={h['accuracy']:.3f} complex->7b={h['complex_to_7b']:.3f} "
              f"fresh_acc={f['accuracy']:.3f} fresh_complex->7b={f['complex_to_7b']:.3f} "
              f"p50={lat['p50_ms']:.2f}ms p99={lat['p99_ms']:.2f}ms "
              f"mt_bench_apgr={report['routellm']['mt_bench']['routers'][name]['apgr']} "
              f"gsm8k_apgr={report['routellm']['gsm8k']['routers'][name]['apgr']}")
    print(f"A/A rules p50 ratio: {report['latency_one_core']['aa_control_rules_p50_ratio']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
