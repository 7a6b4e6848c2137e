"""Typed errors, mapped to OpenAI-style HTTP errors in one place (router/http_errors.py).

Each error knows whether it is the client's fault (4xx) or ours (5xx). They pickle
cleanly so they cross Ray process boundaries with their fields intact.
"""

from __future__ import annotations


class TierServeError(Exception):
    """Base of every error the platform raises on purpose."""

    status_code: int = 500
    error_type: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def __reduce__(self):
        return (_rebuild, (type(self), self.message, self.param, self.code, self.__dict__))


def _rebuild(cls, message, param, code, state):
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    err.message, err.param, err.code = message, param, code
    return err


class ConfigError(TierServeError):
    """The configuration is invalid; raised before anything starts."""

    error_type = "config_error"


class InvalidRequest(TierServeError):
    status_code = 400
    error_type = "invalid_request_error"


class ModelNotFound(InvalidRequest):
    status_code = 404

    def __init__(self, model: str, available: list[str]):
        super().__init__(
            f"The model '{model}' does not exist. Available: {', '.join(available)}.",
            param="model",
            code="model_not_found",
        )


class ContextLengthExceeded(InvalidRequest):
    def __init__(self, prompt_tokens: int, max_tokens: int, max_model_len: int, model: str):
        super().__init__(
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
            f"{max_tokens} in the completion) for model '{model}'. Please reduce the length "
            "of the messages or completion.",
            param="messages",
            code="context_length_exceeded",
        )


class NotFound(TierServeError):
    status_code = 404
    error_type = "not_found_error"


class Unauthorized(TierServeError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDenied(TierServeError):
    status_code = 403
    error_type = "permission_error"


class RateLimited(TierServeError):
    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: float):
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after_s = retry_after_s


class Overloaded(TierServeError):
    status_code = 503
    error_type = "overloaded_error"


class EngineFailure(TierServeError):
    """The engine failed while serving a valid request (not the client's fault)."""

    status_code = 500
    error_type = "engine_error"


class ReplicaUnavailable(EngineFailure):
    """The replica serving the request died or cannot be reached; a retry may succeed."""

    status_code = 503


class RequestTooLarge(InvalidRequest):
    status_code = 413


class MethodNotAllowed(InvalidRequest):
    status_code = 405
