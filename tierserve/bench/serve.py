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
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tierserve.bench.loadgen import Target, closed_loop

VARIANT = "bench-smol"


@dataclass(frozen=True)
class EngineSettings:
    model_dir: str
    max_model_len: int = 2048
    max_num_seqs: int = 16
    kv_cache_bytes: int = 256 << 20
    omp_threads: int = 2

    @property
    def env(self) -> dict[str, str]:
        return {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": str(self.omp_threads),
                "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
           "--max-num-seqs", str(engine.max_num_seqs)]
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
        }]}],
    }


def start_platform(engine: EngineSettings, port: int, serve_mode: str) -> None:
    import ray
    from ray import serve

    from tierserve.config import parse_config
    from tierserve.platform.app import build_app
    from tierserve.platform.local import serve_mode_env

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.update(serve_mode_env(serve_mode))
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(parse_config(platform_config(engine, port))), name="bench",
              route_prefix="/")


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
    for system in ("pinned", "auto"):
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
    return out


async def _sweep(targets: dict[str, Target], prompts: list[str], concurrency: list[int],
                 requests: int, max_tokens: int, rounds: int, progress) -> dict:
    results: dict = {}
    for c in concurrency:
        per_round = []
        n = max(requests, 2 * c)
        for r in range(rounds):
            # Alternate the middle systems' order so neither always follows the baseline.
            order = ["bare", "pinned", "auto", "bare2"] if r % 2 == 0 else ["bare", "auto", "pinned", "bare2"]
            got = {}
            for name in order:
                run = await closed_loop(targets[name], prompts, c, n, max_tokens,
                                        on_done=progress)
                got[name] = run.report()
            per_round.append(got)
        results[str(c)] = {"requests_per_run": n, "rounds": per_round,
                           "comparison": compare(per_round)}
    return results


def run(engine: EngineSettings, prompts: list[str], concurrency: list[int], requests: int,
        max_tokens: int, rounds: int, workdir: Path, serve_mode: str = "standard") -> dict:
    from tqdm import tqdm

    bare_port, platform_port = free_port(), free_port()
    bare = start_bare_vllm(engine, bare_port, workdir / "bare-vllm.log")
    try:
        start_platform(engine, platform_port, serve_mode)
        bare_url, platform_url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{platform_port}"
        wait_healthy(bare_url)
        wait_healthy(platform_url)
        targets = {"bare": Target("bare-vllm", bare_url, VARIANT),
                   "bare2": Target("bare-vllm", bare_url, VARIANT),
                   "pinned": Target("platform-pinned", platform_url, VARIANT),
                   "auto": Target("platform-auto", platform_url, "auto")}
        warm = [closed_loop(t, prompts, 2, 4, 8) for t in (targets["bare"], targets["pinned"])]
        asyncio.run(_gather(warm))
        total = sum(max(requests, 2 * c) for c in concurrency) * rounds * 4
        with tqdm(total=total, desc="bench serve", unit="req") as bar:
            sweep = asyncio.run(_sweep(targets, prompts, concurrency, requests, max_tokens,
                                       rounds, lambda: bar.update(1)))
    finally:
        _stop(bare)
        _stop_platform()
    return {"benchmark": "serve overhead vs bare vLLM", "serve_mode": serve_mode,
            "engine": engine.__dict__,
            "max_tokens": max_tokens, "prompts": len(prompts), "concurrency": sweep,
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
