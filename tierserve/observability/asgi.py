"""Two small ASGI middlewares that frame a request's observation around the HTTP app.

`ObserveRequests` (outermost) begins the observation of each generation request before the
security gate runs, and finishes it with the response status when no generation started
(401, 413, invalid JSON, unknown model...). `AuthPassed` sits just inside the security
gate: reaching it ends the `router.auth` span. Neither imports FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tierserve.observability.request_observer import _CURRENT

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ENDPOINTS = {"/v1/chat/completions": "chat.completions", "/v1/completions": "completions"}
"""Observed paths (below the app's route prefix) and their `endpoint` label."""


def _endpoint(scope: Scope) -> str | None:
    if scope["type"] != "http" or scope.get("method") != "POST":
        return None
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return ENDPOINTS.get(path)


class ObserveRequests:
    def __init__(self, app: ASGIApp, service):
        self.app = app
        self.service = service  # its `observer` is read per request: the platform sets it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _endpoint(scope)
        observer = self.service.observer
        if endpoint is None or not observer.active:
            return await self.app(scope, receive, send)
        obs = observer.begin(endpoint)
        token = _CURRENT.set(obs)
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException as err:
            obs.finish(None, err, False)
            raise
        finally:
            _CURRENT.reset(token)
        if not obs.handed_over:
            obs.finish(None, obs.error, False, status)
        elif not obs.finished:  # the response ended before its stream ran (client gone)
            obs.finish(None, None, False)


class AuthPassed:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        obs = _CURRENT.get()
        if obs is not None:
            principal = scope.get("state", {}).get("principal")
            obs.auth_passed(getattr(principal, "key_id", None))
        await self.app(scope, receive, send)
