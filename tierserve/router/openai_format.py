"""OpenAI response bodies and SSE frames, built as plain dicts (pure; cheap to encode)."""

from __future__ import annotations

import json
import time

from tierserve.deployments.engine import GenerationChunk
from tierserve.errors import TierServeError

DONE_FRAME = b"data: [DONE]\n\n"


def dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def sse(obj: dict) -> bytes:
    return f"data: {dumps(obj)}\n\n".encode()


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def error_body(err: TierServeError) -> dict:
    return {
        "error": {
            "message": err.message,
            "type": err.error_type,
            "param": err.param,
            "code": err.code,
        }
    }


class ResponseBuilder:
    """Builds chat or text completion bodies for one request."""

    def __init__(self, request_id: str, model: str, chat: bool):
        self.id = request_id
        self.model = model
        self.chat = chat
        self.created = int(time.time())
        self.object = "chat.completion" if chat else "text_completion"

    def _envelope(self, obj: str) -> dict:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def full(self, text: str, last: GenerationChunk) -> dict:
        if self.chat:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": last.finish_reason,
                "logprobs": None,
            }
        else:
            choice = {
                "index": 0,
                "text": text,
                "finish_reason": last.finish_reason,
                "logprobs": None,
            }
        body = self._envelope(self.object)
        body["choices"] = [choice]
        body["usage"] = usage(last.prompt_tokens, last.completion_tokens)
        return body

    def chunk(self, text: str, finish_reason: str | None, first: bool = False) -> bytes:
        if self.chat:
            delta = {"role": "assistant", "content": text} if first else {"content": text}
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            body = self._envelope("chat.completion.chunk")
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}
            body = self._envelope("text_completion")
        body["choices"] = [choice]
        return sse(body)

    def usage_chunk(self, last: GenerationChunk) -> bytes:
        body = self._envelope("chat.completion.chunk" if self.chat else "text_completion")
        body["choices"] = []
        body["usage"] = usage(last.prompt_tokens, last.completion_tokens)
        return sse(body)
