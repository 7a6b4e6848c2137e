"""`tierserve bench replica-routing`: power_of_two vs affinity+prefix on two replicas."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tierserve.platform.settings import PACKAGE_ROOT, load_settings

RESULTS = PACKAGE_ROOT / "benchmarks" / "results"
MT_BENCH = PACKAGE_ROOT.parent / "shared" / "datasets" / "mt_bench" / "question.jsonl"


def _replica_routing(args: argparse.Namespace) -> int:
    from tierserve.bench.replica_routing import BenchSettings, main

    settings = load_settings()
    model = args.model or str(settings.cache_dir / "models" / "smollm2-135m-instruct")

    def run(url: str) -> dict:
        bench = BenchSettings(
            model, url, conversations=args.conversations, turns=args.turns,
            system_tokens=args.system_tokens, max_tokens=args.max_tokens, rounds=args.rounds,
            think_s=args.think_s, throughput_requests=args.throughput_requests,
            throughput_concurrency=args.throughput_concurrency)
        return main(bench, Path(args.dataset), Path(args.out))

    url = args.redis_url or settings.redis_url
    if url:
        result = run(url)
    else:
        from tierserve.bench.redis_local import temporary_redis

        with tempfile.TemporaryDirectory() as tmp, temporary_redis(Path(tmp)) as started:
            result = run(started)
    print(json.dumps(result["summary"], indent=2))
    print(f"written to {args.out}")
    return 0


def register_bench(bench_sub) -> None:
    """Adds `replica-routing` under `tierserve bench`."""
    rr = bench_sub.add_parser("replica-routing", help="replica routing policies, two replicas, "
                              "one run (under ~10 min on 2 cores)")
    rr.add_argument("--model", default=None, help="model dir (default: SmolLM2-135M-Instruct)")
    rr.add_argument("--redis-url", default=None, help="default: REDIS_URL, else a temporary "
                    "redis-server")
    rr.add_argument("--conversations", type=int, default=16)
    rr.add_argument("--turns", type=int, default=6)
    rr.add_argument("--system-tokens", type=int, default=1000)
    rr.add_argument("--max-tokens", type=int, default=48)
    rr.add_argument("--rounds", type=int, default=2)
    rr.add_argument("--think-s", type=float, default=3.0, help="mean pause between a "
                    "conversation's turns (seconds; a user reading the answer)")
    rr.add_argument("--throughput-requests", type=int, default=24)
    rr.add_argument("--throughput-concurrency", type=int, default=8)
    rr.add_argument("--dataset", default=str(MT_BENCH))
    rr.add_argument("--out", default=str(RESULTS / "replica_routing.json"))
    rr.set_defaults(func=_replica_routing)
