"""Where the platform's TTFT goes, from its own OpenTelemetry spans: the platform alone
(SmolLM2, `bench serve` engine settings, tracing to a file), one request at a time,
stages from the client's clock and the router's and tier's spans (same host clock).

    .venv/bin/python benchmarks/ttft_breakdown.py [requests]   -> results/ttft_breakdown.json
"""
import asyncio, json, os, statistics, sys, tempfile, time, uuid
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import httpx
from ray import serve
from tierserve.bench import serve as bs
from tierserve.bench.ports import free_port
from tierserve.bench.ray_node import start_local_ray
from tierserve.config import parse_config
from tierserve.observability.tracing import read_span_file
from tierserve.platform.app import build_app

N = int(sys.argv[1]) if len(sys.argv) > 1 else 30
traces = os.path.join(tempfile.mkdtemp(), "spans.jsonl")
Path(traces).unlink(missing_ok=True)
eng = bs.EngineSettings(os.path.expanduser("~/.cache/tierserve/models/smollm2-135m-instruct"))
port = free_port()
cfg = bs.platform_config(eng, port)
cfg["observability"] = {"exporter": "file", "traces_file": traces, "export_delay_s": 0.5, "metrics": False, "request_log": False}
start_local_ray()
serve.start(http_options={"host": "127.0.0.1", "port": port})
serve.run(build_app(parse_config(cfg)), name="bench", route_prefix="/")
url = f"http://127.0.0.1:{port}"
bs.wait_healthy(url)
prompts = bs.load_prompts(Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mt_bench" / "question.jsonl")

async def main():
    out = []
    async with httpx.AsyncClient(timeout=60) as client:
        for i in range(N + 3):
            body = {"model": bs.VARIANT, "stream": True, "max_tokens": 2, "ignore_eos": True, "temperature": 0,
                    "messages": [{"role": "user", "content": f"[{uuid.uuid4().hex[:8]}] {prompts[i % len(prompts)]}"}]}
            t0 = time.time_ns()
            first = None
            async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
                rid = next((v for v in r.headers.get_list("x-request-id") if v.startswith("chatcmpl")), None)
                async for line in r.aiter_lines():
                    if first is None and line.startswith("data: ") and '"content"' in line:
                        first = time.time_ns()
            if i >= 3:
                out.append((rid, t0, first))
            await asyncio.sleep(0.3)
    return out

reqs = asyncio.run(main())
time.sleep(4)
serve.shutdown()
import ray; ray.shutdown()
spans = read_span_file(traces)
by_trace = {}
for s in spans:
    by_trace.setdefault(s["trace_id"], []).append(s)
rows = []
for trace in by_trace.values():
    names = {s["name"]: s for s in trace}
    root = names.get("router.request")
    if not root or "tier.generate" not in names: continue
    rid = root["attributes"].get("tierserve.request_id")
    match = [r for r in reqs if r[0] == rid]
    if not match: continue
    _, t0, first = match[0]
    disp, tier, eng_s = names["router.dispatch"], names["tier.generate"], names["engine.generate"]
    tier_first = tier["start_ns"] + eng_s["attributes"]["tierserve.engine_ttft_s"] * 1e9
    router_first = root["start_ns"] + root["attributes"]["tierserve.ttft_s"] * 1e9
    rows.append({
        "client→router (proxy in)": (root["start_ns"] - t0) / 1e6,
        "router before dispatch": (disp["start_ns"] - root["start_ns"]) / 1e6,
        "router→tier (handle call)": (tier["start_ns"] - disp["start_ns"]) / 1e6,
        "engine: prefill to first token": (tier_first - tier["start_ns"]) / 1e6,
        "tier→router (first chunk)": (router_first - tier_first) / 1e6,
        "router→client (proxy out)": (first - router_first) / 1e6,
        "client TTFT": (first - t0) / 1e6,
    })
print(len(rows), "requests")
result = {k: {"median": statistics.median(r[k] for r in rows), "p25": sorted(r[k] for r in rows)[len(rows)//4], "p75": sorted(r[k] for r in rows)[3*len(rows)//4]} for k in rows[0]}
for k, v in result.items():
    print(f"{k:34s} {v['median']:8.2f} ms  [{v['p25']:.2f} … {v['p75']:.2f}]")
json.dump({"requests": len(rows), "stages_ms": result, "rows": rows}, open(Path(__file__).resolve().parent / "results" / "ttft_breakdown.json", "w"), indent=1)
