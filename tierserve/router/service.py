"""The router's logic, independent of HTTP and of Ray: decide, dispatch, stream."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from tierserve.config import TierServeConfig
from tierserve.context.conversations import (
    ConversationService,
    bearer_token,
    check_conversation_id,
)
from tierserve.context.store import ConversationKey
from tierserve.deployments.engine import GenerationChunk, GenerationRequest
from tierserve.errors import EngineFailure, InvalidRequest, NotFound
from tierserve.observability.request_observer import RequestObservation, RouterObserver
from tierserve.router.affinity import conversation_token
from tierserve.router.classifiers import classifier_from_config
from tierserve.router.decision import RouteDecision, decide, model_ids
from tierserve.router.load_monitor import LoadMonitor
from tierserve.router.protocol import ChatCompletionRequest, CompletionRequest
from tierserve.router.replica_hints import ReplicaHints
from tierserve.router.tier_client import TierClient
from tierserve.security.limits import check_max_tokens

log = logging.getLogger(__name__)

CONVERSATION_HEADER = "x-tierserve-conversation"
CONTEXT_WARNING = '199 tierserve "context store unavailable; served without stored history"'
WEIGHTS_QUERY_TIMEOUT_S = 2.0
"""How long /v1/models waits for a hot-reloading variant to report its weight version."""


@dataclass
class StartedGeneration:
    """A generation whose first chunk arrived: errors before it map to HTTP statuses."""

    request_id: str
    decision: RouteDecision
    first: GenerationChunk | None
    rest: AsyncIterator[GenerationChunk]
    extra_headers: dict[str, str] = field(default_factory=dict)
    on_complete: Callable[[str], Awaitable[bool]] | None = None
    observation: RequestObservation | None = None
    """The request's trace and metrics, finished when the stream is closed."""
    last: GenerationChunk | None = None
    error: BaseException | None = None
    completed: bool = False

    async def chunks(self) -> AsyncIterator[GenerationChunk]:
        try:
            if self.first is not None:
                self.last = self.first
                yield self.first
            async for chunk in self.rest:
                self.last = chunk
                yield chunk
        except BaseException as err:
            self.error = err
            raise

    async def aclose(self) -> None:
        await self.rest.aclose()
        if self.observation is not None:
            self.observation.finish(self.last, self.error, self.completed)

    async def complete(self, text: str) -> None:
        """The whole answer was delivered: record it (a store failure only warns)."""
        self.completed = True
        if self.on_complete is not None and not await self.on_complete(text):
            if self.observation is not None:
                self.observation.context_error("record")
            self.extra_headers["x-tierserve-context"] = "unavailable"
            self.extra_headers["warning"] = CONTEXT_WARNING

    def headers(self) -> dict[str, str]:
        return {
            "x-request-id": self.request_id,
            "x-tierserve-tier": self.decision.tier,
            "x-tierserve-deployment": self.decision.variant,
            "x-tierserve-route-reason": self.decision.reason,
            **self._replica_header(),
            **self.extra_headers,
        }

    def _replica_header(self) -> dict[str, str]:
        replica = self.first.replica if self.first is not None else None
        return {"x-tierserve-replica": replica} if replica else {}


class RouterService:
    def __init__(self, config: TierServeConfig, client: TierClient,
                 conversations: ConversationService | None = None,
                 observer: RouterObserver | None = None):
        self.config = config
        self.observer = observer or RouterObserver.disabled()
        """Traces, metrics and request log; the platform sets the replica's from config."""
        self.client = client
        self.conversations = conversations
        self.replica_hints = ReplicaHints(config)
        self.classifier = classifier_from_config(config.routing)
        self.classifier.warmup()  # load models now, not on the first request
        spillover = config.routing.spillover
        self.loads = (LoadMonitor(client, [v.name for _, v in config.variants()],
                                  spillover.poll_interval_s) if spillover.enabled else None)

    async def decide(self, model: str, messages: list[dict],
                     headers: Mapping[str, str]) -> RouteDecision:
        """The pure `decide()` with this router's classifier and load snapshot; a classifier
        that computes (embeddings) runs in a worker thread, off the event loop."""
        loads = None
        if self.loads is not None:
            self.loads.ensure_started()
            loads = self.loads.snapshot()
        args = (self.config, self.classifier, model, messages,
                self.is_latency_critical(headers), loads, time.monotonic())
        with self.observer.span("router.classify"):
            if self.classifier.blocking and model == "auto":
                return await asyncio.to_thread(decide, *args)
            return decide(*args)

    def is_latency_critical(self, headers: Mapping[str, str]) -> bool:
        value = headers.get(self.config.routing.latency_critical_header, "")
        return value.strip().lower() == "critical"

    async def weights_versions(self) -> dict[str, int | None]:
        """Loaded weight version of each hot-reloading variant, as one of its replicas
        reports it (None when it does not answer in time)."""
        names = [v.name for _, v in self.config.variants() if v.weights.hot_reload]

        async def version(name: str) -> int | None:
            try:
                stats = await asyncio.wait_for(self.client.stats(name), WEIGHTS_QUERY_TIMEOUT_S)
                return stats.extra.get("weights_version")
            except Exception as err:  # a slow replica must not fail /v1/models
                log.debug("no weight version from %s: %r", name, err)
                return None

        return dict(zip(names, await asyncio.gather(*(version(n) for n in names))))

    async def list_models(self) -> dict:
        versions = await self.weights_versions()
        data = [{"id": "auto", "object": "model", "owned_by": "tierserve", "tier": None}]
        for tier_id in self.config.tier_ids:
            tier = self.config.tier(tier_id)
            data.append({"id": tier.id, "object": "model", "owned_by": "tierserve",
                         "tier": tier.id, "description": tier.description,
                         "default_variant": tier.default.name,
                         "latency_variant": tier.latency.name})
        for tier, variant in self.config.variants():
            data.append({"id": variant.name, "object": "model", "owned_by": "tierserve",
                         "tier": tier.id, "precision": variant.precision,
                         "max_model_len": variant.max_model_len})
            if variant.name in versions:
                data[-1]["weights_version"] = versions[variant.name]
        for item in data:
            item["created"] = 0
        return {"object": "list", "data": data}

    def known_models(self) -> list[str]:
        return model_ids(self.config)

    async def chat(
        self, body: ChatCompletionRequest, headers: Mapping[str, str]
    ) -> StartedGeneration:
        return await self.observer.observe("chat.completions", self._chat, body, headers)

    async def _chat(
        self, body: ChatCompletionRequest, headers: Mapping[str, str]
    ) -> StartedGeneration:
        body.check_supported()
        check_max_tokens(body.completion_limit, self.config.router.max_completion_tokens,
                         "max_completion_tokens" if body.max_completion_tokens else "max_tokens")
        limit = self.config.router.max_messages
        if len(body.messages) > limit:
            raise InvalidRequest(f"at most {limit} messages per request", param="messages")
        messages = list(body.template_messages())
        conversation_id = body.conversation_id or headers.get(CONVERSATION_HEADER)
        if conversation_id is not None:
            return await self._chat_in_conversation(
                body, headers, messages, check_conversation_id(conversation_id)
            )
        decision = await self.decide(body.model, messages, headers)
        return await self._start(decision, self._chat_request(body, messages))

    @staticmethod
    def _chat_request(body: ChatCompletionRequest, messages: list[dict]) -> GenerationRequest:
        return GenerationRequest(
            request_id=f"chatcmpl-{uuid.uuid4().hex}",
            sampling=body.sampling(body.completion_limit),
            messages=tuple(messages),
        )

    async def _chat_in_conversation(
        self, body: ChatCompletionRequest, headers: Mapping[str, str], messages: list[dict],
        conversation_id: str,
    ) -> StartedGeneration:
        if self.conversations is None:
            raise InvalidRequest("conversations are not enabled on this server",
                                 param="conversation_id")
        key = ConversationKey.for_credential(bearer_token(headers), conversation_id)
        with self.observer.span("router.context.load"):
            loaded = await self.conversations.load(key)
        if not loaded.available:
            self.observer.context_error("load")
        system, history, new = self.conversations.split(messages, loaded.conversation)
        decision = await self.decide(body.model, system + history + new, headers)
        with self.observer.span("router.context.trim"):
            prepared = self.conversations.prepare(
                decision.variant, system, history, new, body.completion_limit
            )
        started = await self._start(decision, self._chat_request(body, prepared.messages),
                                    conversation_token(key))
        started.extra_headers.update({
            CONVERSATION_HEADER: conversation_id,
            "x-tierserve-context-dropped-turns": str(prepared.dropped_turns),
            "x-tierserve-context": "ok" if loaded.available else "unavailable",
        })
        if not loaded.available:
            started.extra_headers["warning"] = CONTEXT_WARNING

        async def record(answer: str) -> bool:
            return await self.conversations.record(key, messages, answer)

        started.on_complete = record
        return started

    def _conversation_key(self, conversation_id: str, headers: Mapping[str, str]) -> ConversationKey:
        if self.conversations is None:
            raise NotFound("conversations are not enabled on this server")
        return ConversationKey.for_credential(bearer_token(headers),
                                              check_conversation_id(conversation_id))

    async def get_conversation(self, conversation_id: str, headers: Mapping[str, str]) -> dict:
        key = self._conversation_key(conversation_id, headers)
        conversation = await self.conversations.store.load(key)
        if not conversation.exists:
            raise NotFound(f"conversation '{conversation_id}' not found")
        return {"id": conversation_id, "object": "conversation", "system": conversation.system,
                "turns": [t.as_dict() for t in conversation.turns]}

    async def delete_conversation(self, conversation_id: str, headers: Mapping[str, str]) -> dict:
        key = self._conversation_key(conversation_id, headers)
        if not await self.conversations.store.delete(key):
            raise NotFound(f"conversation '{conversation_id}' not found")
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def complete(
        self, body: CompletionRequest, headers: Mapping[str, str]
    ) -> StartedGeneration:
        return await self.observer.observe("completions", self._complete, body, headers)

    async def _complete(
        self, body: CompletionRequest, headers: Mapping[str, str]
    ) -> StartedGeneration:
        body.check_supported()
        check_max_tokens(body.max_tokens, self.config.router.max_completion_tokens)
        messages = [{"role": "user", "content": body.text}]
        decision = await self.decide(body.model, messages, headers)
        request = GenerationRequest(
            request_id=f"cmpl-{uuid.uuid4().hex}",
            sampling=body.sampling(body.max_tokens),
            prompt=body.text,
        )
        return await self._start(decision, request)

    async def _start(self, decision: RouteDecision, request: GenerationRequest,
                     conversation: str | None = None) -> StartedGeneration:
        request = self.replica_hints.fill(decision.variant, request, conversation)
        request = self.observer.dispatching(decision, request)
        stream = self.client.stream(decision.variant, request)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await stream.aclose()
            raise
        if first is None:
            raise EngineFailure(f"{decision.variant} returned no output")
        return StartedGeneration(request.request_id, decision, first, stream)
