"""A deterministic in-process engine for unit tests of routing and API logic.

It "tokenizes" on whitespace and answers with a fixed echo of the last user message,
so tests can check plumbing (streaming, usage, limits, aborts) in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tierserve.deployments.engine import EngineStats, GenerationChunk, GenerationRequest
from tierserve.deployments.prompting import check_context_length


class FakeEngine:
    def __init__(self, name: str = "fake", max_model_len: int = 512, token_delay_s: float = 0.0,
                 answer_tokens: int | None = None):
        self.name = name
        self.max_model_len = max_model_len
        self.token_delay_s = token_delay_s
        self.answer_tokens = answer_tokens
        """Fixed answer length (router load tests); None echoes the last message."""
        self.running: set[str] = set()
        self.aborted: list[str] = []
        self.finished = 0
        self.started = False
        self.weights_label: str | None = None
        """Label of the weights loaded by reload_weights; shown in answers once set."""
        self.reloads: list[str] = []
        self.reload_delay_s = 0.0
        self.fail_reloads: set[str] = set()
        """Paths whose reload fails (the previous weights are kept)."""

    async def start(self) -> None:
        self.started = True

    def _prompt_words(self, request: GenerationRequest) -> list[str]:
        if request.prompt is not None:
            return request.prompt.split()
        return [w for m in request.messages for w in f"{m['role']}: {m['content']}".split()]

    def _answer_words(self, request: GenerationRequest) -> list[str]:
        if self.answer_tokens is not None:
            return [f"t{i}" for i in range(self.answer_tokens)]
        source = request.prompt if request.prompt is not None else request.messages[-1]["content"]
        tag = self.name if self.weights_label is None else f"{self.name}@{self.weights_label}"
        return f"[{tag}] {source}".split()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        prompt_tokens = len(self._prompt_words(request))
        budget = check_context_length(
            prompt_tokens, request.sampling.max_tokens, self.max_model_len, self.name
        )
        words = self._answer_words(request)
        limit = budget if request.sampling.ignore_eos else min(budget, len(words))
        self.running.add(request.request_id)
        try:
            for i in range(limit):
                await asyncio.sleep(self.token_delay_s)
                word = words[i % len(words)]
                done = i == limit - 1
                reason = ("length" if limit == budget else "stop") if done else None
                yield GenerationChunk(("" if i == 0 else " ") + word, prompt_tokens, i + 1, reason)
            self.finished += 1
        except (asyncio.CancelledError, GeneratorExit):
            self.aborted.append(request.request_id)
            raise
        finally:
            self.running.discard(request.request_id)

    async def abort(self, request_id: str) -> None:
        if request_id in self.running:
            self.aborted.append(request_id)
            self.running.discard(request_id)

    async def stats(self) -> EngineStats:
        return EngineStats(
            running=len(self.running), aborted_total=len(self.aborted), finished_total=self.finished
        )

    async def reload_weights(self, path: str, label: str | None = None) -> dict:
        from tierserve.weights.errors import WeightsLoadFailed

        await asyncio.sleep(self.reload_delay_s)
        if path in self.fail_reloads:
            raise WeightsLoadFailed(f"fake load of {path} failed", restored=True)
        self.reloads.append(path)
        self.weights_label = label or path
        return {"pause_s": self.reload_delay_s, "load_s": self.reload_delay_s}

    async def check_health(self) -> None:
        if not self.started:
            raise RuntimeError("engine not started")

    async def shutdown(self) -> None:
        self.started = False
