"""Admin endpoints under /admin/ (the gate requires role 'admin' and audits every call).

Other packages add their own admin routes (weights publish/reload...) under /admin/ and
get the same protection and audit without touching the gate.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query

from tierserve.context.conversations import check_conversation_id
from tierserve.context.store import ConversationKey
from tierserve.errors import NotFound
from tierserve.security.gate import Security

_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def redacted_config(config) -> dict[str, Any]:
    """The running config without key digests or credentials in URLs."""
    data = config.model_dump(mode="json")
    security = data["security"]
    security["api_keys"] = [{"id": k["id"], "role": k["role"]} for k in security["api_keys"]]
    url = data["context"].get("redis_url")
    if url:
        data["context"]["redis_url"] = _URL_PASSWORD.sub(r"\1***@", url)
    return data


def admin_router(service, security: Security) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])

    def conversation_key(key_id: str, conversation_id: str) -> ConversationKey:
        if service.conversations is None:
            raise NotFound("conversations are not enabled on this server")
        principal = security.keyring.by_id(key_id)
        if principal is None and key_id != "anonymous":
            raise NotFound(f"no API key with id '{key_id}'")
        owner = principal.owner if principal is not None else "anonymous"
        return ConversationKey(owner, check_conversation_id(conversation_id))

    @router.get("/config", summary="The running configuration (secrets redacted)")
    async def get_config() -> dict:
        return redacted_config(service.config)

    @router.get("/keys", summary="API key ids, roles and rate limits (no digests)")
    async def list_keys() -> dict:
        return {"object": "list", "auth": security.config.auth,
                "data": security.keyring.describe()}

    @router.get("/audit", summary="The latest audit records of this replica's log file")
    async def audit_tail(limit: int = Query(100, ge=1, le=10_000)) -> dict:
        records = security.audit.tail(limit) if security.audit is not None else []
        return {"object": "list", "data": records}

    @router.get("/conversations/{key_id}/{conversation_id}",
                summary="Read any key's conversation")
    async def read_conversation(key_id: str, conversation_id: str) -> dict:
        key = conversation_key(key_id, conversation_id)
        conversation = await service.conversations.store.load(key)
        if not conversation.exists:
            raise NotFound(f"conversation '{conversation_id}' of key '{key_id}' not found")
        return {"id": conversation_id, "object": "conversation", "key_id": key_id,
                "system": conversation.system,
                "turns": [t.as_dict() for t in conversation.turns]}

    @router.delete("/conversations/{key_id}/{conversation_id}",
                   summary="Delete any key's conversation")
    async def delete_conversation(key_id: str, conversation_id: str) -> dict:
        key = conversation_key(key_id, conversation_id)
        if not await service.conversations.store.delete(key):
            raise NotFound(f"conversation '{conversation_id}' of key '{key_id}' not found")
        return {"id": conversation_id, "object": "conversation.deleted", "key_id": key_id,
                "deleted": True}

    return router
