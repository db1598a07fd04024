"""``/v1/chat/completions``, served through the router so plain chat clients work too.

Chat messages become canonical items (system messages become instructions, assistant
``tool_calls`` become function calls, ``tool`` messages their outputs); the answer is a
``chat.completion`` or, with ``stream``, ``chat.completion.chunk`` events.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agentrig.errors import AgentrigError
from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    InputText,
    Item,
    Message,
    new_id,
)
from agentrig.llm.types import (
    Completed,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    OutputSchema,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)
from agentrig.server.auth import tenant_of
from agentrig.server.errors import APIError, from_exception
from agentrig.server.openapi import CHUNKS, ChatCompletion, errors, ok

router = APIRouter()


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageURL(_Lenient):
    url: str
    detail: Literal["low", "high", "auto"] = "auto"


class ChatFile(_Lenient):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class ChatPart(_Lenient):
    type: str
    text: str | None = None
    image_url: ImageURL | None = None
    file: ChatFile | None = None


class FunctionName(_Lenient):
    name: str


class CalledFunction(FunctionName):
    arguments: str | None = None


class ChatToolCall(_Lenient):
    id: str | None = None
    type: Literal["function"] = "function"
    function: CalledFunction


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ChatPart] | None = None
    tool_calls: list[ChatToolCall] | None = None
    tool_call_id: str | None = None


class ChatFunction(_Lenient):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ChatTool(_Lenient):
    type: Literal["function"]
    function: ChatFunction


class ChatToolChoice(_Lenient):
    type: Literal["function"] = "function"
    function: FunctionName


class ChatJsonSchema(_Lenient):
    name: str = "output"
    json_schema: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool = False


class ChatResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: ChatJsonSchema | None = None


class ChatRequest(_Lenient):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[ChatTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | ChatToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ChatResponseFormat | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    stop: str | list[str] | None = None
    stream: bool = False


def _text(content: str | list[ChatPart] | None) -> str:
    if isinstance(content, list):
        return "".join(part.text or "" for part in content if part.type == "text")
    return content or ""


def _content(message: ChatMessage, index: int) -> str | list[Any]:
    """A user message's text, or its parts (text, images, files) as item content parts."""
    if not isinstance(message.content, list) or message.role == "assistant":
        return _text(message.content)
    parts: list[Any] = []
    for number, part in enumerate(message.content):
        where = f"messages[{index}].content[{number}]"
        if part.type == "text":
            parts.append(InputText(text=part.text or ""))
        elif part.type == "image_url" and part.image_url is not None:
            parts.append(InputImage(image_url=part.image_url.url, detail=part.image_url.detail))
        elif part.type == "file" and part.file is not None:
            parts.append(InputFile(**part.file.model_dump(exclude_none=True)))
        else:
            raise APIError(
                400,
                f"{where}: unsupported content part {part.type!r} (or its body is missing); "
                "text, image_url and file parts are supported",
                param=f"{where}.type",
            )
    return parts


def model_request(body: ChatRequest) -> ModelRequest:
    instructions: list[str] = []
    items: list[Item] = []
    for index, message in enumerate(body.messages):
        if message.role in ("system", "developer"):
            instructions.append(_text(message.content))
        elif message.role == "tool":
            if not message.tool_call_id:
                raise APIError(
                    400, "tool messages need tool_call_id", param=f"messages[{index}].tool_call_id"
                )
            items.append(
                FunctionCallOutput(call_id=message.tool_call_id, output=_text(message.content))
            )
        else:
            if message.content:
                items.append(Message(role=message.role, content=_content(message, index)))
            for call in message.tool_calls or []:
                items.append(
                    FunctionCall(
                        call_id=call.id or new_id("call"),
                        name=call.function.name,
                        arguments=call.function.arguments or "{}",
                    )
                )
    tools = [
        ToolSpec(
            name=tool.function.name,
            description=tool.function.description or "",
            parameters=tool.function.parameters or {"type": "object", "properties": {}},
        )
        for tool in body.tools or []
    ]
    choice = body.tool_choice or "auto"
    if isinstance(choice, ChatToolChoice):
        choice = choice.function.name
    schema = None
    if body.response_format and body.response_format.type == "json_schema":
        spec = body.response_format.json_schema or ChatJsonSchema()
        schema = OutputSchema(name=spec.name, json_schema=spec.json_schema, strict=spec.strict)
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    return ModelRequest(
        items=items,
        instructions="\n\n".join(instructions) or None,
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=body.parallel_tool_calls,
        output_schema=schema,
        settings=ModelSettings(
            temperature=body.temperature,
            top_p=body.top_p,
            max_output_tokens=body.max_completion_tokens or body.max_tokens,
            stop=stop,
        ),
    )


def _usage(response: ModelResponse) -> dict[str, int]:
    usage = response.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _completion(id: str, model: str, response: ModelResponse) -> dict[str, Any]:
    calls = [
        {
            "id": c.call_id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for c in response.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": response.finish_reason}],
        "usage": _usage(response),
    }


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses=ok(ChatCompletion, "The completion.", events=CHUNKS)
    | errors(400, 401, 429, 502, 504),
)
async def chat_completions(
    body: ChatRequest, request: Request, tenant: str = Depends(tenant_of)
) -> Any:
    state = request.app.state.server
    try:
        client = state.router.client(body.model)
    except AgentrigError as exc:
        raise APIError(400, str(exc), param="model", code="model_not_found") from None
    completion_id = new_id("chatcmpl")
    chat_request = model_request(body)
    if not body.stream:
        try:
            response = await client.complete(chat_request)
        except Exception as exc:
            raise from_exception(exc) from exc
        return _completion(completion_id, body.model, response)
    return StreamingResponse(
        _chunks(client, chat_request, completion_id, body.model), media_type="text/event-stream"
    )


async def _chunks(client: Any, request: ModelRequest, id: str, model: str) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    calls: dict[str, int] = {}
    try:
        async for event in client.stream(request):
            if isinstance(event, TextDelta):
                yield chunk({"content": event.delta})
            elif isinstance(event, ToolCallDelta):
                first = event.item_id not in calls
                index = calls.setdefault(event.item_id, len(calls))
                call: dict[str, Any] = {"index": index, "function": {"arguments": event.delta}}
                if first:
                    call.update(id=event.call_id, type="function")
                    call["function"]["name"] = event.name
                yield chunk({"tool_calls": [call]})
            elif isinstance(event, Completed):
                yield chunk({}, event.response.finish_reason)
    except Exception as exc:
        error = from_exception(exc)
        yield f"data: {json.dumps({'error': {'message': error.message, 'code': error.code}})}\n\n"
    yield "data: [DONE]\n\n"
