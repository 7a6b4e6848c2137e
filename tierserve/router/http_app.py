"""The OpenAI-compatible HTTP surface (FastAPI), over a RouterService.

`create_app(service)` is used as is by unit tests (httpx ASGI transport) and by the Ray
Serve ingress (`RouterIngress.__serve_build_asgi_app__`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.middleware.base import BaseHTTPMiddleware

from tierserve.errors import RequestTooLarge
from tierserve.router.http_errors import as_tierserve_error, error_response, install_error_handlers
from tierserve.router.openai_format import DONE_FRAME, ResponseBuilder, error_body, sse
from tierserve.router.protocol import ChatCompletionRequest, CompletionRequest
from tierserve.router.service import RouterService, StartedGeneration

log = logging.getLogger(__name__)


async def _sse_frames(
    started: StartedGeneration, builder: ResponseBuilder, include_usage: bool
) -> AsyncIterator[bytes]:
    last, parts = None, []
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


async def _respond(started: StartedGeneration, model: str, chat: bool, stream: bool,
                   include_usage: bool):
    builder = ResponseBuilder(started.request_id, model, chat)
    headers = started.headers()
    if stream:
        return StreamingResponse(
            _sse_frames(started, builder, include_usage),
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
        return error_response(err, headers)
    finally:
        await started.aclose()
    return JSONResponse(builder.full(text, last), headers=started.headers())


class BodySizeLimit(BaseHTTPMiddleware):
    def __init__(self, app, max_bytes: int):
        super().__init__(app)
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            return error_response(
                RequestTooLarge(f"request body exceeds {self.max_bytes} bytes")
            )
        return await call_next(request)


def create_app(service: RouterService) -> FastAPI:
    app = FastAPI(title="tierserve", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.service = service
    app.add_middleware(BodySizeLimit, max_bytes=service.config.router.max_request_bytes)
    install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict:
        return service.list_models()

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        started = await service.chat(body, request.headers)
        return await _respond(started, started.decision.variant, True, body.stream, body.include_usage)

    @app.get("/v1/conversations/{conversation_id}")
    async def get_conversation(conversation_id: str, request: Request) -> dict:
        return await service.get_conversation(conversation_id, request.headers)

    @app.delete("/v1/conversations/{conversation_id}")
    async def delete_conversation(conversation_id: str, request: Request) -> dict:
        return await service.delete_conversation(conversation_id, request.headers)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        started = await service.complete(body, request.headers)
        return await _respond(started, started.decision.variant, False, body.stream, body.include_usage)

    return app
