"""`tierserve bench router`: 1,000 concurrent streaming connections against the router,
tiers served by the fast FakeEngine, measuring errors and the router replica's memory."""

from __future__ import annotations

import asyncio
import threading
import time

from tierserve.bench.loadgen import Target, closed_loop
from tierserve.bench.ports import free_port
from tierserve.bench.ray_node import start_local_ray
from tierserve.bench.serve import _machine, wait_healthy

VARIANT = "fast-echo"


def fake_platform_config(port: int, token_delay_s: float, answer_tokens: int) -> dict:
    return {
        "server": {"host": "127.0.0.1", "port": port, "app_name": "bench-router"},
        "router": {"max_ongoing_requests": 4096},
        "security": {"auth": "disabled"},  # loopback only; measures the router without keys
        "tiers": [{"id": "7b", "variants": [{
            "name": VARIANT, "model": "none", "precision": "fp32", "engine": "fake",
            "max_model_len": 4096, "max_ongoing_requests": 4096,
            "engine_kwargs": {"token_delay_s": token_delay_s, "answer_tokens": answer_tokens},
            "resources": {"num_cpus": 0.1},
        }]}],
    }


def _router_pid(app: str) -> int:
    """Ray titles each replica process `ray::ServeReplica:<app>:<deployment>`."""
    import psutil

    title = f"ray::ServeReplica:{app}:router"
    for proc in psutil.process_iter(["cmdline"]):
        if any(part.startswith(title) for part in proc.info["cmdline"] or []):
            return proc.pid
    raise RuntimeError(f"no process titled {title}")


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval_s: float = 0.2):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(self.proc.memory_info().rss)
            time.sleep(self.interval_s)


def run(connections: int, requests: int, token_delay_s: float, answer_tokens: int) -> dict:
    import ray
    from ray import serve

    from tierserve.config import parse_config
    from tierserve.platform.app import build_app

    port = free_port()
    start_local_ray()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        config = parse_config(fake_platform_config(port, token_delay_s, answer_tokens))
        serve.run(build_app(config), name="bench-router", route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        sampler = RssSampler(_router_pid("bench-router"))
        idle_rss = sampler.proc.memory_info().rss
        sampler.start()
        target = Target("router", url, "auto")
        result = asyncio.run(closed_loop(target, ["hello there"], connections, requests,
                                         answer_tokens))
        sampler.stop.set()
        sampler.join()
    finally:
        serve.shutdown()
        ray.shutdown()
    report = result.report()
    return {
        "benchmark": "router: concurrent streaming connections",
        "connections": connections, "requests": requests,
        "fake_engine": {"token_delay_s": token_delay_s, "answer_tokens": answer_tokens},
        "errors": report["errors"], "error_samples": report["error_samples"],
        "wall_s": report["wall_s"], "ttft_ms": report["ttft_ms"],
        "output_tokens_per_s": report["output_tokens_per_s"],
        "router_rss_bytes": {"idle": idle_rss, "peak": max(sampler.samples, default=idle_rss)},
        "target": "0 errors, router RSS < 2 GiB",
        "machine": _machine(),
    }
