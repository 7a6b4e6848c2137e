"""Typed errors → OpenAI-style JSON responses, in this one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tierserve.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    ReplicaUnavailable,
    TierServeError,
)
from tierserve.router.openai_format import error_body

log = logging.getLogger(__name__)

# Ray's own failures, recognised by class name so this module needs no Ray import.
_REPLICA_GONE = {
    "ActorDiedError",
    "RayActorError",
    "ActorUnavailableError",
    "DeploymentUnavailableError",
}
_BACKPRESSURE = {"BackPressureError"}


def as_tierserve_error(err: BaseException) -> TierServeError:
    """The typed error behind `err`, unwrapping Ray's task-error wrapper."""
    if isinstance(err, TierServeError):
        return err
    cause = getattr(err, "cause", None)
    if isinstance(cause, TierServeError):
        return cause
    names = {cls.__name__ for cls in type(err).__mro__}
    if names & _REPLICA_GONE:
        return ReplicaUnavailable("the replica serving this request failed; please retry")
    if names & _BACKPRESSURE:
        return Overloaded("the tier is at capacity; please retry later")
    log.error("unexpected error: %r", err, exc_info=err)
    return TierServeError("internal server error")


def error_response(err: BaseException, headers: dict[str, str] | None = None) -> JSONResponse:
    typed = as_tierserve_error(err)
    extra = dict(headers or {})
    if getattr(typed, "retry_after_s", None) is not None:
        extra["retry-after"] = str(max(1, round(typed.retry_after_s)))
    return JSONResponse(error_body(typed), status_code=typed.status_code, headers=extra)


def _validation_error(exc: RequestValidationError) -> InvalidRequest:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        return InvalidRequest(f"request body is not valid JSON: {first.get('msg', '')}")
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg", "")
    if first.get("type") == "model_attributes_type":
        message = "request body must be a JSON object"
    return InvalidRequest(message or "invalid request", param=param)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TierServeError)
    async def _typed(_: Request, exc: TierServeError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound(f"no such route: {request.url.path}"))
        if exc.status_code == 405:
            return error_response(MethodNotAllowed(f"{request.method} is not allowed here"))
        return error_response(InvalidRequest(str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)
