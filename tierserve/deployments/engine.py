"""The engine seam: what a tier deployment needs from an inference engine.

Plain data crosses the Ray handle between router and tier, so these dataclasses are
defined here, free of Ray and vLLM, and shared by both sides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SamplingOptions:
    max_tokens: int | None = None
    """Completion tokens; None means "up to the context window"."""
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    min_tokens: int = 0
    ignore_eos: bool = False


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    sampling: SamplingOptions
    messages: tuple[dict, ...] | None = None
    """Chat messages ({role, content: str}); the engine applies its model's chat template."""
    prompt: str | None = None
    """Raw prompt for /v1/completions."""
    conversation: str | None = None
    """Opaque conversation key ("<owner>:<conversation id>") the tier's request router uses
    to keep a conversation on one replica; None outside conversations."""
    prefix_blocks: tuple[int, ...] = ()
    """Chained hashes of the prompt's leading token blocks (counted with the variant's own
    tokenizer), for prefix-aware replica choice; empty when the policy does not use them."""
    routing_policy: str | None = None
    """Replica-routing policy for this request only (A/B benchmarks); None: the deployment's."""
    trace_context: dict[str, str] | None = None
    """W3C trace context ({"traceparent": ...}) of the router's dispatch span, carried across
    the Ray Serve handle call so the tier's spans join the request's trace; None untraced."""

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("exactly one of messages / prompt must be set")


@dataclass(frozen=True)
class GenerationChunk:
    """A piece of one generation: the new text and the running token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    replica: str | None = None
    """Id of the replica that produced the generation (set on the first chunk)."""


@dataclass(frozen=True)
class EngineStats:
    waiting: int = 0
    running: int = 0
    kv_cache_usage: float = 0.0
    """Fraction of KV-cache blocks in use, 0..1."""
    aborted_total: int = 0
    finished_total: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def queue_depth(self) -> int:
        return self.waiting + self.running


@runtime_checkable
class EngineBackend(Protocol):
    """An inference engine behind a tier deployment."""

    max_model_len: int

    async def start(self) -> None:
        """Load the model; return when the engine can serve."""

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Stream chunks; raise InvalidRequest subclasses for requests that cannot run."""

    async def abort(self, request_id: str) -> None:
        """Stop a running request and free its resources."""

    async def stats(self) -> EngineStats: ...

    async def check_health(self) -> None:
        """Raise if the engine cannot serve."""

    async def reload_weights(self, path: str, label: str | None = None) -> dict:
        """Swap in the (verified, same-architecture) checkpoint at `path` without failing
        in-flight requests; `label` names the version (e.g. 'v3'). On failure put the
        previous weights back and raise tierserve.weights.WeightsLoadFailed(restored=...).
        Returns timings in seconds: {'pause_s': generation paused, 'load_s': loading}."""

    async def shutdown(self) -> None: ...
