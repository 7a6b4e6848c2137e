"""Queue-depth autoscaling on real Ray Serve with a real vLLM CPU engine: a burst scales
the tier 1 → 2, the drain brings it back to 1, and no request fails."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fixtures.waiting import wait_until
from tests.integration.conftest import MODELS_DIR, smol
from tierserve.config import parse_config
from tierserve.deployments.engine import GenerationRequest, SamplingOptions

APP = "autoscale"
DEPLOYMENT = "smol-autoscale"


@pytest.fixture(scope="module")
def scaling_tier(platform):
    from ray import serve

    from tierserve.platform.app import tier_deployment
    from tierserve.platform.settings import load_settings

    config = parse_config({"models_dir": str(MODELS_DIR), "tiers": [{"id": "7b", "variants": [
        smol(DEPLOYMENT, scaling={"min_replicas": 1, "max_replicas": 2,
                                  "target_queue_per_replica": 2, "upscale_delay_s": 1.0,
                                  "downscale_delay_s": 6.0})]}]})
    tier, variant = config.find_variant(DEPLOYMENT)
    serve.run(tier_deployment(config, tier.id, variant, load_settings()), name=APP,
              route_prefix=None)
    yield serve.get_deployment_handle(DEPLOYMENT, app_name=APP)
    serve.delete(APP)


def running_replicas() -> int:
    from ray import serve

    dep = serve.status().applications[APP].deployments[DEPLOYMENT]
    return dep.replica_states.get("RUNNING", 0)


async def _generate(handle, i: int) -> int:
    request = GenerationRequest(f"as-{i}", SamplingOptions(max_tokens=48, ignore_eos=True,
                                                           temperature=0),
                                messages=({"role": "user", "content": f"Count to {i}."},))
    last = None
    async for chunk in handle.options(stream=True).generate.remote(request):
        last = chunk
    return last.completion_tokens


class LoadDriver:
    """Keeps `width` requests in flight on the tier until stopped; records every outcome."""

    def __init__(self, handle, width: int):
        import threading

        self.handle, self.width = handle, width
        self.results: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _worker(self, w: int) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                self.results.append(await _generate(self.handle, w * 1000 + i))
            except Exception as err:  # recorded, asserted on below
                self.results.append(err)
            i += 1

    async def _run(self) -> None:
        await asyncio.gather(*(self._worker(w) for w in range(self.width)))


def test_burst_scales_up_then_back_down_without_failures(scaling_tier):
    from tierserve.autoscaling.journal import read_journal

    assert running_replicas() == 1
    load = LoadDriver(scaling_tier, width=10)
    burst_at = time.time()
    load.thread.start()
    try:
        scaled_at = wait_until(lambda: read_journal().get(DEPLOYMENT, {}).get("target") == 2, 60)
        assert scaled_at is not None, read_journal()
        decision = read_journal()[DEPLOYMENT]
        assert decision["reason"].startswith("scale:up(1->2"), decision
        serving_at = wait_until(lambda: running_replicas() == 2, 240)
        assert serving_at is not None, read_journal()
    finally:
        load.stop.set()
        load.thread.join(timeout=120)
    failures = [r for r in load.results if isinstance(r, BaseException)]
    assert not failures, failures[:3]
    assert len(load.results) >= 10 and set(load.results) == {48}
    print(f"\nburst start → scale decision: {decision['at'] - burst_at:.2f} s (queue build-up + "
          f"1 s upscale delay); decision → 2nd replica RUNNING: {serving_at - scaled_at:.1f} s; "
          f"{len(load.results)} requests, 0 failed")
    down_at = wait_until(lambda: running_replicas() == 1, 90)
    assert down_at is not None, read_journal()
    assert read_journal()[DEPLOYMENT]["last_scale"]["reason"].startswith("scale:down(2->1")
