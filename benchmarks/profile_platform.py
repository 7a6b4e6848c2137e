"""py-spy profile of the platform's proxy, router and tier replica under 16 concurrent
streams (SmolLM2, the `bench serve` engine settings): raw collapsed stacks for 30 s into
benchmarks/results/profile_c16/, summarised by benchmarks/pyspy_summary.py.

    .venv/bin/python benchmarks/profile_platform.py [standard|throughput] [stream_interval]
"""
import asyncio, json, os, subprocess, sys
from pathlib import Path
import psutil
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tierserve.bench import serve
from tierserve.bench.loadgen import Target, closed_loop
from tierserve.bench.ports import free_port

mode = sys.argv[1] if len(sys.argv) > 1 else "standard"
interval = int(sys.argv[2]) if len(sys.argv) > 2 else 1
out = Path(__file__).resolve().parent / "results" / "profile_c16"
out.mkdir(parents=True, exist_ok=True)
eng = serve.EngineSettings(os.path.expanduser("~/.cache/tierserve/models/smollm2-135m-instruct"), stream_interval=interval)
port = free_port()
serve.start_platform(eng, port, mode)
url = f"http://127.0.0.1:{port}"
serve.wait_healthy(url)
prompts = serve.load_prompts(Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mt_bench" / "question.jsonl")
t = Target("p", url, serve.VARIANT)
asyncio.run(closed_loop(t, prompts, 2, 4, 8))
pids = {}
for p in psutil.process_iter(["pid", "cmdline"]):
    cmd = " ".join(p.info["cmdline"] or [])
    for key, mark in (("proxy", "ProxyActor"), ("router", "ServeReplica:bench:router"), ("tier", "ServeReplica:bench:bench-smol")):
        if mark in cmd:
            pids[key] = p.info["pid"]
print(pids, flush=True)
spies = [subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid), "-d", "30", "-r", "50", "--nonblocking",
                           "-f", "raw", "-o", str(out / f"{key}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
         for key, pid in pids.items()]
res = asyncio.run(closed_loop(t, prompts, 16, 64, 48))
for s in spies: s.wait()
print(json.dumps(res.report(), indent=1)[:600])
serve._stop_platform()
