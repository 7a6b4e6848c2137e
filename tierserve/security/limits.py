"""Request limits: body size (declared or chunked), completion tokens.

`BodyLimit` is a plain ASGI middleware: it reads the body ahead, at most `max_bytes + 1`
bytes, so a chunked upload without Content-Length cannot slip past the limit, then
replays it to the app. Error responses come from the caller's `error_app` (the one
place that maps typed errors to HTTP).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tierserve.errors import InvalidRequest, RequestTooLarge, TierServeError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ErrorApp = Callable[[TierServeError], ASGIApp]


def check_max_tokens(requested: int | None, limit: int, param: str = "max_tokens") -> None:
    """Refuse a completion budget above the configured bound (before any engine work)."""
    if requested is not None and requested > limit:
        raise InvalidRequest(f"{param} must be at most {limit} (got {requested})", param=param,
                             code="invalid_value")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, error_app: ErrorApp):
        self.app = app
        self.max_bytes = max_bytes
        self.error_app = error_app
        self.refused_total = 0

    def _too_large(self) -> ASGIApp:
        self.refused_total += 1
        return self.error_app(RequestTooLarge(f"request body exceeds {self.max_bytes} bytes"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            return await self._too_large()(scope, receive, send)
        first = await self._read_ahead(receive)
        if first is None:
            return await self._too_large()(scope, receive, send)
        await self.app(scope, _replay(first, receive), send)

    async def _read_ahead(self, receive: Receive) -> dict | None:
        """The whole body as one message (or the disconnect that cut it); None if too big."""
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return None
            parts.append(body)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(parts), "more_body": False}


def _replay(first: dict, receive: Receive) -> Receive:
    pending = [first]

    async def replayed() -> dict:
        if pending:
            return pending.pop()
        return await receive()  # later calls: disconnect notices while streaming

    return replayed
