"""The Anthropic Messages API behind agentrig's :class:`LLMClient` protocol.

Anthropic's wire form differs from the canonical items: the system prompt is a parameter,
turns must alternate, and tool calls and results are ``tool_use`` / ``tool_result`` content
blocks. This module converts both ways, maps the SDK's errors onto agentrig's, and gives
structured output through a forced tool whose input comes back as the assistant's JSON
text. The SDK never retries (``max_retries=0``): the router owns retries and timeouts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic.types import Message as WireMessage
from anthropic.types import TextBlock, ThinkingBlock, ToolUseBlock

from agentrig import errors
from agentrig.items import (
    ContentPart,
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    Item,
    Message,
    OutputText,
    Reasoning,
    ReasoningText,
    Refusal,
    new_id,
)
from agentrig.llm.providers.base import error_for_status, parse_arguments, retry_after_seconds
from agentrig.llm.types import (
    Completed,
    FinishReason,
    ItemDone,
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    OutputSchema,
    TextDelta,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    import httpx2

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicClient"]

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; used when the request sets none

_FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# The HTTP status each error type has; an ``error`` event inside a stream arrives with 200.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}

_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

Block = dict[str, Any]


class AnthropicClient:
    """A Claude model served by the Messages API (or a compatible server at ``base_url``)."""

    def __init__(
        self,
        model: str,
        *,
        provider: str = "anthropic",
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: httpx2.AsyncClient | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.provider = provider
        self.default_max_tokens = _default_max_tokens(provider, options or {})
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, http_client=http_client, max_retries=0
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        kwargs = self._call_kwargs(request)
        try:
            message = await self._client.messages.create(**kwargs)
        except (anthropic.AnthropicError, ValueError) as exc:
            raise self._error(exc) from exc
        if not isinstance(message, WireMessage) or not isinstance(message.content, list):
            raise self._unreadable(f"not a message: {str(message)[:200]!r}")
        output = _Output(request.output_schema)
        output.update(message.model, message.stop_reason, message.usage)
        for block in message.content:
            output.block_started(block)
            output.block_stopped()
        output.close_message()
        return output.response()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        kwargs = self._call_kwargs(request)
        output = _Output(request.output_schema)
        stopped = False
        try:
            events = await self._client.messages.create(**kwargs, stream=True)
            async with events:
                async for event in events:
                    for out in _on_event(output, event):
                        yield out
                    stopped = stopped or event.type == "message_stop"
        except (anthropic.AnthropicError, ValueError) as exc:
            raise self._error(exc) from exc
        if not stopped:
            raise self._unreadable("the stream ended before message_stop")
        for out in output.close_message():
            yield out
        yield Completed(response=output.response())

    async def aclose(self) -> None:
        """Close the SDK client and its connections."""
        await self._client.close()

    # --- request ---------------------------------------------------------------------

    def _call_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        try:
            system, messages = _system_and_turns(request)
        except ValueError as exc:
            raise errors.BadRequest(str(exc), provider=self.provider, model=self.model) from exc
        settings = request.settings
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": settings.max_output_tokens or self.default_max_tokens,
            "messages": messages,
        }
        if system:
            kwargs["system"] = system
        if tools := _tools(request):
            kwargs["tools"] = tools
            kwargs["tool_choice"] = _tool_choice(request)
        if settings.stop:
            kwargs["stop_sequences"] = settings.stop
        # create() has no temperature/top_p since SDK 1.0; extra_body sends them as they are.
        sampling = {"temperature": settings.temperature, "top_p": settings.top_p}
        extra_body = {k: v for k, v in sampling.items() if v is not None} | settings.extra
        if extra_body:
            kwargs["extra_body"] = extra_body
        return kwargs

    # --- errors ----------------------------------------------------------------------

    def _error(self, exc: Exception) -> errors.LLMError:
        where = {"provider": self.provider, "model": self.model}
        if isinstance(exc, anthropic.APITimeoutError):
            return errors.Timeout(f"request timed out ({exc.__cause__ or exc})", **where)
        if isinstance(exc, anthropic.APIConnectionError):
            return errors.ProviderUnavailable(f"connection failed: {exc.__cause__ or exc}", **where)
        if isinstance(exc, anthropic.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            kind, message = error.get("type"), error.get("message") or exc.message
            status = exc.status_code
            if status < 400:  # an error event inside a stream that began with 200
                status = _ERROR_TYPE_STATUS.get(kind, 500)
            return error_for_status(
                status,
                f"{kind}: {message}" if kind else message,
                provider=self.provider,
                model=self.model,
                retry_after=retry_after_seconds(exc.response.headers),
            )
        if isinstance(exc, anthropic.CredentialsError):
            return errors.AuthenticationFailed(str(exc), **where)
        return self._unreadable(str(exc))

    def _unreadable(self, detail: str) -> errors.ProviderUnavailable:
        return errors.ProviderUnavailable(
            f"unreadable response: {detail}", provider=self.provider, model=self.model
        )


def _default_max_tokens(provider: str, options: dict[str, Any]) -> int:
    value = options.get("default_max_tokens", DEFAULT_MAX_TOKENS)
    if set(options) - {"default_max_tokens"} or type(value) is not int or value <= 0:
        raise errors.ConfigError(
            f"llm.providers.{provider}.options = {options!r}: expected only "
            "'default_max_tokens', a positive integer"
        )
    return value


# --- items -> Messages API -------------------------------------------------------------


def _system_and_turns(request: ModelRequest) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt and the alternating user/assistant turns of ``request``."""
    system = [request.instructions] if request.instructions else []
    turns: list[dict[str, Any]] = []
    for item in request.items:
        if isinstance(item, Message) and item.role in ("system", "developer"):
            system.append(item.text)
            continue
        role, blocks = _role_and_blocks(item)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if (schema := request.output_schema) is not None:
        system.append(
            f"When you give your final answer, give it by calling the `{schema.name}` tool."
        )
    return "\n\n".join(part for part in system if part), turns


def _role_and_blocks(item: Item) -> tuple[str, list[Block]]:
    if isinstance(item, Message):
        return item.role, [block for part in item.content if (block := _part_block(part))]
    if isinstance(item, FunctionCall):
        try:
            arguments = parse_arguments(item.arguments)
        except ValueError as exc:
            raise ValueError(
                f"function_call {item.call_id}: arguments are not a JSON object: {exc}"
            ) from exc
        block = {"type": "tool_use", "id": item.call_id, "name": item.name, "input": arguments}
        return "assistant", [block]
    if isinstance(item, FunctionCallOutput):
        return "user", [
            {"type": "tool_result", "tool_use_id": item.call_id, "content": item.output}
        ]
    return "assistant", []  # reasoning: another vendor's, or unsigned, so it cannot go back


def _part_block(part: ContentPart) -> Block | None:
    if isinstance(part, InputImage):
        return {"type": "image", "source": _image_source(part)}
    if isinstance(part, InputFile):
        raise ValueError("input_file parts are not supported by the anthropic provider")
    text = part.refusal if isinstance(part, Refusal) else part.text
    return {"type": "text", "text": text} if text else None  # the API rejects empty text


def _image_source(image: InputImage) -> Block:
    if image.file_id:
        return {"type": "file", "file_id": image.file_id}
    url = image.image_url or ""
    if not url.startswith("data:"):
        if not url:
            raise ValueError("input_image needs an image_url or a file_id")
        return {"type": "url", "url": url}
    header, _, data = url.partition(",")
    media_type = header.removeprefix("data:").split(";")[0]
    if media_type not in _IMAGE_TYPES or not header.endswith(";base64"):
        raise ValueError(
            f"input_image data URL {header!r}: expected base64 data of one of {_IMAGE_TYPES}"
        )
    return {"type": "base64", "media_type": media_type, "data": data}


def _tools(request: ModelRequest) -> list[Block]:
    tools: list[Block] = []
    for spec in request.tools:
        tool: Block = {"name": spec.name, "input_schema": spec.parameters}
        if spec.description:
            tool["description"] = spec.description
        if spec.strict:
            tool["strict"] = True
        tools.append(tool)
    if (schema := request.output_schema) is not None:
        description = "Give the final answer; the input is the answer itself."
        tools.append(
            {"name": schema.name, "description": description, "input_schema": schema.json_schema}
        )
    return tools


def _tool_choice(request: ModelRequest) -> Block:
    """Anthropic's ``tool_choice``; with an output schema a tool call is compulsory."""
    choice = request.tool_choice
    schema = request.output_schema
    if schema is not None and (choice == "none" or not request.tools):
        result: Block = {"type": "tool", "name": schema.name}
    elif choice == "required" or (schema is not None and choice == "auto"):
        result = {"type": "any"}  # a real tool, or the answer tool
    elif choice in ("auto", "none"):
        result = {"type": choice}
    else:
        result = {"type": "tool", "name": choice}
    if request.parallel_tool_calls is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result


# --- Messages API -> items -------------------------------------------------------------


def _on_event(output: _Output, event: Any) -> list[ModelStreamEvent]:
    """Feed one raw stream event to ``output``; return the agentrig events it produces."""
    if event.type == "message_start":
        output.update(event.message.model, None, event.message.usage)
    elif event.type == "content_block_start":
        return output.block_started(event.content_block)
    elif event.type == "content_block_delta":
        delta = event.delta
        piece = getattr(delta, "text", None) or getattr(delta, "partial_json", None)
        return output.block_delta(piece or getattr(delta, "thinking", ""))
    elif event.type == "content_block_stop":
        return output.block_stopped()
    elif event.type == "message_delta":
        output.update(None, event.delta.stop_reason, event.usage)
    return []


class _Output:
    """Builds the output items from content blocks, whole or streamed, and the events to emit.

    Consecutive text blocks form one assistant message; each tool call, the answer tool's
    JSON (as its own message) and each thinking block become one item.
    """

    def __init__(self, schema: OutputSchema | None) -> None:
        self.items: list[Item] = []
        self.model = ""
        self.stop_reason: str | None = None
        self._answer_tool = schema.name if schema else None
        self._usage: dict[str, int] = {}
        self._message: Message | None = None  # the open message, still taking text blocks
        self._block: ToolUseBlock | TextBlock | ThinkingBlock | None = None
        self._id = ""
        self._buffer: list[str] = []

    def update(self, model: str | None, stop_reason: str | None, usage: Any) -> None:
        """Take the model, stop reason and token counts the API reports, where present."""
        self.model = model or self.model
        self.stop_reason = stop_reason or self.stop_reason
        for name in _USAGE_FIELDS:
            if (value := getattr(usage, name, None)) is not None:
                self._usage[name] = value  # message_delta counts are cumulative

    def block_started(self, block: Any) -> list[ModelStreamEvent]:
        events = [] if isinstance(block, TextBlock) else self.close_message()
        self._block, self._buffer = None, []
        if isinstance(block, TextBlock) or self._is_answer(block):
            self._message = self._message or Message(
                id=new_id("msg"), role="assistant", content=[], status="completed"
            )
            self._block, self._id = block, self._message.id or ""
        elif isinstance(block, ToolUseBlock | ThinkingBlock):
            self._block, self._id = block, new_id("fc" if block.type == "tool_use" else "rs")
        initial = getattr(block, "text", None) or getattr(block, "thinking", None)
        if isinstance(block, ToolUseBlock) and block.input:
            initial = json.dumps(block.input)
        return events + self.block_delta(initial or "")

    def block_delta(self, piece: str) -> list[ModelStreamEvent]:
        block = self._block
        if block is None or not piece:
            return []
        self._buffer.append(piece)
        if isinstance(block, TextBlock) or self._is_answer(block):
            return [TextDelta(item_id=self._id, delta=piece)]
        if isinstance(block, ToolUseBlock):
            return [ToolCallDelta(item_id=self._id, call_id=block.id, name=block.name, delta=piece)]
        return []

    def block_stopped(self) -> list[ModelStreamEvent]:
        block, text = self._block, "".join(self._buffer)
        self._block, self._buffer = None, []
        if isinstance(block, TextBlock) and self._message is not None:
            self._message.content.append(OutputText(text=text))
            return []
        if self._is_answer(block) and self._message is not None:
            self._message.content.append(OutputText(text=text or "{}"))
            return self.close_message()
        if isinstance(block, ToolUseBlock):
            return self._done(
                FunctionCall(
                    id=self._id,
                    call_id=block.id,
                    name=block.name,
                    arguments=text or "{}",
                    status="completed",
                )
            )
        if isinstance(block, ThinkingBlock):
            reasoning = [ReasoningText(text=text)]
            return self._done(Reasoning(id=self._id, content=reasoning, status="completed"))
        return []

    def close_message(self) -> list[ModelStreamEvent]:
        message, self._message = self._message, None
        return self._done(message) if message is not None and message.content else []

    def response(self) -> ModelResponse:
        finish = _FINISH_REASONS.get(self.stop_reason or "", "stop")
        if finish == "tool_calls" and not any(isinstance(i, FunctionCall) for i in self.items):
            finish = "stop"  # only the answer tool was called: that is a final answer
        return ModelResponse(
            output=self.items, usage=self._total_usage(), model=self.model, finish_reason=finish
        )

    def _is_answer(self, block: object) -> bool:
        return isinstance(block, ToolUseBlock) and block.name == self._answer_tool

    def _done(self, item: Item) -> list[ModelStreamEvent]:
        self.items.append(item)
        return [ItemDone(item=item)]

    def _total_usage(self) -> Usage:
        cached = self._usage.get("cache_read_input_tokens", 0)
        created = self._usage.get("cache_creation_input_tokens", 0)
        return Usage(
            input_tokens=self._usage.get("input_tokens", 0) + cached + created,
            output_tokens=self._usage.get("output_tokens", 0),
            cached_tokens=cached,
            requests=1,
        )
