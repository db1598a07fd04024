"""The canonical conversation items, shaped like the OpenAI Responses API items.

Every layer speaks these: providers convert to and from them, the agent loop appends
them, sessions and the server store them. They are pydantic models whose JSON form is
the Responses API wire form (plus an optional ``agent`` field naming the agent that
produced the item), so ``Item -> JSON -> Item`` round-trips exactly.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator


def new_id(prefix: str) -> str:
    """A fresh opaque id such as ``msg_3f2a…``, in the style of OpenAI ids."""
    return f"{prefix}_{secrets.token_hex(12)}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)

    def to_json(self) -> dict[str, Any]:
        """The wire form: JSON-compatible, without unset optional fields."""
        return self.model_dump(mode="json", exclude_none=True)


# --- content parts -------------------------------------------------------------------


class InputText(_Model):
    type: Literal["input_text"] = "input_text"
    text: str


class OutputText(_Model):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[dict[str, Any]] = Field(default_factory=list)


class Refusal(_Model):
    type: Literal["refusal"] = "refusal"
    refusal: str


class InputImage(_Model):
    type: Literal["input_image"] = "input_image"
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto"] = "auto"


class InputFile(_Model):
    type: Literal["input_file"] = "input_file"
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


ContentPart = Annotated[
    InputText | OutputText | Refusal | InputImage | InputFile, Field(discriminator="type")
]


# --- items ---------------------------------------------------------------------------

Role = Literal["user", "assistant", "system", "developer"]
Status = Literal["in_progress", "completed", "incomplete"]


class Message(_Model):
    """A message; ``content`` may be given as a plain string and is normalised to parts."""

    type: Literal["message"] = "message"
    id: str | None = None
    role: Role
    content: list[ContentPart]
    status: Status | None = None
    agent: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _string_content(cls, value: Any, info: Any) -> Any:
        if isinstance(value, str):
            kind = "output_text" if info.data.get("role") == "assistant" else "input_text"
            return [{"type": kind, "text": value}]
        return value

    @property
    def text(self) -> str:
        """The concatenated text of the text parts."""
        return "".join(
            part.text for part in self.content if isinstance(part, InputText | OutputText)
        )


class FunctionCall(_Model):
    """The model asks to call the tool ``name`` with JSON-encoded ``arguments``."""

    type: Literal["function_call"] = "function_call"
    id: str | None = None
    call_id: str
    name: str
    arguments: str = "{}"
    status: Status | None = None
    agent: str | None = None


class FunctionCallOutput(_Model):
    """The result of the call ``call_id``, as text given back to the model."""

    type: Literal["function_call_output"] = "function_call_output"
    id: str | None = None
    call_id: str
    output: str
    status: Status | None = None
    agent: str | None = None


class SummaryText(_Model):
    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningText(_Model):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class Reasoning(_Model):
    type: Literal["reasoning"] = "reasoning"
    id: str | None = None
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    status: Status | None = None
    agent: str | None = None


Item = Annotated[
    Message | FunctionCall | FunctionCallOutput | Reasoning, Field(discriminator="type")
]

_item_adapter: TypeAdapter[Item] = TypeAdapter(Item)
_items_adapter: TypeAdapter[list[Item]] = TypeAdapter(list[Item])


def parse_item(data: dict[str, Any]) -> Item:
    """Validate one item from its wire form."""
    return _item_adapter.validate_python(data)


def parse_items(data: Sequence[dict[str, Any]]) -> list[Item]:
    """Validate a list of items from their wire form."""
    return _items_adapter.validate_python(list(data))


def dump_items(items: Sequence[Item]) -> list[dict[str, Any]]:
    """The wire form of ``items``."""
    return [item.to_json() for item in items]


def user_message(text: str) -> Message:
    return Message(role="user", content=[InputText(text=text)])


def assistant_message(text: str, *, agent: str | None = None) -> Message:
    return Message(
        id=new_id("msg"),
        role="assistant",
        content=[OutputText(text=text)],
        status="completed",
        agent=agent,
    )


def as_items(value: str | Sequence[Item | dict[str, Any]]) -> list[Item]:
    """Normalise user input: a string becomes one user message; dicts are validated."""
    if isinstance(value, str):
        return [user_message(value)]
    return [parse_item(item) if isinstance(item, dict) else item for item in value]
