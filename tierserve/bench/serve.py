"""`tierserve bench serve`: platform overhead versus bare vLLM, measured in ONE run.

Systems, all on the same engine settings (one SmolLM2 engine each, resident side by side,
only one under load at a time):
  (a) bare vLLM: vLLM's own OpenAI server (`python -m vllm.entrypoints.openai.api_server`)
  (b) the platform with the model pinned (`model: <variant>`)
  (c) the platform with `auto` routing (the classifier runs; it can only pick that engine)
Each round runs a, b, c, then a again; the second `a` against the first is the A/A control
that shows the machine's noise beside every ratio.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform as host
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tierserve.bench.cpu_account import CpuMeter, Roles
from tierserve.bench.loadgen import (
    RunResult,
    Target,
    closed_loop,
    fresh_prompts,
    open_loop,
    rotated,
)
from tierserve.bench.peer import PEER_APP, PEER_PREFIX, deploy_peer
from tierserve.bench.ports import free_port
from tierserve.bench.ray_node import start_local_ray
from tierserve.bench.ttft_probe import SETTLE_S, paired_report, paired_ttft

VARIANT = "bench-smol"
COMPARED = ("pinned", "auto", "peer")
"""Systems compared with the bare baseline ('peer': Ray Serve LLM, when deployed)."""


@dataclass(frozen=True)
class EngineSettings:
    model_dir: str
    max_model_len: int = 2048
    max_num_seqs: int = 16
    kv_cache_bytes: int = 256 << 20
    omp_threads: int = 2
    stream_interval: int = 1
    """vLLM's `--stream-interval`: tokens per streamed chunk after the first (same for both)."""

    @property
    def env(self) -> dict[str, str]:
        return {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": str(self.omp_threads),
                "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}


def load_prompts(path: Path, limit: int = 200) -> list[str]:
    prompts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        text = (row.get("turns") or [None])[0] or row.get("prompt") or row.get("question")
        if text:
            prompts.append(text)
    if not prompts:
        raise ValueError(f"no prompts in {path} (expected 'turns', 'prompt' or 'question')")
    return prompts[:limit]


def start_bare_vllm(engine: EngineSettings, port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", engine.model_dir, "--served-model-name", VARIANT,
           "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager",
           "--kv-cache-memory-bytes", str(engine.kv_cache_bytes),
           "--max-model-len", str(engine.max_model_len),
           "--max-num-seqs", str(engine.max_num_seqs),
           "--stream-interval", str(engine.stream_interval)]
    env = {**os.environ, **engine.env}
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def platform_config(engine: EngineSettings, port: int) -> dict:
    return {
        "server": {"host": "127.0.0.1", "port": port, "app_name": "bench"},
        "security": {"auth": "disabled"},  # loopback only; bare vLLM has no keys either
        "tiers": [{"id": "7b", "variants": [{
            "name": VARIANT, "model": engine.model_dir, "precision": "fp32",
            "max_model_len": engine.max_model_len, "max_num_seqs": engine.max_num_seqs,
            "kv_cache_bytes": engine.kv_cache_bytes, "enforce_eager": True,
            "env": engine.env, "resources": {"num_cpus": 1},
            "stream_interval_tokens": engine.stream_interval,
        }]}],
    }


def start_platform(engine: EngineSettings, port: int, serve_mode: str,
                   with_peer: bool = False) -> None:
    from ray import serve

    from tierserve.config import parse_config
    from tierserve.platform.app import build_app

    # Logical CPUs are bookkeeping here (engines take OMP threads from EngineSettings);
    # the peer's engine placement group asks for two of them on its own.
    start_local_ray(serve_mode, num_cpus=4 if with_peer else 2)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(parse_config(platform_config(engine, port))), name="bench",
              route_prefix="/")
    if with_peer:
        deploy_peer(engine, VARIANT)


def wait_healthy(url: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} not ready after {timeout_s} s")


def _ratio_block(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": values}


def compare(rounds: list[dict[str, dict]]) -> dict:
    """Ratios per round against the mean of the round's two bare runs, and the A/A control."""
    out: dict = {}
    for system in [s for s in COMPARED if s in rounds[0]]:
        tput, ttft_added, tpot_ratio = [], [], []
        for r in rounds:
            base_tput = (r["bare"]["output_tokens_per_s"] + r["bare2"]["output_tokens_per_s"]) / 2
            base_ttft = (r["bare"]["ttft_ms"]["p50"] + r["bare2"]["ttft_ms"]["p50"]) / 2
            base_tpot = (r["bare"]["tpot_ms"]["p50"] + r["bare2"]["tpot_ms"]["p50"]) / 2
            tput.append(r[system]["output_tokens_per_s"] / base_tput)
            ttft_added.append(r[system]["ttft_ms"]["p50"] - base_ttft)
            tpot_ratio.append(r[system]["tpot_ms"]["p50"] / base_tpot)
        out[system] = {"throughput_ratio": _ratio_block(tput),
                       "ttft_p50_added_ms": _ratio_block(ttft_added),
                       "tpot_p50_ratio": _ratio_block(tpot_ratio)}
    aa = [r["bare2"]["output_tokens_per_s"] / r["bare"]["output_tokens_per_s"] for r in rounds]
    aa_ttft = [r["bare2"]["ttft_ms"]["p50"] - r["bare"]["ttft_ms"]["p50"] for r in rounds]
    out["aa_control"] = {"throughput_ratio": _ratio_block(aa),
                         "ttft_p50_delta_ms": _ratio_block(aa_ttft)}
    if all("cpu" in run for r in rounds for run in r.values()):
        out["cpu_ms_per_output_token"] = cpu_per_token(rounds)
    return out


def cpu_per_token(rounds: list[dict[str, dict]]) -> dict[str, dict[str, float]]:
    """Median over rounds of each role's CPU milliseconds per output token, per system
    (the baseline's two runs pooled); roles that spent nothing are left out."""
    out: dict[str, dict[str, float]] = {}
    systems = [("bare", ("bare", "bare2"))] + [(s, (s,)) for s in COMPARED if s in rounds[0]]
    for system, runs in systems:
        samples: dict[str, list[float]] = {}
        for r in rounds:
            for run in runs:
                for role, ms in r[run]["cpu"]["cpu_ms_per_output_token"].items():
                    samples.setdefault(role, []).append(ms or 0.0)
        medians = {role: statistics.median(v) for role, v in samples.items()}
        out[system] = {role: ms for role, ms in medians.items() if ms > 0.005}
    return out


@dataclass(frozen=True)
class LoadPoint:
    """One load level: closed loop at `concurrency`, or Poisson arrivals at `rate_per_s`."""

    concurrency: int | None = None
    rate_per_s: float | None = None

    @property
    def key(self) -> str:
        return str(self.concurrency) if self.concurrency else f"poisson{self.rate_per_s:g}"

    def requests(self, minimum: int) -> int:
        return max(minimum, 2 * self.concurrency) if self.concurrency else minimum

    async def drive(self, target: Target, prompts: list[str], requests: int, max_tokens: int,
                    progress) -> RunResult:
        if self.concurrency:
            return await closed_loop(target, prompts, self.concurrency, requests, max_tokens,
                                     on_done=progress)
        return await open_loop(target, prompts, self.rate_per_s, requests, max_tokens,
                               on_done=progress)


async def _measured(point: LoadPoint, target: Target, prompts: list[str], requests: int,
                    max_tokens: int, progress, meter: CpuMeter | None) -> dict:
    prompts = fresh_prompts(prompts, requests)
    await asyncio.sleep(SETTLE_S)  # let the previous run's engine stop polling
    if meter is not None:
        meter.start()
    report = (await point.drive(target, prompts, requests, max_tokens, progress)).report()
    if meter is not None:
        report["cpu"] = meter.stop(report["output_tokens"])
    return report


async def _sweep(targets: dict[str, Target], prompts: list[str], points: list[LoadPoint],
                 requests: int, max_tokens: int, rounds: int, progress,
                 meter: CpuMeter | None = None) -> dict:
    results: dict = {}
    for point in points:
        per_round = []
        n = point.requests(requests)
        for r in range(rounds):
            # Rotate the middle systems' order so none always follows the baseline.
            middle = rotated([s for s in COMPARED if s in targets], r)
            order = ["bare", *middle, "bare2"]
            got = {}
            for name in order:
                got[name] = await _measured(point, targets[name], prompts, n, max_tokens,
                                            progress, meter)
            per_round.append(got)
        results[point.key] = {"requests_per_run": n, "rounds": per_round,
                              "comparison": compare(per_round)}
    return results


def run(engine: EngineSettings, prompts: list[str], points: list[LoadPoint], requests: int,
        max_tokens: int, rounds: int, workdir: Path, serve_mode: str = "standard",
        ttft_pairs: int = 24, with_peer: bool = False) -> dict:
    from tqdm import tqdm

    bare_port, platform_port = free_port(), free_port()
    bare = start_bare_vllm(engine, bare_port, workdir / "bare-vllm.log")
    try:
        start_platform(engine, platform_port, serve_mode, with_peer)
        bare_url, platform_url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{platform_port}"
        wait_healthy(bare_url)
        wait_healthy(platform_url)
        targets = {"bare": Target("bare-vllm", bare_url, VARIANT),
                   "bare2": Target("bare-vllm", bare_url, VARIANT),
                   "pinned": Target("platform-pinned", platform_url, VARIANT),
                   "auto": Target("platform-auto", platform_url, "auto")}
        if with_peer:
            targets["peer"] = Target("ray-serve-llm", platform_url + PEER_PREFIX, VARIANT)
            wait_healthy(targets["peer"].base_url)
        warm = [closed_loop(t, prompts, 2, 4, 8) for name, t in targets.items()
                if name in ("bare", "pinned", "peer")]
        asyncio.run(_gather(warm))
        meter = CpuMeter(Roles(bare_server_pid=bare.pid, driver_pid=os.getpid(),
                               app_name="bench", variant=VARIANT,
                               peer_app=PEER_APP if with_peer else None))
        total = (sum(p.requests(requests) for p in points) * rounds + ttft_pairs) * len(targets)
        with tqdm(total=total, desc="bench serve", unit="req") as bar:
            sweep = asyncio.run(_sweep(targets, prompts, points, requests, max_tokens,
                                       rounds, lambda: bar.update(1), meter))
            probe = asyncio.run(paired_ttft(targets, prompts, ttft_pairs,
                                            progress=lambda: bar.update(1)))
    finally:
        _stop(bare)
        _stop_platform()
    return {"benchmark": "serve overhead vs bare vLLM", "serve_mode": serve_mode,
            "systems": {name: t.name for name, t in targets.items()},
            "engine": engine.__dict__,
            "max_tokens": max_tokens, "prompts": len(prompts),
            "concurrency": {p.key: sweep[p.key] for p in points if p.concurrency},
            "poisson": {p.key: sweep[p.key] for p in points if not p.concurrency},
            "ttft_probe": {"pairs": ttft_pairs, "max_tokens": 2,
                           "systems": paired_report(probe, "bare", "bare2")},
            "machine": _machine()}


async def _gather(coros):
    return await asyncio.gather(*coros)


def _stop(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def _stop_platform() -> None:
    import ray
    from ray import serve

    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()


def _machine() -> dict:
    import ray
    import vllm

    return {"python": host.python_version(), "cpus": os.cpu_count(), "machine": host.machine(),
            "vllm": vllm.__version__, "ray": ray.__version__}
