"""OpenAI Chat Completions adapter, for OpenAI and every server that speaks the protocol
(vLLM, Ollama, llama.cpp server, LM Studio): point ``base_url`` at it.

Chat Completions rather than the Responses API because it is the protocol the
compatible servers actually implement. Items are converted to chat messages, tool calls
and their results to ``tool_calls`` / ``tool`` messages, and streamed chunks back to
agentrig's stream events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import openai

from agentrig.errors import BadRequest, LLMError, ProviderUnavailable, Timeout
from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    InputText,
    Item,
    Message,
    OutputText,
    Refusal,
    new_id,
)
from agentrig.llm.providers.base import error_for_status, retry_after_seconds
from agentrig.llm.types import (
    Completed,
    EmbeddingResponse,
    FinishReason,
    ItemDone,
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)

_FINISH: dict[str | None, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class _OpenAIEndpoint:
    """What the chat client and the embedder share: the SDK client and its options."""

    def __init__(
        self,
        model: str,
        *,
        provider: str = "openai",
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.provider = provider
        self.options = dict(options or {})
        # The router retries and times out attempts itself; the SDK must not retry behind it.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=base_url,
            max_retries=0,
            timeout=float(self.options.get("timeout", 600)),
            http_client=http_client,
        )

    async def aclose(self) -> None:
        await self._client.close()


class OpenAIChatClient(_OpenAIEndpoint):
    """An :class:`~agentrig.llm.types.LLMClient` over the Chat Completions API."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        arguments = self._arguments(request)
        try:
            completion = await self._client.chat.completions.create(**arguments)
            choice = completion.choices[0]
            output = _output_items(choice.message)
            return ModelResponse(
                output=output,
                usage=_usage(completion.usage),
                model=completion.model or self.model,
                finish_reason=_finish(choice.finish_reason, output),
            )
        except Exception as exc:
            raise self._error(exc) from exc

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        arguments = self._arguments(request)
        arguments["stream"] = True
        arguments["stream_options"] = {"include_usage": True}
        state = _StreamState(self.model)
        try:
            chunks = await self._client.chat.completions.create(**arguments)
            async for chunk in chunks:
                for event in state.feed(chunk):
                    yield event
        except Exception as exc:
            raise self._error(exc) from exc
        for event in state.finish():
            yield event

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        settings = request.settings
        try:
            messages = chat_messages(request.items, request.instructions)
        except ValueError as exc:  # content that Chat Completions cannot carry
            raise BadRequest(str(exc), provider=self.provider, model=self.model) from None
        arguments: dict[str, Any] = {"model": self.model, "messages": messages}
        if request.tools:
            arguments["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                        **({"strict": True} if tool.strict else {}),
                    },
                }
                for tool in request.tools
            ]
            arguments["tool_choice"] = _tool_choice(request.tool_choice)
            if request.parallel_tool_calls is not None:
                arguments["parallel_tool_calls"] = request.parallel_tool_calls
        if request.output_schema is not None:
            schema = request.output_schema
            arguments["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.name,
                    "schema": schema.json_schema,
                    "strict": schema.strict,
                },
            }
        if settings.temperature is not None:
            arguments["temperature"] = settings.temperature
        if settings.top_p is not None:
            arguments["top_p"] = settings.top_p
        if settings.max_output_tokens is not None:
            key = self.options.get("max_tokens_param", "max_tokens")
            arguments[key] = settings.max_output_tokens
        if settings.stop:
            arguments["stop"] = settings.stop
        if settings.extra:
            arguments["extra_body"] = settings.extra
        return arguments

    def _error(self, exc: Exception) -> LLMError:
        return map_error(exc, provider=self.provider, model=self.model)


def map_error(exc: Exception, *, provider: str, model: str) -> LLMError:
    """Map an exception raised by the openai SDK (or httpx under it) to agentrig's kinds."""
    where = {"provider": provider, "model": model}
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return Timeout(f"no answer in time ({exc})", **where)
    if isinstance(exc, openai.APIStatusError):
        return error_for_status(
            exc.status_code,
            _status_message(exc),
            retry_after=retry_after_seconds(exc.response.headers),
            **where,
        )
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return ProviderUnavailable(f"cannot connect ({exc})", **where)
    return ProviderUnavailable(f"malformed response ({type(exc).__name__}: {exc})", **where)


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return exc.message


def _tool_choice(choice: str) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def chat_messages(items: Sequence[Item], instructions: str | None) -> list[dict[str, Any]]:
    """Convert canonical items to Chat Completions messages."""
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        if isinstance(item, Message):
            messages.append(_chat_message(item))
        elif isinstance(item, FunctionCall):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutput):
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
    return messages


def _chat_message(message: Message) -> dict[str, Any]:
    if message.role == "assistant":
        refusal = next((p.refusal for p in message.content if isinstance(p, Refusal)), None)
        body: dict[str, Any] = {"role": "assistant", "content": message.text or None}
        if refusal:
            body["refusal"] = refusal
        return body
    if all(isinstance(part, InputText | OutputText) for part in message.content):
        return {"role": message.role, "content": message.text}
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, InputText | OutputText):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, InputImage):
            if not part.image_url:
                raise ValueError("input_image: Chat Completions needs an image_url, not a file_id")
            parts.append(
                {"type": "image_url", "image_url": {"url": part.image_url, "detail": part.detail}}
            )
        elif isinstance(part, InputFile):
            parts.append({"type": "file", "file": _file(part)})
    return {"role": message.role, "content": parts}


def _file(part: InputFile) -> dict[str, str]:
    """Chat Completions' ``file`` part: inline data (with its name) or an uploaded file's id."""
    if part.file_url and not (part.file_data or part.file_id):
        raise ValueError("input_file: Chat Completions takes file_data or file_id, not file_url")
    fields = {"file_data": part.file_data, "file_id": part.file_id, "filename": part.filename}
    return {key: value for key, value in fields.items() if value}


def _output_items(message: Any) -> list[Item]:
    items: list[Item] = []
    parts: list[OutputText | Refusal] = []
    if message.content:
        parts.append(OutputText(text=message.content))
    if getattr(message, "refusal", None):
        parts.append(Refusal(refusal=message.refusal))
    if parts:
        items.append(Message(id=new_id("msg"), role="assistant", content=parts, status="completed"))
    for call in message.tool_calls or []:
        items.append(
            FunctionCall(
                id=new_id("fc"),
                call_id=call.id or new_id("call"),
                name=call.function.name,
                arguments=call.function.arguments or "{}",
                status="completed",
            )
        )
    return items


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(requests=1)
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=(getattr(details, "cached_tokens", None) or 0) if details else 0,
        requests=1,
    )


def _finish(reason: str | None, output: list[Item]) -> FinishReason:
    if any(isinstance(item, FunctionCall) for item in output):
        return "tool_calls"
    return _FINISH.get(reason, "stop")


class _StreamState:
    """Accumulates streamed chunks into items, turning each chunk into stream events."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.message_id = new_id("msg")
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage = Usage(requests=1)

    def feed(self, chunk: Any) -> list[ModelStreamEvent]:
        events: list[ModelStreamEvent] = []
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                self.text.append(delta.content)
                events.append(TextDelta(item_id=self.message_id, delta=delta.content))
            for call in delta.tool_calls or []:
                events.extend(self._feed_call(call))
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return events

    def _feed_call(self, call: Any) -> list[ModelStreamEvent]:
        state = self.calls.setdefault(
            call.index, {"id": new_id("fc"), "call_id": None, "name": "", "arguments": []}
        )
        function = call.function
        if call.id:
            state["call_id"] = call.id
        if function is not None and function.name:
            state["name"] = function.name
        if function is None or not function.arguments:
            return []
        state["arguments"].append(function.arguments)
        return [
            ToolCallDelta(
                item_id=state["id"],
                call_id=state["call_id"] or "",
                name=state["name"],
                delta=function.arguments,
            )
        ]

    def finish(self) -> list[ModelStreamEvent]:
        output: list[Item] = []
        if self.text:
            output.append(
                Message(
                    id=self.message_id,
                    role="assistant",
                    content=[OutputText(text="".join(self.text))],
                    status="completed",
                )
            )
        for index in sorted(self.calls):
            state = self.calls[index]
            arguments = "".join(state["arguments"]) or "{}"
            json.loads(arguments)  # a malformed stream must not produce an unusable call
            output.append(
                FunctionCall(
                    id=state["id"],
                    call_id=state["call_id"] or new_id("call"),
                    name=state["name"],
                    arguments=arguments,
                    status="completed",
                )
            )
        response = ModelResponse(
            output=output,
            usage=self.usage,
            model=self.model,
            finish_reason=_finish(self.finish_reason, output),
        )
        return [*(ItemDone(item=item) for item in output), Completed(response=response)]


class OpenAIEmbedder(_OpenAIEndpoint):
    """The embeddings endpoint of OpenAI or a compatible server, one batch per call."""

    @property
    def max_batch_size(self) -> int:
        return int(self.options.get("max_batch_size", 256))

    async def embed_batch(self, texts: Sequence[str]) -> EmbeddingResponse:
        try:
            result = await self._client.embeddings.create(model=self.model, input=list(texts))
            vectors = [row.embedding for row in sorted(result.data, key=lambda row: row.index)]
        except Exception as exc:
            raise map_error(exc, provider=self.provider, model=self.model) from exc
        tokens = result.usage.prompt_tokens if result.usage else 0
        return EmbeddingResponse(
            vectors=vectors, usage=Usage(input_tokens=tokens, requests=1), model=result.model
        )
