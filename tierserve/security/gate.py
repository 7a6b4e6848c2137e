"""The security gate: authenticate, authorize, rate-limit and audit, before the app runs.

A plain ASGI middleware (no FastAPI import), so it decides before any body is read: a
request without a valid key gets 401 whatever its body. Paths:
  - public: /health, /openapi.json
  - admin: everything under /admin/ (role 'admin'; every call audited, denials included)
  - everything else: any valid key ('inference' or 'admin')
The principal is left in `scope["state"]["principal"]` for the routes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from tierserve.config import Role, SecurityConfig, TierServeConfig
from tierserve.errors import PermissionDenied, TierServeError, Unauthorized
from tierserve.security.audit import AuditEvent, AuditLog
from tierserve.security.keys import ANONYMOUS, KeyRing, Principal
from tierserve.security.limits import ASGIApp, ErrorApp, Receive, Scope, Send
from tierserve.security.ratelimit import RateLimiter, make_buckets

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health", "/openapi.json"})
ADMIN_PREFIX = "/admin/"
AUTH_DISABLED_WARNING = (
    "AUTHENTICATION IS DISABLED (security.auth: disabled): anyone who can reach this "
    "server is an admin. Use it only for a local demo on a loopback address."
)


def required_role(path: str) -> Role | None:
    """The role a path needs; None for public paths."""
    if path in PUBLIC_PATHS:
        return None
    return "admin" if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX[:-1] else "inference"


def relative_path(scope: Scope) -> str:
    """The path below the app's mount point (Ray Serve route prefixes set root_path)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):] or "/"
    return path


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class Authenticator:
    def __init__(self, mode: Literal["required", "disabled"], keyring: KeyRing):
        self.mode = mode
        self.keyring = keyring

    def authenticate(self, authorization: str | None) -> Principal:
        if self.mode == "disabled":
            return ANONYMOUS
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthorized(
                "You didn't provide an API key. Provide it in an Authorization header "
                "(Authorization: Bearer YOUR_KEY).", code="missing_api_key")
        principal = self.keyring.lookup(key)
        if principal is None:
            shown = f"{key[:5]}...{key[-4:]}" if len(key) > 12 else "***"
            raise Unauthorized(f"Incorrect API key provided: {shown}.", code="invalid_api_key")
        return principal


def authorize(principal: Principal, role: Role) -> None:
    if role == "admin" and not principal.is_admin:
        raise PermissionDenied(
            f"key '{principal.key_id}' has role '{principal.role}'; this endpoint needs an "
            "admin key", code="insufficient_permissions")


@dataclass
class Security:
    """What the gate and the routes share: keys, limiter, audit log."""

    config: SecurityConfig
    authenticator: Authenticator
    limiter: RateLimiter | None
    audit: AuditLog | None
    counters: dict[str, int] = field(default_factory=lambda: {
        "unauthorized": 0, "forbidden": 0, "rate_limited": 0})

    @property
    def keyring(self) -> KeyRing:
        return self.authenticator.keyring

    async def charge(self, principal: Principal | None, tokens: int) -> None:
        if self.limiter is not None and principal is not None and principal.limited:
            await self.limiter.charge(principal, tokens)

    async def close(self) -> None:
        for part in (self.limiter, self.audit):
            if part is not None:
                await part.close()


def build_security(config: TierServeConfig) -> Security:
    security = config.security
    keyring = KeyRing.from_config(security)
    if security.auth == "disabled":
        log.warning(AUTH_DISABLED_WARNING)
    elif not len(keyring):
        log.error("security.auth is 'required' but no API keys are configured: every request "
                  "will get 401")
    redis_url = config.context.redis_url
    limiter = None
    if security.auth == "required" and security.rate_limits.enabled:
        limiter = RateLimiter(make_buckets(security.rate_limits, redis_url))
    audit = AuditLog(security.audit.path, redis_url, security.audit.redis_stream,
                     security.audit.stream_max_len)
    return Security(security, Authenticator(security.auth, keyring), limiter, audit)


class SecurityGate:
    def __init__(self, app: ASGIApp, security: Security, error_app: ErrorApp):
        self.app = app
        self.security = security
        self.error_app = error_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = relative_path(scope)
        role = required_role(path)
        if role is None:
            return await self.app(scope, receive, send)
        audited = role == "admin"
        principal = None
        try:
            principal = self.security.authenticator.authenticate(
                _header(scope, b"authorization"))
            authorize(principal, role)
            if self.security.limiter is not None and principal.limited:
                await self.security.limiter.admit(principal)
        except TierServeError as err:
            self._count(err)
            if audited:
                await self._audit(scope, path, principal, str(err.status_code), err.message)
            return await self.error_app(err)(scope, receive, send)
        scope.setdefault("state", {})["principal"] = principal
        if not audited:
            return await self.app(scope, receive, send)
        audited_at_start: list[int] = []

        async def send_audited(message: dict) -> None:
            # The action is done once its response starts: record it before the client
            # can see the status, so an answered admin call is never missing from the log.
            if message["type"] == "http.response.start":
                audited_at_start.append(message["status"])
                await self._audit(scope, path, principal, str(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        finally:
            if not audited_at_start:
                await self._audit(scope, path, principal, "failed")

    def _count(self, err: TierServeError) -> None:
        name = {401: "unauthorized", 403: "forbidden", 429: "rate_limited"}.get(err.status_code)
        if name:
            self.security.counters[name] += 1

    async def _audit(self, scope: Scope, path: str, principal: Principal | None, result: str,
                     reason: str | None = None) -> None:
        if self.security.audit is None:
            return
        client = scope.get("client")
        event = AuditEvent(
            actor=principal.key_id if principal else "unauthenticated",
            role=principal.role if principal else None,
            action=f"{scope.get('method', '?')} {path}",
            target=path,
            result=result,
            source=client[0] if client else None,
            detail={"reason": reason} if reason else None,
        )
        await self.security.audit.record(event)
