"""OpenAI request models for the endpoints we serve (pydantic; no Ray, no vLLM).

Unknown fields are accepted and ignored, as vLLM and the OpenAI SDK's forward-compatible
clients expect; features we do not implement are rejected explicitly with a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tierserve.deployments.engine import SamplingOptions
from tierserve.errors import InvalidRequest


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def as_template_message(self) -> dict:
        # Chat templates know "system" but not OpenAI's newer "developer" role.
        role = "system" if self.role == "developer" else self.role
        return {"role": role, "content": self.text()}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


Stop = str | list[str] | None


class SamplingFields(BaseModel):
    """Sampling parameters shared by chat and text completions."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(..., min_length=1)
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Stop = None
    seed: int | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] = 0.0
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] = 0.0
    user: str | None = None
    # vLLM extensions, useful for benchmarks.
    top_k: Annotated[int, Field(ge=-1)] = -1
    min_tokens: Annotated[int, Field(ge=0)] = 0
    ignore_eos: bool = False

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: Stop) -> Stop:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def check_supported(self) -> None:
        if self.n != 1:
            raise InvalidRequest("only n=1 is supported", param="n", code="unsupported_value")

    def sampling(self, max_tokens: int | None) -> SamplingOptions:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingOptions(
            max_tokens=max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            top_k=self.top_k,
            stop=stop,
            seed=self.seed,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            min_tokens=self.min_tokens,
            ignore_eos=self.ignore_eos,
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool = False
    tools: list[Any] | None = None
    conversation_id: str | None = Field(None, max_length=256)

    @field_validator("messages")
    @classmethod
    def _has_conversation(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if all(m.role in ("system", "developer") for m in value):
            raise ValueError("messages must contain at least one user or assistant message")
        return value

    def check_supported(self) -> None:
        super().check_supported()
        if self.logprobs:
            raise InvalidRequest("logprobs are not supported", param="logprobs")
        if self.tools:
            raise InvalidRequest("tool calling is not supported", param="tools")

    @property
    def completion_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def template_messages(self) -> tuple[dict, ...]:
        return tuple(m.as_template_message() for m in self.messages)


class CompletionRequest(SamplingFields):
    prompt: str | list[str] = Field(...)
    max_tokens: Annotated[int, Field(ge=1)] | None = 16  # OpenAI's default for completions
    echo: bool = False
    logprobs: int | None = None
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("exactly one prompt per request is supported")
        if isinstance(value, list) and not isinstance(value[0], str):
            raise ValueError("prompt must be text")
        return value

    def check_supported(self) -> None:
        super().check_supported()
        for name in ("echo", "logprobs", "suffix"):
            if getattr(self, name):
                raise InvalidRequest(f"{name} is not supported", param=name)

    @property
    def text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]
