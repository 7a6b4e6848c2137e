"""The OpenAI-compatible HTTP surface (FastAPI), over a RouterService.

`create_app(service)` is used as is by unit tests (httpx ASGI transport) and by the Ray
Serve ingress (`RouterIngress.__serve_build_asgi_app__`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from pydantic import BaseModel

from tierserve.observability.asgi import AuthPassed, ObserveRequests
from tierserve.router.http_errors import as_tierserve_error, error_response, install_error_handlers
from tierserve.router.openai_format import DONE_FRAME, ResponseBuilder, error_body, sse
from tierserve.router.protocol import ChatCompletionRequest, CompletionRequest
from tierserve.router.service import RouterService, StartedGeneration
from tierserve.security.admin_api import admin_router
from tierserve.security.gate import PUBLIC_PATHS, Security, SecurityGate, build_security
from tierserve.security.limits import BodyLimit

log = logging.getLogger(__name__)

Charge = Callable[[int], Awaitable[None]]
"""Charges a finished request's prompt + completion tokens to its key's rate limit."""


async def _charge_usage(charge: Charge, last) -> None:
    if last is not None:
        try:
            await charge(last.prompt_tokens + last.completion_tokens)
        except Exception as err:  # a limiter failure never fails an answered request
            log.warning("could not charge tokens: %r", err)


async def _sse_frames(
    started: StartedGeneration, builder: ResponseBuilder, include_usage: bool, charge: Charge
) -> AsyncIterator[bytes]:
    last, parts = None, []
    try:
        try:
            async for chunk in started.chunks():
                yield builder.chunk(chunk.text, chunk.finish_reason, first=last is None)
                parts.append(chunk.text)
                last = chunk
            if include_usage and last is not None:
                yield builder.usage_chunk(last)
            await started.complete("".join(parts))
        except Exception as err:  # after the 200 header: report in-band, then end cleanly
            yield sse(error_body(as_tierserve_error(err)))
        finally:
            await started.aclose()
        yield DONE_FRAME
    finally:  # after [DONE] has gone out (or the client left): off the client's clock
        await _charge_usage(charge, last)


async def _respond(started: StartedGeneration, model: str, chat: bool, stream: bool,
                   include_usage: bool, charge: Charge):
    builder = ResponseBuilder(started.request_id, model, chat)
    headers = started.headers()
    if stream:
        return StreamingResponse(
            _sse_frames(started, builder, include_usage, charge),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )
    parts, last = [], None
    try:
        async for chunk in started.chunks():
            parts.append(chunk.text)
            last = chunk
        text = "".join(parts)
        await started.complete(text)
    except Exception as err:
        await _charge_usage(charge, last)
        return error_response(err, headers)
    finally:
        await started.aclose()
    return JSONResponse(builder.full(text, last), headers=started.headers(),
                        background=BackgroundTask(_charge_usage, charge, last))


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES = {status: {"model": ErrorResponse, "description": text} for status, text in {
    400: "Invalid request (bad field, unsupported feature, prompt over the model's window)",
    401: "Missing or invalid API key",
    403: "The key's role may not call this endpoint",
    404: "Unknown model, conversation or route",
    413: "Request body over router.max_request_bytes",
    429: "Rate limit reached (see the Retry-After header)",
    503: "A replica failed or the tier is at capacity; retry",
}.items()}
GENERATION_RESPONSES = {**ERROR_RESPONSES, 200: {
    "description": "The completion; with `stream: true`, server-sent events ending in "
                   "`data: [DONE]` (an error after the first event arrives as a final "
                   "`data: {\"error\": ...}` event)",
    "content": {"application/json": {}, "text/event-stream": {"schema": {
        "type": "object", "properties": {"data": {"type": "string"}}, "required": ["data"]}}},
}}


def _document_bearer_auth(app: FastAPI) -> None:
    """Declare `Authorization: Bearer` in the OpenAPI schema (public paths excepted)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearerAuth": []}]
            for path in PUBLIC_PATHS & schema["paths"].keys():
                for operation in schema["paths"][path].values():
                    operation["security"] = []
        return app.openapi_schema

    app.openapi = openapi


def _charger(request: Request, security: Security) -> Charge:
    principal = request.scope.get("state", {}).get("principal")

    async def charge(tokens: int) -> None:
        await security.charge(principal, tokens)

    return charge


def create_app(service: RouterService, security: Security | None = None) -> FastAPI:
    """The HTTP app; `security` defaults to the one `service.config.security` describes."""
    security = security or build_security(service.config)
    app = FastAPI(title="tierserve", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.security = security
    # Outermost first on the way in: the gate (401/403/429 before any body is read), then
    # the body limit (413, chunked uploads included).
    app.add_middleware(BodyLimit, max_bytes=service.config.router.max_request_bytes,
                       error_app=error_response)
    app.add_middleware(AuthPassed)  # just inside the gate: reaching it ends `router.auth`
    app.add_middleware(SecurityGate, security=security, error_app=error_response)
    app.add_middleware(ObserveRequests, service=service)  # outermost: the request's root span
    install_error_handlers(app)
    _document_bearer_auth(app)
    app.include_router(admin_router(service, security), responses=ERROR_RESPONSES)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models", responses=ERROR_RESPONSES)
    async def models() -> dict:
        return await service.list_models()

    @app.post("/v1/chat/completions", responses=GENERATION_RESPONSES)
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        started = await service.chat(body, request.headers)
        return await _respond(started, started.decision.variant, True, body.stream,
                              body.include_usage, _charger(request, security))

    @app.get("/v1/conversations/{conversation_id}", responses=ERROR_RESPONSES)
    async def get_conversation(conversation_id: str, request: Request) -> dict:
        return await service.get_conversation(conversation_id, request.headers)

    @app.delete("/v1/conversations/{conversation_id}", responses=ERROR_RESPONSES)
    async def delete_conversation(conversation_id: str, request: Request) -> dict:
        return await service.delete_conversation(conversation_id, request.headers)

    @app.post("/v1/completions", responses=GENERATION_RESPONSES)
    async def completions(body: CompletionRequest, request: Request):
        started = await service.complete(body, request.headers)
        return await _respond(started, started.decision.variant, False, body.stream,
                              body.include_usage, _charger(request, security))

    return app
