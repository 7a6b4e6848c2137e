"""`tierserve bench ...`: benchmarks whose results are committed under benchmarks/results/."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tierserve.platform.settings import PACKAGE_ROOT, load_settings

RESULTS = PACKAGE_ROOT / "benchmarks" / "results"


def _context(args: argparse.Namespace) -> int:
    from tierserve.bench import context

    settings = load_settings()
    tokenizer = args.tokenizer or str(settings.cache_dir / "models" / "smollm2-135m-instruct")
    url = args.redis_url or settings.redis_url
    if url:
        result = context.main(url, tokenizer, Path(args.out), args.turns, args.iterations, args.rounds)
    else:
        from tierserve.bench.redis_local import temporary_redis

        with tempfile.TemporaryDirectory() as tmp, temporary_redis(Path(tmp)) as started:
            result = context.main(started, tokenizer, Path(args.out), args.turns,
                                  args.iterations, args.rounds)
    print(json.dumps({k: result[k] for k in ("total_ms", "load_ms", "trim_ms", "append_ms",
                                             "p50_total_ms_by_round")}, indent=2))
    print(f"written to {args.out}")
    return 0


def register(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks (results under benchmarks/results/)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    ctx = bench_sub.add_parser("context", help="load+trim+append of a 50-turn conversation")
    ctx.add_argument("--redis-url", default=None, help="default: REDIS_URL, else a temporary redis-server")
    ctx.add_argument("--tokenizer", default=None, help="tokenizer dir (default: SmolLM2's)")
    ctx.add_argument("--turns", type=int, default=50)
    ctx.add_argument("--iterations", type=int, default=500)
    ctx.add_argument("--rounds", type=int, default=5)
    ctx.add_argument("--out", default=str(RESULTS / "context.json"))
    ctx.set_defaults(func=_context)
