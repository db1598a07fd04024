"""What ``/openapi.json`` documents: the objects the routes answer, and the error envelope.

The routes build their JSON by hand (``wire.py``), so these models only document it: a route
names them in ``responses={200: {"model": ...}}`` with ``response_model=None``, and nothing is
validated or re-serialised at run time. The server's tests hold the two together
(schemathesis checks every answer against this document). Errors are OpenAI's envelope with
the statuses of :func:`errors`; request validation errors are 400s, never FastAPI's 422.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field

from agentrig.server.wire import ID_PATTERN, MAX_ID_LENGTH

_ERRORS = {
    400: "Invalid request: the message names the field (error.param).",
    401: "Missing or unknown API key (only once API keys exist).",
    404: "No such object for this API key's tenant.",
    409: "The object is not in a state that allows this (a crew or flow run not paused).",
    413: "The upload is over the size limit (knowledge.max_file_mb).",
    429: "Rate limited by the model's provider, or over budget.",
    502: "The model's provider failed or gave a malformed answer.",
    503: "Not available here (knowledge bases on embedded Qdrant with several workers).",
    504: "The model's provider did not answer in time.",
}
SSE = "text/event-stream"
# ids in paths and cursors, as the store can hold them (else a 400, not a database error)
PathId = Annotated[str, Path(max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
After = Annotated[
    str | None,
    Query(
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="The id of the item to start after.",
    ),
]


class ErrorObject(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope."""

    error: ErrorObject


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route, for its ``responses=``: ``statuses`` and, as for every
    4xx (say a 405), the envelope under ``4XX`` (which keeps FastAPI from documenting a 422)."""
    documented: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse, "description": _ERRORS[status]} for status in statuses
    }
    return documented | {"4XX": {"model": ErrorResponse, "description": "Another client error."}}


def ok(model: Any, description: str, events: dict[str, Any] | None = None) -> dict[int | str, Any]:
    """The 200 response of a route; if it streams, with Server-Sent Events as a second media
    type, ``events`` the ``itemSchema`` of one event (:data:`RESPONSE_EVENTS`, :data:`CHUNKS`)."""
    response: dict[str, Any] = {"model": model, "description": description}
    if events is not None:
        response["description"] += " " + events["description"]
        response["content"] = {SSE: {"itemSchema": events}}
    return {200: response}


# --- items -------------------------------------------------------------------------------

ItemStatus = Literal["in_progress", "completed", "incomplete"]
AGENT = Field(default=None, description="agentrig: the agent that produced the item.")


class InputTextPart(BaseModel):
    type: Literal["input_text"]
    text: str


class OutputTextPart(BaseModel):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]]
    logprobs: list[dict[str, Any]]


class RefusalPart(BaseModel):
    type: Literal["refusal"]
    refusal: str


class InputImagePart(BaseModel):
    type: Literal["input_image"]
    image_url: str | None
    file_id: str | None = None
    detail: Literal["low", "high", "auto"]


class InputFilePart(BaseModel):
    type: Literal["input_file"]
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


ContentPart = Annotated[
    InputTextPart | OutputTextPart | RefusalPart | InputImagePart | InputFilePart,
    Field(discriminator="type"),
]


class MessageItem(BaseModel):
    type: Literal["message"]
    id: str
    role: Literal["user", "assistant", "system", "developer"]
    status: ItemStatus
    content: list[ContentPart]
    agent: str | None = AGENT


class FunctionCallItem(BaseModel):
    type: Literal["function_call"]
    id: str
    call_id: str
    name: str
    arguments: str = Field(description="The arguments, a JSON object encoded as a string.")
    status: ItemStatus
    agent: str | None = AGENT


class FunctionCallOutputItem(BaseModel):
    type: Literal["function_call_output"]
    id: str
    call_id: str
    output: str
    status: ItemStatus
    agent: str | None = AGENT


class SummaryText(BaseModel):
    type: Literal["summary_text"]
    text: str


class ReasoningText(BaseModel):
    type: Literal["reasoning_text"]
    text: str


class ReasoningItem(BaseModel):
    type: Literal["reasoning"]
    id: str
    summary: list[SummaryText]
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    status: ItemStatus | None = None
    agent: str | None = AGENT


ItemObject = Annotated[
    MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem,
    Field(discriminator="type"),
]


class ItemList(BaseModel):
    """A page of items; ``after`` = ``last_id`` gives the next one while ``has_more``."""

    object: Literal["list"]
    data: list[ItemObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


# --- responses ---------------------------------------------------------------------------


class FunctionTool(BaseModel):
    type: Literal["function"]
    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool


class FunctionToolChoice(BaseModel):
    type: Literal["function"]
    name: str


class TextFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(BaseModel):
    format: TextFormat
    verbosity: Literal["low", "medium", "high"] | None = None


class InputTokensDetails(BaseModel):
    cached_tokens: int
    cache_write_tokens: int


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseErrorDetail(BaseModel):
    code: str
    message: str


class IncompleteDetails(BaseModel):
    reason: str


class ResponseConversation(BaseModel):
    id: str


class ResponseResource(BaseModel):
    """A response (the Open Responses ``ResponseResource``)."""

    id: str
    object: Literal["response"]
    created_at: int
    completed_at: int | None
    status: Literal["queued", "in_progress", "completed", "failed", "incomplete", "cancelled"]
    incomplete_details: IncompleteDetails | None
    model: str
    previous_response_id: str | None
    instructions: str | None
    output: list[ItemObject]
    error: ResponseErrorDetail | None
    tools: list[FunctionTool]
    tool_choice: Literal["auto", "none", "required"] | FunctionToolChoice
    truncation: Literal["auto", "disabled"]
    parallel_tool_calls: bool
    text: TextConfig
    top_p: float
    presence_penalty: float
    frequency_penalty: float
    top_logprobs: int
    temperature: float
    reasoning: dict[str, Any] | None
    user: str | None
    usage: ResponseUsage | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    store: bool
    background: bool
    service_tier: str
    metadata: dict[str, str]
    safety_identifier: str | None
    prompt_cache_key: str | None
    conversation: ResponseConversation | None


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response"]
    deleted: Literal[True]


# --- conversations -----------------------------------------------------------------------


class Conversation(BaseModel):
    id: str
    object: Literal["conversation"]
    created_at: int
    metadata: dict[str, str]


class DeletedConversation(BaseModel):
    id: str
    object: Literal["conversation.deleted"]
    deleted: Literal[True]


# --- chat completions, models, health ----------------------------------------------------


class ChatToolCallFunction(BaseModel):
    name: str
    arguments: str


class ChatToolCall(BaseModel):
    id: str
    type: Literal["function"]
    function: ChatToolCallFunction


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ChatToolCall] | None = None


class ChatChoice(BaseModel):
    index: int
    message: ChatCompletionMessage
    finish_reason: str | None


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage


class Model(BaseModel):
    id: str = Field(
        description="A router role, a provider/model, agent:<name>, crew:<name> or flow:<name>."
    )
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[Model]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description="database, router, queue: 'ok…' or the error.")


# --- Server-Sent Events ------------------------------------------------------------------
# One event of a stream, as OpenAPI 3.2's ``itemSchema`` has it (and FastAPI's own SSE
# routes): ``event`` and ``data``, the JSON in ``data`` described by ``contentSchema``. The
# events refer to the components above, which the JSON responses put in the document.


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_STRING, _INTEGER = {"type": "string"}, {"type": "integer"}
_ITEM_KINDS = ("Message", "FunctionCall", "FunctionCallOutput", "Reasoning")
_AT = {"item_id": _STRING, "output_index": _INTEGER}
_PART = {**_AT, "content_index": _INTEGER}
_SUMMARY = {**_AT, "summary_index": _INTEGER}


def _event(types: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "sequence_number", *fields],
        "properties": {"type": {"enum": types}, "sequence_number": _INTEGER, **fields},
    }


_RESPONSE_EVENT = {
    "description": "A response.* event (or an error event), numbered by sequence_number.",
    "oneOf": [
        _event(
            [f"response.{kind}" for kind in ("created", "in_progress")]
            + [f"response.{kind}" for kind in ("completed", "incomplete", "failed")],
            response=_ref("ResponseResource"),
        ),
        _event(
            ["response.output_item.added", "response.output_item.done"],
            output_index=_INTEGER,
            item={"oneOf": [_ref(f"{kind}Item") for kind in _ITEM_KINDS]},
        ),
        _event(
            ["response.content_part.added", "response.content_part.done"],
            **_PART,
            part={"oneOf": [_ref("OutputTextPart"), _ref("RefusalPart")]},
        ),
        _event(["response.output_text.delta"], **_PART, delta=_STRING),
        _event(["response.output_text.done"], **_PART, text=_STRING),
        _event(["response.refusal.delta"], **_PART, delta=_STRING),
        _event(["response.refusal.done"], **_PART, refusal=_STRING),
        _event(["response.function_call_arguments.delta"], **_AT, delta=_STRING),
        _event(["response.function_call_arguments.done"], **_AT, arguments=_STRING),
        _event(
            ["response.reasoning_summary_part.added", "response.reasoning_summary_part.done"],
            **_SUMMARY,
            part=_ref("SummaryText"),
        ),
        _event(["response.reasoning_summary_text.delta"], **_SUMMARY, delta=_STRING),
        _event(["response.reasoning_summary_text.done"], **_SUMMARY, text=_STRING),
        _event(["error"], message=_STRING),
    ],
}
RESPONSE_EVENTS = {
    "description": (
        "With stream: true, Server-Sent Events instead: response.created, response.in_progress,"
        " the output items' events, then response.completed, .incomplete or .failed."
    ),
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "description": "The type of the event in data."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": _RESPONSE_EVENT,
        },
    },
}
_CHUNK = {
    "oneOf": [
        {
            "type": "object",
            "required": ["id", "object", "created", "model", "choices"],
            "properties": {
                "object": {"const": "chat.completion.chunk"},
                "choices": {"type": "array", "items": {"type": "object"}},
            },
        },
        {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["message"]}},
        },
    ]
}
CHUNKS = {
    "description": (
        "With stream: true, Server-Sent Events instead: chat.completion.chunk objects (or an"
        " error object), then data: [DONE]."
    ),
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "anyOf": [
                {"const": "[DONE]"},
                {"type": "string", "contentMediaType": "application/json", "contentSchema": _CHUNK},
            ]
        }
    },
}
