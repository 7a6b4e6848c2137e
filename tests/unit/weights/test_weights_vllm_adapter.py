"""The order of vLLM calls in VLLMEngine.reload_weights and its restore path, against a
recording stand-in for AsyncLLM (the real engine is exercised in
tests/integration/test_weight_reload.py)."""

from __future__ import annotations

import pytest

from tierserve.deployments.vllm_engine import RELOAD_EXTENSION, VLLMEngine
from tierserve.errors import EngineFailure
from tierserve.weights.errors import WeightsLoadFailed


class RecordingLLM:
    def __init__(self, fail_paths=()):
        self.calls = []
        self.fail_paths = set(fail_paths)

    async def pause_generation(self, *, mode, clear_cache):
        self.calls.append(("pause", mode, clear_cache))

    async def collective_rpc(self, method, timeout=None, args=(), kwargs=None):
        path = kwargs["weights_path"]
        self.calls.append((method, path))
        return [f"OSError: cannot read {path}" if path in self.fail_paths else None]

    async def reset_prefix_cache(self):
        self.calls.append(("reset_prefix_cache",))
        return True

    async def update_weight_version(self, version):
        self.calls.append(("version", version))

    async def resume_generation(self):
        self.calls.append(("resume",))


def engine_with(llm, **args) -> VLLMEngine:
    engine = VLLMEngine("smol", {"model": "/models/base", "max_model_len": 64, **args})
    engine._engine = llm
    return engine


async def test_reload_pauses_keeping_requests_loads_resets_and_resumes():
    llm = RecordingLLM()
    engine = engine_with(llm)
    timings = await engine.reload_weights("/store/7b/v000002", "v2")
    assert llm.calls == [
        ("pause", "keep", False), ("tierserve_reload_weights", "/store/7b/v000002"),
        ("reset_prefix_cache",), ("version", "v2"), ("resume",)]
    assert set(timings) == {"pause_s", "load_s"}
    assert engine._cache_salt == "v2" and engine._weights_path == "/store/7b/v000002"


async def test_a_failed_load_restores_the_previous_checkpoint_before_resuming():
    llm = RecordingLLM(fail_paths={"/store/bad"})
    engine = engine_with(llm)
    await engine.reload_weights("/store/v2", "v2")
    with pytest.raises(WeightsLoadFailed) as err:
        await engine.reload_weights("/store/bad", "v3")
    assert err.value.restored is True
    assert llm.calls[-4:] == [("pause", "keep", False), ("tierserve_reload_weights", "/store/bad"),
                              ("tierserve_reload_weights", "/store/v2"), ("resume",)]
    assert engine._cache_salt == "v2" and engine._weights_path == "/store/v2"
    assert engine._broken is None


async def test_an_engine_that_cannot_restore_reports_itself_unhealthy():
    llm = RecordingLLM(fail_paths={"/store/bad", "/models/base"})
    engine = engine_with(llm)
    with pytest.raises(WeightsLoadFailed) as err:
        await engine.reload_weights("/store/bad", "v3")
    assert err.value.restored is False and llm.calls[-1] == ("resume",)
    with pytest.raises(EngineFailure, match="unusable"):
        await engine.check_health()


async def test_a_user_worker_extension_falls_back_to_vllms_own_reload():
    llm = RecordingLLM()
    engine = engine_with(llm, worker_extension_cls="my.Extension")
    await engine.reload_weights("/store/v2", "v2")
    assert ("reload_weights", "/store/v2") in llm.calls
    assert RELOAD_EXTENSION.endswith("vllm_engine.ReloadWorkerExtension")
