"""Real Ray Serve + real vLLM CPU engines, deployed once per test session.

The test config serves every tier with SmolLM2-135M-Instruct (fp32, plus its W8A8 INT8
variant on the 7b tier), so four real engines fit in memory and start in about a minute.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.redis_server import free_port
from tierserve.config import TierServeConfig, parse_config
from tierserve.deployments.node_env import apply_serving_node_env

MODELS_DIR = Path(os.environ.get("TIERSERVE_MODELS_DIR", "~/.cache/tierserve/models")).expanduser()
APP = "tierserve"
ENGINE_ENV = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}


def smol(name: str, model: str = "smollm2-135m-instruct", **extra) -> dict:
    return {
        "name": name,
        "model": model,
        "precision": "fp32",
        "max_model_len": 1024,
        "max_num_seqs": 8,
        "kv_cache_bytes": 128 << 20,
        "enforce_eager": True,
        "env": ENGINE_ENV,
        "resources": {"num_cpus": 0.4},
        **extra,
    }


def integration_config(port: int, redis_url: str | None = None) -> TierServeConfig:
    return parse_config({
        "models_dir": str(MODELS_DIR),
        "server": {"host": "127.0.0.1", "port": port, "app_name": APP},
        "context": {"redis_url": redis_url, "retry_after_failure_s": 0.5},
        # The shared platform stays open (its tests send no keys); test_security.py deploys
        # a keyed router in front of the same engines.
        "security": {"auth": "disabled"},
        "tiers": [
            {"id": "7b", "variants": [
                smol("smol-7b"),
                smol("smol-7b-int8", model="smollm2-135m-instruct-w8a8", precision="int8",
                     dtype="bfloat16"),
            ]},
            {"id": "33b", "variants": [smol("smol-33b")]},
            {"id": "236b", "variants": [smol("smol-236b")]},
        ],
    })


@dataclass
class Platform:
    url: str
    config: TierServeConfig
    redis: object = None

    def handle(self, deployment: str):
        from ray import serve

        return serve.get_deployment_handle(deployment, app_name=APP)

    def stats(self, deployment: str):
        return self.handle(deployment).stats.remote().result(timeout_s=30)


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    missing = [m for m in ("smollm2-135m-instruct", "smollm2-135m-instruct-w8a8")
               if not (MODELS_DIR / m).exists()]
    if missing:
        pytest.fail(f"models missing in {MODELS_DIR}: {missing}; run `make install`")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    apply_serving_node_env()  # the node as `tierserve up` starts it
    ray.init(num_cpus=4, include_dashboard=False, logging_level="WARNING")
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def platform(ray_cluster, session_redis) -> Platform:
    from ray import serve

    from tierserve.platform.app import build_app

    port = free_port()
    config = integration_config(port, session_redis.url)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    begin = time.monotonic()
    serve.run(build_app(config), name=APP, route_prefix="/")
    print(f"\nplatform deployed in {time.monotonic() - begin:.1f} s")
    url = f"http://127.0.0.1:{port}"
    httpx.get(f"{url}/health", timeout=30).raise_for_status()
    return Platform(url, config, session_redis)
