"""The router's logic, independent of HTTP and of Ray: decide, dispatch, stream."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from tierserve.config import TierServeConfig
from tierserve.deployments.engine import GenerationChunk, GenerationRequest
from tierserve.errors import EngineFailure, InvalidRequest
from tierserve.router.classifiers import make_classifier
from tierserve.router.decision import RouteDecision, decide, model_ids
from tierserve.router.protocol import ChatCompletionRequest, CompletionRequest
from tierserve.router.tier_client import TierClient

log = logging.getLogger(__name__)


@dataclass
class StartedGeneration:
    """A generation whose first chunk arrived: errors before it map to HTTP statuses."""

    request_id: str
    decision: RouteDecision
    first: GenerationChunk | None
    rest: AsyncIterator[GenerationChunk]

    async def chunks(self) -> AsyncIterator[GenerationChunk]:
        if self.first is not None:
            yield self.first
        async for chunk in self.rest:
            yield chunk

    async def aclose(self) -> None:
        await self.rest.aclose()

    def headers(self) -> dict[str, str]:
        return {
            "x-request-id": self.request_id,
            "x-tierserve-tier": self.decision.tier,
            "x-tierserve-deployment": self.decision.variant,
            "x-tierserve-route-reason": self.decision.reason,
        }


class RouterService:
    def __init__(self, config: TierServeConfig, client: TierClient):
        self.config = config
        self.client = client
        self.classifier = make_classifier(config.routing.classifier)

    def is_latency_critical(self, headers: Mapping[str, str]) -> bool:
        value = headers.get(self.config.routing.latency_critical_header, "")
        return value.strip().lower() == "critical"

    def list_models(self) -> dict:
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
        for item in data:
            item["created"] = 0
        return {"object": "list", "data": data}

    def known_models(self) -> list[str]:
        return model_ids(self.config)

    async def chat(
        self, body: ChatCompletionRequest, headers: Mapping[str, str]
    ) -> StartedGeneration:
        body.check_supported()
        limit = self.config.router.max_messages
        if len(body.messages) > limit:
            raise InvalidRequest(f"at most {limit} messages per request", param="messages")
        messages = body.template_messages()
        decision = decide(
            self.config, self.classifier, body.model, list(messages),
            self.is_latency_critical(headers),
        )
        request = GenerationRequest(
            request_id=f"chatcmpl-{uuid.uuid4().hex}",
            sampling=body.sampling(body.completion_limit),
            messages=messages,
        )
        return await self._start(decision, request)

    async def complete(
        self, body: CompletionRequest, headers: Mapping[str, str]
    ) -> StartedGeneration:
        body.check_supported()
        messages = [{"role": "user", "content": body.text}]
        decision = decide(
            self.config, self.classifier, body.model, messages, self.is_latency_critical(headers)
        )
        request = GenerationRequest(
            request_id=f"cmpl-{uuid.uuid4().hex}",
            sampling=body.sampling(body.max_tokens),
            prompt=body.text,
        )
        return await self._start(decision, request)

    async def _start(self, decision: RouteDecision, request: GenerationRequest) -> StartedGeneration:
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
