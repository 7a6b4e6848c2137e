"""Serving pause of a hot weight reload under 16 concurrent streams (issue 7).

Deploys its own Ray Serve app (router + SmolLM2 vLLM CPU replicas following a local
weight store), keeps 16 streaming chat requests running, publishes a new version each
round (alternating the installed weights and a copy with its MLP down-projections scaled)
and measures, from the client's side:

- failed requests (non-200, error frames, missing [DONE], short answers);
- the serving pause: the longest time no stream emitted a token, in the window from the
  engine's pause to 0.5 s after it resumed (audit log timestamps), per replica;
- an A/A control: the same statistic over a window of the same length 3 s before the
  publish, with no reload (what the noisy 2-core machine does anyway).

Two layouts run one after the other: 1 replica (every stream on the reloading engine:
the pause a replica's clients see) and 2 replicas (one reloads at a time: the pause of
the service as a whole).

    flock /tmp/tierserve-heavy.lock timeout 900 .venv/bin/python benchmarks/reload.py \
        --rounds 8 --out benchmarks/results/reload.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx

MODELS_DIR = Path(os.environ.get("TIERSERVE_MODELS_DIR", "~/.cache/tierserve/models")).expanduser()
BASE = MODELS_DIR / "smollm2-135m-instruct"
VARIANT = "bench-smol"
STREAMS = 16
ENGINE_ENV = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}


def scaled_copy(dst: Path) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(BASE, dst, ignore=shutil.ignore_patterns(".*"))
    tensors = load_file(dst / "model.safetensors")
    for name in tensors:
        if "mlp.down_proj" in name:
            tensors[name] = tensors[name] * 1.5
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def app_config(root: Path, port: int, replicas: int, app: str):
    from tierserve.config import parse_config

    return parse_config({
        "models_dir": str(MODELS_DIR),
        "server": {"host": "127.0.0.1", "port": port, "app_name": app},
        "routing": {"default_tier": "7b"},
        "security": {"auth": "disabled"},
        "observability": {"request_log": False},
        "weights": {"root": str(root), "announce": "poll", "poll_interval_s": 0.5},
        "tiers": [{"id": "7b", "variants": [{
            "name": VARIANT, "model": "smollm2-135m-instruct", "precision": "fp32",
            "max_model_len": 1024, "max_num_seqs": STREAMS, "kv_cache_bytes": 256 << 20,
            "enforce_eager": True,
            "env": ENGINE_ENV, "resources": {"num_cpus": 0.4},
            "scaling": {"min_replicas": replicas, "max_replicas": replicas},
            "replica_routing": {"policy": "power_of_two"},
            "weights": {"hot_reload": True}}]}],
    })


async def stream(client: httpx.AsyncClient, url: str, i: int, max_tokens: int) -> dict:
    body = {"model": VARIANT, "stream": True, "temperature": 0, "max_tokens": max_tokens,
            "ignore_eos": True,
            "messages": [{"role": "user", "content": f"Tell me a long story about robot {i}."}]}
    stamps, ok = [], False
    try:
        async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
            replica = r.headers.get("x-tierserve-replica", "")
            errors = r.status_code != 200
            async for line in r.aiter_lines():
                if line == "data: [DONE]":
                    ok = not errors
                elif line.startswith("data: "):
                    frame = json.loads(line[6:])
                    errors = errors or "error" in frame
                    if "choices" in frame and frame["choices"][0]["delta"].get("content"):
                        stamps.append(time.time())
    except httpx.HTTPError:
        replica, ok = "", False
    return {"replica": replica, "stamps": stamps, "ok": ok and len(stamps) >= max_tokens // 2}


def max_gap(results: list[dict], begin: float, end: float, per_replica: bool) -> float:
    groups = ({r["replica"] for r in results} if per_replica else {None})
    worst = 0.0
    for replica in groups:
        stamps = sorted(s for r in results if per_replica is False or r["replica"] == replica
                        for s in r["stamps"])
        gaps = [b - a for a, b in zip(stamps, stamps[1:]) if b >= begin and a <= end]
        worst = max(worst, max(gaps, default=0.0))
    return worst


def wait_reloads(audit_path: Path, version: int, count: int, timeout_s: float = 120) -> list:
    from tierserve.weights.audit import read_audit

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = [r for r in read_audit(audit_path) if r["event"] == "reload"
                and r["version"] == version and r["result"] == "ok"]
        if len(done) >= count:
            return done
        time.sleep(0.2)
    raise TimeoutError(f"version {version} not loaded by {count} replica(s)")


async def one_round(url, store, audit_path, source, version, replicas, max_tokens) -> dict:
    async with httpx.AsyncClient(timeout=600) as client:
        tasks = [asyncio.create_task(stream(client, url, i, max_tokens)) for i in range(STREAMS)]
        await asyncio.sleep(6)
        published = time.time()
        await asyncio.to_thread(store.publish, "7b", source, publisher="bench", version=version)
        done = await asyncio.to_thread(wait_reloads, audit_path, version, replicas)
        results = await asyncio.gather(*tasks)
    spans = sorted((r["started_at"], r["finished_at"]) for r in done)
    begin, end = spans[0][0], spans[-1][1] + 0.5
    control_end = published - 3.0
    control = (control_end - (end - begin), control_end)
    last = max(s for r in results for s in r["stamps"])
    return {
        "version": version, "failed": sum(not r["ok"] for r in results),
        "requests": len(results), "reload_under_load": spans[-1][1] < last,
        "pause_per_replica_s": round(max_gap(results, begin, end, True), 3),
        "pause_service_s": round(max_gap(results, begin, end, False), 3),
        "control_per_replica_s": round(max_gap(results, *control, True), 3),
        "control_service_s": round(max_gap(results, *control, False), 3),
        "engine_pause_s": [r["pause_s"] for r in done], "load_s": [r["load_s"] for r in done],
        "overlapping_reloads": any(a[1] > b[0] for a, b in zip(spans, spans[1:])),
    }


def summarize(rounds: list[dict], key: str) -> dict:
    values = [r[key] for r in rounds]
    return {"median": round(statistics.median(values), 3), "min": min(values), "max": max(values)}


def run_layout(replicas: int, rounds: int, max_tokens: int, work: Path) -> dict:
    from ray import serve

    from tierserve.platform.app import build_app
    from tierserve.weights.store import LocalWeightStore

    app = f"reload-bench-{replicas}"
    root = work / f"store-{replicas}"
    store = LocalWeightStore(root)
    store.publish("7b", BASE, publisher="bench", version=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    from ray.serve.context import _get_global_client

    url = f"http://127.0.0.1:{_get_global_client().http_config.port}/{app}"
    begin = time.monotonic()
    serve.run(build_app(app_config(root, port, replicas, app)), name=app, route_prefix=f"/{app}")
    print(f"{app}: deployed in {time.monotonic() - begin:.1f} s", flush=True)
    scaled = scaled_copy(work / f"scaled-{replicas}")
    results = []
    try:
        for i in range(rounds):
            source = scaled if i % 2 == 0 else BASE
            result = asyncio.run(one_round(url, store, root / "audit.jsonl", source, i + 2,
                                           replicas, max_tokens))
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        serve.delete(app)
    return {
        "replicas": replicas, "rounds": results,
        "failed_requests": sum(r["failed"] for r in results),
        "requests": sum(r["requests"] for r in results),
        **{k: summarize(results, k) for k in ("pause_per_replica_s", "pause_service_s",
                                              "control_per_replica_s", "control_service_s")},
        "engine_pause_s": summarize([{"v": v} for r in results for v in r["engine_pause_s"]], "v"),
        "load_s": summarize([{"v": v} for r in results for v in r["load_s"]], "v"),
    }


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--layouts", default="1,2", help="replica counts to measure")
    parser.add_argument("--out", default="benchmarks/results/reload.json")
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(num_cpus=4, include_dashboard=False, logging_level="ERROR")
    layouts = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for replicas in (int(x) for x in args.layouts.split(",")):
                layouts.append(run_layout(replicas, args.rounds, args.max_tokens, Path(tmp)))
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    result = {
        "benchmark": "hot weight reload under 16 concurrent streams",
        "machine": "2 vCPU AMD EPYC (AVX2), 24 GiB, no GPU; vllm-cpu 0.32.0, Ray 2.60.0",
        "model": "SmolLM2-135M-Instruct fp32, max_num_seqs 16 and 256 MiB KV cache per "
                 "replica, OMP_NUM_THREADS=1",
        "streams": STREAMS, "max_tokens": args.max_tokens, "layouts": layouts,
        "load_average_after": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
