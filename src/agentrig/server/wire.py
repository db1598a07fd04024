"""The OpenAI Responses API wire format, without a web framework: the routes speak HTTP, this
speaks JSON, so the format is tested against the Open Responses spec without a server.

:class:`CreateResponseRequest` parses a ``POST /v1/responses`` body into canonical items, tool
specs and settings. Unknown fields are ignored and ``null`` means absent (clients send both);
a bad supported field gives a ``pydantic.ValidationError`` naming it (``tools[1].type``). Item
references keep their place: the route loads ``reference_ids()`` and passes the items found to
``input_items``. :func:`output_item` and :func:`response_resource` render what the spec wants
(every required field, ``null`` only where allowed); an item rendered without an id gets one,
on the item itself, so that stream, resource and store agree; agentrig's ``agent`` field stays
(the spec allows extra fields). :class:`ResponseEventStream` turns model or agent events into
the SSE events of one response, in OpenAI's order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    Item,
    Message,
    Reasoning,
    new_id,
    user_message,
)
from agentrig.llm import types as llm
from agentrig.usage import Usage

JSON = dict[str, Any]
_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
MAX_ID_LENGTH = 200  # the store's id columns
ID_PATTERN = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
Id = Annotated[str, Field(max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}


class WireError(ValueError):
    """A request this layer cannot serve; ``param`` is OpenAI's error ``param``."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class _Param(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class FunctionToolParam(_Param):
    type: Literal["function"] = "function"
    name: str = Field(pattern=_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool = False  # OpenAI says True; False works with every vendor


class FunctionChoice(_Param):
    type: Literal["function"] = "function"
    name: str


class PlainFormat(_Param):
    type: Literal["text", "json_object"] = "text"


class JsonSchemaFormat(_Param):
    type: Literal["json_schema"]
    name: str = Field(pattern=_NAME)
    json_schema: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool = False


class TextParam(_Param):
    format: Annotated[PlainFormat | JsonSchemaFormat, Field(discriminator="type")] = Field(
        default_factory=PlainFormat
    )
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningParam(_Param):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ConversationRef(_Param):
    id: Id


class CreateResponseRequest(_Param):
    """The body of ``POST /v1/responses``, as far as agentrig serves it."""

    model: str
    input: str | list[Any] | None = None
    instructions: str | None = None
    tools: list[FunctionToolParam] = Field(default_factory=list)
    tool_choice: Literal["auto", "none", "required"] | FunctionChoice = "auto"
    parallel_tool_calls: bool = True
    previous_response_id: Id | None = None
    conversation: Id | ConversationRef | None = None
    store: bool = True
    stream: bool = False
    background: bool = False
    text: TextParam = Field(default_factory=TextParam)
    max_output_tokens: int | None = Field(default=None, ge=16)  # the spec's and OpenAI's minimum
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    truncation: Literal["auto", "disabled"] = "disabled"
    metadata: dict[str, str] = Field(default_factory=dict)
    include: list[str] = Field(default_factory=list)
    max_tool_calls: int | None = Field(default=None, ge=1)
    reasoning: ReasoningParam | None = None  # echoed, not applied: no vendor-neutral form
    user: str | None = None
    safety_identifier: str | None = Field(default=None, max_length=64)
    prompt_cache_key: str | None = Field(default=None, max_length=64)
    service_tier: Literal["auto", "default", "flex", "priority", "scale"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        """Errors a client can act on, naming the field, before pydantic's own."""
        data = cls._null_is_absent(data)
        if not isinstance(data, dict):
            return data
        tools = data.get("tools") if isinstance(data.get("tools"), list) else []
        for i, tool in enumerate(tools):
            if (kind := tool.get("type") if isinstance(tool, dict) else None) != "function":
                raise ValueError(f"tools[{i}].type: unsupported tool type {kind!r} (only function)")
        choice = data.get("tool_choice", "auto")
        if choice not in ("auto", "none", "required") and (
            not isinstance(choice, dict) or choice.get("type") != "function"
        ):
            raise ValueError(f"tool_choice: {choice!r} is not auto, none, required or a function")
        names = [tool.get("name") for tool in tools]  # a list: a bad name may be unhashable
        if isinstance(choice, dict) and choice.get("name") not in names:
            raise ValueError(f"tool_choice.name: no function named {choice.get('name')!r} in tools")
        if choice == "required" and not names:
            raise ValueError("tool_choice: 'required' needs tools")
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        if len(metadata) > 16:
            raise ValueError(f"metadata: at most 16 keys, got {len(metadata)}")
        if any(len(str(k)) > 64 or len(str(v)) > 512 for k, v in metadata.items()):
            raise ValueError("metadata: keys have up to 64 characters, values up to 512")
        if data.get("previous_response_id") and data.get("conversation"):
            raise ValueError("previous_response_id and conversation cannot both be given")
        if data.get("background") and data.get("store") is False:
            raise ValueError("background: a background response needs store=true")
        if isinstance(data.get("input"), str | list):
            _parse_input(data["input"])  # raises naming input[i]...
        return data

    def conversation_id(self) -> str | None:
        """The conversation's id, given as ``"conv_…"`` or as ``{"id": "conv_…"}``."""
        conversation = self.conversation
        return conversation.id if isinstance(conversation, ConversationRef) else conversation

    def reference_ids(self) -> list[str]:
        """The ids of the ``item_reference`` inputs, in order, for the route to load."""
        return [entry for entry in _parse_input(self.input) if isinstance(entry, str)]

    def input_items(self, references: Mapping[str, Item] | None = None) -> list[Item]:
        """The input as canonical items, each reference replaced by a copy of ``references[id]``;
        an unresolved one raises :class:`WireError`."""
        items = _parse_input(self.input)
        for i, entry in enumerate(items):
            if isinstance(entry, str):
                if entry not in (references or {}):
                    raise WireError(f"input[{i}]: no item with id {entry!r}", f"input[{i}].id")
                items[i] = references[entry].model_copy(deep=True)  # type: ignore[index]
        return items  # type: ignore[return-value]

    def tool_specs(self) -> list[llm.ToolSpec]:
        return [
            llm.ToolSpec(
                **tool.model_dump(include={"name", "strict"}),
                description=tool.description or "",
                **({} if tool.parameters is None else {"parameters": tool.parameters}),
            )
            for tool in self.tools
        ]

    def output_schema(self) -> llm.OutputSchema | None:
        """``json_object`` asks for any JSON object: the schema ``{"type": "object"}``."""
        fmt = self.text.format
        if isinstance(fmt, JsonSchemaFormat):
            return llm.OutputSchema(name=fmt.name, json_schema=fmt.json_schema, strict=fmt.strict)
        if fmt.type == "json_object":
            return llm.OutputSchema(
                name="json_object", json_schema={"type": "object"}, strict=False
            )
        return None

    def model_settings(self) -> llm.ModelSettings:
        return llm.ModelSettings(
            temperature=self.temperature, top_p=self.top_p, max_output_tokens=self.max_output_tokens
        )

    def agentrig_tool_choice(self) -> str:
        """``auto``, ``none``, ``required`` or the name of the one function to call."""
        choice = self.tool_choice
        return choice.name if isinstance(choice, FunctionChoice) else choice


# --- input items: the request's shapes, lenient about extra fields, strict about the rest ----

_ITEMS: dict[str, tuple[Any, set[str]]] = {
    "message": (Message, {"id", "role", "status", "agent"}),
    "function_call": (FunctionCall, {"id", "call_id", "name", "arguments", "status", "agent"}),
    "function_call_output": (FunctionCallOutput, {"id", "call_id", "status", "agent"}),
    "reasoning": (Reasoning, {"id", "summary", "content", "encrypted_content", "status", "agent"}),
}
_PARTS = {
    "input_text": {"text"},
    "output_text": {"text", "annotations"},
    "refusal": {"refusal"},
    "input_image": {"image_url", "file_id", "detail"},
    "input_file": {"file_id", "file_data", "file_url", "filename"},
}
_NEEDS = {
    "input_image": {"image_url", "file_id"},
    "input_file": {"file_id", "file_data", "file_url"},
}


def parse_input_items(raw: Sequence[Any], where: str = "items") -> list[Item]:
    """Items in the request's input shapes (a conversation's ``items``); no references."""
    items = [_input_entry(entry, f"{where}[{i}]") for i, entry in enumerate(raw)]
    for i, item in enumerate(items):
        if isinstance(item, str):
            raise ValueError(f"{where}[{i}]: an item reference is not allowed here")
    return items  # type: ignore[return-value]


def _parse_input(value: str | list[Any] | None) -> list[Item | str]:
    """The input items, an item reference as its id."""
    if isinstance(value, str):
        return [user_message(value)]
    return [_input_entry(raw, f"input[{i}]") for i, raw in enumerate(value or [])]


def _input_entry(raw: Any, where: str) -> Item | str:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object, got {type(raw).__name__}")
    kind = raw.get("type") or ("message" if "role" in raw else "item_reference")
    if kind == "item_reference" and isinstance(raw.get("id"), str):
        return raw["id"]
    if not isinstance(kind, str) or kind not in _ITEMS:
        raise ValueError(f"{where}.type: unsupported input item {kind!r}")
    cls, names = _ITEMS[kind]
    data = {k: v for k, v in raw.items() if k in names and v is not None}
    if isinstance(data.get("id"), str) and (
        len(data["id"]) > MAX_ID_LENGTH or "\x00" in data["id"]
    ):
        raise ValueError(f"{where}.id: at most {MAX_ID_LENGTH} characters, without NUL")
    if kind == "message":
        data["content"] = _content(raw.get("content"), f"{where}.content")
    elif kind == "function_call_output":
        data["output"] = _tool_output(raw.get("output"), f"{where}.output")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ValueError(f"{where}{_location(error['loc'])}: {error['msg']}") from None


_UNION_TAGS = frozenset(
    {"input_text", "output_text", "refusal", "input_image", "input_file", "summary_text"}
)


def _location(loc: tuple[Any, ...]) -> str:
    """``[0].text`` for pydantic's ``(0, 'input_text', 'text')``: after a list index may come
    the tag of a union member (the part's ``type``), which is not a field."""
    path, after_index = "", False
    for part in loc:
        if isinstance(part, int):
            path, after_index = path + f"[{part}]", True
            continue
        if not (after_index and part in _UNION_TAGS):
            path += f".{part}"
        after_index = False
    return path


def _content(value: Any, where: str) -> str | list[JSON]:
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a string or a list of content parts")
    parts = []
    for j, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or kind not in _PARTS:
            raise ValueError(
                f"{where}[{j}].type: unsupported part {kind!r}; use {', '.join(_PARTS)}"
            )
        data = {k: v for k, v in part.items() if k in _PARTS[kind] and v is not None}
        if kind in _NEEDS and not _NEEDS[kind] & data.keys():
            raise ValueError(f"{where}[{j}]: an {kind} needs one of {', '.join(_NEEDS[kind])}")
        parts.append({"type": kind, **data})
    return parts


def _tool_output(value: Any, where: str) -> str:
    if isinstance(value, list) and all(
        isinstance(p, dict) and p.get("type") == "input_text" for p in value
    ):
        return "".join(str(part.get("text", "")) for part in value)
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string or a list of input_text parts")
    return value


# --- output ------------------------------------------------------------------------------


def output_item(item: Item) -> JSON:
    """An item's wire form: id and status present, output_text parts with ``annotations`` and
    ``logprobs``, input_image parts with ``image_url``. Sets ``item.id`` if it had none."""
    if not item.id:
        item.id = new_id(_PREFIX[item.type])
    data = item.to_json()
    if not isinstance(item, Reasoning):  # the spec's reasoning item has no status
        data.setdefault("status", "completed")
    if isinstance(item, Message):
        data["content"] = [_part(part) for part in data["content"]]
    return data


def input_item(item: Item) -> JSON:
    """An item in an ``input_items`` or conversation items listing: the same wire form."""
    return output_item(item)


def _part(part: JSON) -> JSON:
    if part["type"] == "output_text":
        return {"annotations": [], "logprobs": [], **part}
    return {"image_url": None, **part} if part["type"] == "input_image" else part


def response_resource(
    *,
    id: str,
    created_at: int,
    model: str,
    status: str,
    request: CreateResponseRequest,
    output: Sequence[Item],
    usage: Usage | None,
    previous_response_id: str | None = None,
    conversation_id: str | None = None,
    error: Mapping[str, Any] | None = None,
    incomplete_details: str | Mapping[str, Any] | None = None,
    completed_at: int | None = None,
) -> JSON:
    """A whole ``ResponseResource``. ``error`` is ``{"code", "message"}``; ``incomplete_details``
    the reason (``"max_output_tokens"``) or ``{"reason": ...}``. Settings that agentrig does not
    apply (penalties, top_logprobs) echo OpenAI's defaults."""
    choice, text, tier = request.tool_choice, request.text, request.service_tier
    if isinstance(incomplete_details, str):
        incomplete_details = {"reason": incomplete_details}
    conversation_id = conversation_id or request.conversation_id()
    return {
        "id": id,
        "object": "response",
        "created_at": created_at,
        "completed_at": completed_at,
        "status": status,
        "incomplete_details": None if incomplete_details is None else dict(incomplete_details),
        "model": model,
        "previous_response_id": previous_response_id or request.previous_response_id,
        "instructions": request.instructions,
        "output": [output_item(item) for item in output],
        "error": None if error is None else dict(error),
        "tools": [{"type": "function", **spec.model_dump()} for spec in request.tool_specs()],
        "tool_choice": choice.model_dump() if isinstance(choice, FunctionChoice) else choice,
        "truncation": request.truncation,
        "parallel_tool_calls": request.parallel_tool_calls,
        "text": {"format": text.format.model_dump(by_alias=True)}
        | ({"verbosity": text.verbosity} if text.verbosity else {}),
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "top_logprobs": 0,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "reasoning": None if request.reasoning is None else request.reasoning.model_dump(),
        "user": request.user,  # required by later versions of the spec
        "usage": None if usage is None else usage_object(usage),
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "store": request.store,
        "background": request.background,
        "service_tier": "default" if tier in (None, "auto") else tier,
        "metadata": dict(request.metadata),
        "safety_identifier": request.safety_identifier,
        "prompt_cache_key": request.prompt_cache_key,
        "conversation": None if conversation_id is None else {"id": conversation_id},
    }


def usage_object(usage: Usage) -> JSON:
    """Usage in the spec's shape, plus ``cache_write_tokens``, which OpenAI's SDK requires."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},  # not counted apart by agentrig
        "total_tokens": usage.total_tokens,
    }


# --- streaming ---------------------------------------------------------------------------


def conversation_object(conversation: Mapping[str, Any]) -> JSON:
    """OpenAI's conversation object from a record with ``id``, ``created_at``, ``metadata``."""
    created_at = conversation["created_at"]
    if isinstance(created_at, datetime):
        created_at = int(created_at.timestamp())
    metadata = dict(conversation.get("metadata") or {})
    return {
        "id": conversation["id"],
        "object": "conversation",
        "created_at": created_at,
        "metadata": metadata,
    }


def item_list(
    data: Sequence[JSON],
    first_id: str | None = None,
    last_id: str | None = None,
    has_more: bool = False,
) -> JSON:
    """OpenAI's list page; the first and last ids default to those of ``data``."""
    first_id = first_id if first_id is not None else (data[0]["id"] if data else None)
    last_id = last_id if last_id is not None else (data[-1]["id"] if data else None)
    return {
        "object": "list",
        "data": list(data),
        "first_id": first_id,
        "last_id": last_id,
        "has_more": has_more,
    }


def deleted_object(id: str, object_name: str) -> JSON:
    """``{"id", "object", "deleted": true}`` with OpenAI's names: ``"response"`` for a response,
    ``"conversation.deleted"`` for a conversation (given as ``"conversation"``)."""
    name = "conversation.deleted" if object_name == "conversation" else object_name
    return {"id": id, "object": name, "deleted": True}
