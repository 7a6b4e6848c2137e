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


def _engine_settings(args: argparse.Namespace, settings):
    from tierserve.bench.serve import EngineSettings

    tuning = {"omp_threads": args.omp_threads, "stream_interval": args.stream_interval}
    if args.config is None:
        return EngineSettings(str(settings.cache_dir / "models" / "smollm2-135m-instruct"),
                              **tuning)
    from tierserve.config import load_config

    config = load_config(args.config)
    tier = config.tier(config.tier_ids[0])
    variant = tier.default
    return EngineSettings(config.resolve_model(variant.model), variant.max_model_len,
                          variant.max_num_seqs, variant.kv_cache_bytes or 256 << 20, **tuning)


def _load_points(args: argparse.Namespace) -> list:
    from tierserve.bench.serve import LoadPoint

    points = [LoadPoint(concurrency=int(c)) for c in args.concurrency.split(",") if c.strip()]
    points += [LoadPoint(rate_per_s=float(r)) for r in (args.rates or "").split(",") if r.strip()]
    if not points or any(p.concurrency is not None and p.concurrency < 1
                         or p.rate_per_s is not None and p.rate_per_s <= 0 for p in points):
        raise SystemExit("--concurrency and --rates must name positive load levels")
    return points


def _serve(args: argparse.Namespace) -> int:
    from tierserve.bench import plot, serve

    settings = load_settings()
    engine = _engine_settings(args, settings)
    prompts = serve.load_prompts(Path(args.dataset))
    points = _load_points(args)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        result = serve.run(engine, prompts, points, args.requests, args.max_tokens, args.rounds,
                           Path(tmp), args.serve_mode, args.ttft_pairs, args.with_ray_serve_llm)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    plotted = plot.plot_serve(result, out.with_suffix(".png"))
    for level, data in {**result["concurrency"], **result["poisson"]}.items():
        cmp = data["comparison"]
        if "peer" in cmp:
            print(f"{level:>11}  Ray Serve LLM/bare tput {cmp['peer']['throughput_ratio']['median']:.3f}"
                  f"  TTFT p50 {cmp['peer']['ttft_p50_added_ms']['median']:+.1f} ms")
        print(f"{level:>11}  pinned/bare tput {cmp['pinned']['throughput_ratio']['median']:.3f}  "
              f"auto/bare {cmp['auto']['throughput_ratio']['median']:.3f}  "
              f"A/A {cmp['aa_control']['throughput_ratio']['median']:.3f}  "
              f"TTFT p50 {cmp['pinned']['ttft_p50_added_ms']['median']:+.1f} ms (pinned) "
              f"{cmp['auto']['ttft_p50_added_ms']['median']:+.1f} ms (auto)")
        for system, roles in cmp.get("cpu_ms_per_output_token", {}).items():
            parts = ", ".join(f"{role} {ms:.1f}" for role, ms in roles.items())
            print(f"{'':>11}  CPU ms/token {system}: {parts}")
    for system, row in result["ttft_probe"]["systems"].items():
        if "added_ms" in row:
            added = row["added_ms"]
            print(f"TTFT added vs bare, paired ({added['pairs']} prompts, one at a time): "
                  f"{system} {added['median']:+.1f} ms [IQR {added['p25']:+.1f}…{added['p75']:+.1f}]")
    print(f"written to {out}" + (f" and {out.with_suffix('.png')}" if plotted else
                                  " (no plot: the plot needs closed-loop levels)"))
    return 0


def _router(args: argparse.Namespace) -> int:
    from tierserve.bench import router_load

    result = router_load.run(args.connections, args.requests or args.connections,
                             args.token_delay_s, args.answer_tokens)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    rss = result["router_rss_bytes"]
    print(f"{result['connections']} connections: errors={result['errors']} "
          f"router RSS idle {rss['idle'] / 2**20:.0f} MiB, peak {rss['peak'] / 2**20:.0f} MiB")
    print(f"written to {out}")
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

    srv = bench_sub.add_parser("serve", help="platform overhead vs bare vLLM, one run")
    srv.add_argument("--config", default=None, help="take the engine of the first tier's "
                     "default variant from this config (default: SmolLM2 fp32)")
    srv.add_argument("--concurrency", default="1,4,16", help="closed-loop levels ('' for none)")
    srv.add_argument("--rates", default="", help="open-loop Poisson arrival rates, requests/s "
                     "(e.g. 0.5,1); each runs --requests requests")
    srv.add_argument("--omp-threads", type=int, default=2, help="engine OMP threads (both systems)")
    srv.add_argument("--stream-interval", type=int, default=1,
                     help="vLLM --stream-interval for both systems: tokens per chunk after the first")
    srv.add_argument("--requests", type=int, default=8, help="requests per run (at least 2x concurrency)")
    srv.add_argument("--with-ray-serve-llm", action="store_true",
                     help="also measure Ray Serve LLM (ray.serve.llm) on the same engine settings")
    srv.add_argument("--ttft-pairs", type=int, default=24,
                     help="prompts for the paired TTFT probe (each sent to every system)")
    srv.add_argument("--serve-mode", default="standard", choices=["standard", "throughput"],
                     help="Ray Serve data path of the platform under test")
    srv.add_argument("--max-tokens", type=int, default=64)
    srv.add_argument("--rounds", type=int, default=4)
    srv.add_argument("--dataset", default=str(PACKAGE_ROOT.parent / "shared" / "datasets" /
                                               "mt_bench" / "question.jsonl"))
    srv.add_argument("--out", default=str(RESULTS / "serve.json"))
    srv.set_defaults(func=_serve)

    rtr = bench_sub.add_parser("router", help="1,000 concurrent streams, fast backend")
    rtr.add_argument("--connections", type=int, default=1000)
    rtr.add_argument("--requests", type=int, default=None, help="default: = connections")
    rtr.add_argument("--token-delay-s", type=float, default=0.05)
    rtr.add_argument("--answer-tokens", type=int, default=32)
    rtr.add_argument("--out", default=str(RESULTS / "router.json"))
    rtr.set_defaults(func=_router)

    from tierserve.platform.cli_bench_replica import register_bench

    register_bench(bench_sub)
