"""What crosses the LLM boundary: requests, responses, stream events, and the two protocols
(:class:`LLMClient`, :class:`Embedder`) that every provider and the router implement."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agentrig.items import FunctionCall, Item
from agentrig.usage import Usage

__all__ = [
    "Completed",
    "Embedder",
    "EmbeddingResponse",
    "FinishReason",
    "ItemDone",
    "LLMClient",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "ModelStreamEvent",
    "OutputSchema",
    "TextDelta",
    "ToolCallDelta",
    "ToolChoice",
    "ToolSpec",
    "Usage",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ModelSettings(_Model):
    """Sampling settings; ``None`` leaves the provider's default."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_output_tokens: int | None = Field(default=None, gt=0)
    stop: list[str] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)  # passed to the vendor as is


class ToolSpec(_Model):
    """A function the model may call; ``parameters`` is a JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False


class OutputSchema(_Model):
    """Ask for a JSON answer matching ``json_schema``."""

    name: str = "output"
    json_schema: dict[str, Any]
    strict: bool = True


ToolChoice = Literal["auto", "none", "required"] | str  # a str names the one tool to call


class ModelRequest(_Model):
    items: list[Item]
    instructions: str | None = None
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool | None = None
    output_schema: OutputSchema | None = None
    settings: ModelSettings = Field(default_factory=ModelSettings)


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class ModelResponse(_Model):
    output: list[Item]
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    finish_reason: FinishReason = "stop"
    cost_micros: int = 0  # set by the router from the usage and the model's price

    @property
    def text(self) -> str:
        """The text of the output messages, joined."""
        return "".join(getattr(item, "text", "") for item in self.output if item.type == "message")

    @property
    def tool_calls(self) -> list[FunctionCall]:
        return [item for item in self.output if isinstance(item, FunctionCall)]


class TextDelta(_Model):
    type: Literal["text_delta"] = "text_delta"
    item_id: str
    delta: str


class ToolCallDelta(_Model):
    """A piece of a tool call's JSON arguments; ``name`` and ``call_id`` come with every piece."""

    type: Literal["tool_call_delta"] = "tool_call_delta"
    item_id: str
    call_id: str
    name: str
    delta: str


class ItemDone(_Model):
    type: Literal["item_done"] = "item_done"
    item: Item


class Completed(_Model):
    """The last event of every stream: the whole response with its usage."""

    type: Literal["completed"] = "completed"
    response: ModelResponse


ModelStreamEvent = Annotated[
    TextDelta | ToolCallDelta | ItemDone | Completed, Field(discriminator="type")
]


class EmbeddingResponse(_Model):
    vectors: list[list[float]]
    usage: Usage = Field(default_factory=Usage)
    model: str = ""


@runtime_checkable
class LLMClient(Protocol):
    """A chat model: one request in, one response out, or the same as a stream of events."""

    async def complete(self, request: ModelRequest) -> ModelResponse: ...

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors, batching as the backend needs."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingBackend(Protocol):
    """A provider's embedding endpoint: one batch per call, with usage for cost tracking."""

    max_batch_size: int

    async def embed_batch(self, texts: Sequence[str]) -> EmbeddingResponse: ...
