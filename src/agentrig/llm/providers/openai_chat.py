"""OpenAI Chat Completions adapter, for OpenAI and every server that speaks the protocol
(vLLM, Ollama, llama.cpp server, LM Studio): point ``base_url`` at it.

Chat Completions rather than the Responses API because it is the protocol the
compatible servers actually implement. Items are converted to chat messages, tool calls
and their results to ``tool_calls`` / ``tool`` messages, and streamed chunks back to
agentrig's stream events. The HTTP exchange is :mod:`.http_json` (aiohttp), not the
openai SDK: see there for why.

Options (``[llm.providers.NAME.options]``): ``timeout`` (seconds, default 600),
``max_connections`` (default 100), ``headers`` (sent with every request),
``max_tokens_param`` (``max_tokens`` by default; ``max_completion_tokens`` for OpenAI's
reasoning models).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from agentrig.errors import BadRequest
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
from agentrig.llm.providers.http_json import JSONClient
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
    """What the chat client and the embedder share: the HTTP client and the options."""

    def __init__(
        self,
        model: str,
        *,
        provider: str = "openai",
        api_key: str | None = None,
        base_url: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.provider = provider
        self.options = dict(options or {})
        # The router retries and times out attempts itself; no retries here.
        self._http = JSONClient(
            base_url or "https://api.openai.com/v1",
            provider=provider,
            model=model,
            api_key=api_key,
            headers=self.options.get("headers"),
            timeout=float(self.options.get("timeout", 600)),
            max_connections=int(self.options.get("max_connections", 100)),
        )

    async def aclose(self) -> None:
        await self._http.aclose()


class OpenAIChatClient(_OpenAIEndpoint):
    """An :class:`~agentrig.llm.types.LLMClient` over the Chat Completions API."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        completion = await self._http.post("/chat/completions", self._arguments(request))
        try:
            choice = completion["choices"][0]
            output = _output_items(choice["message"])
            return ModelResponse(
                output=output,
                usage=_usage(completion.get("usage")),
                model=completion.get("model") or self.model,
                finish_reason=_finish(choice.get("finish_reason"), output),
            )
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise self._http.malformed(exc) from None

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        arguments = self._arguments(request)
        arguments["stream"] = True
        arguments["stream_options"] = {"include_usage": True}
        state = _StreamState(self.model)
        async for chunk in self._http.post_events("/chat/completions", arguments):
            try:
                events = state.feed(chunk)
            except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
                raise self._http.malformed(exc) from None
            for event in events:
                yield event
        try:
            events = state.finish()
        except ValueError as exc:  # the streamed arguments are not JSON
            raise self._http.malformed(exc) from None
        for event in events:
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
            arguments.update(settings.extra)
        return arguments


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


def _output_items(message: dict[str, Any]) -> list[Item]:
    items: list[Item] = []
    parts: list[OutputText | Refusal] = []
    if message.get("content"):
        parts.append(OutputText(text=message["content"]))
    if message.get("refusal"):
        parts.append(Refusal(refusal=message["refusal"]))
    if parts:
        items.append(Message(id=new_id("msg"), role="assistant", content=parts, status="completed"))
    for call in message.get("tool_calls") or []:
        function = call["function"]
        items.append(
            FunctionCall(
                id=new_id("fc"),
                call_id=call.get("id") or new_id("call"),
                name=function["name"],
                arguments=function.get("arguments") or "{}",
                status="completed",
            )
        )
    return items


def _usage(usage: dict[str, Any] | None) -> Usage:
    if not usage:
        return Usage(requests=1)
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        cached_tokens=details.get("cached_tokens") or 0,
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

    def feed(self, chunk: dict[str, Any]) -> list[ModelStreamEvent]:
        events: list[ModelStreamEvent] = []
        if chunk.get("model"):
            self.model = chunk["model"]
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        for choice in (chunk.get("choices") or [])[:1]:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
                events.append(TextDelta(item_id=self.message_id, delta=delta["content"]))
            for call in delta.get("tool_calls") or []:
                events.extend(self._feed_call(call))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _feed_call(self, call: dict[str, Any]) -> list[ModelStreamEvent]:
        state = self.calls.setdefault(
            call.get("index", 0), {"id": new_id("fc"), "call_id": None, "name": "", "arguments": []}
        )
        function = call.get("function") or {}
        if call.get("id"):
            state["call_id"] = call["id"]
        if function.get("name"):
            state["name"] = function["name"]
        if not function.get("arguments"):
            return []
        state["arguments"].append(function["arguments"])
        return [
            ToolCallDelta(
                item_id=state["id"],
                call_id=state["call_id"] or "",
                name=state["name"],
                delta=function["arguments"],
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
        result = await self._http.post("/embeddings", {"model": self.model, "input": list(texts)})
        try:
            rows = sorted(result["data"], key=lambda row: row["index"])
            vectors = [list(row["embedding"]) for row in rows]
            tokens = (result.get("usage") or {}).get("prompt_tokens") or 0
            model = result.get("model") or self.model
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._http.malformed(exc) from None
        if len(vectors) != len(texts):
            raise self._http.malformed(ValueError(f"{len(vectors)} vectors for {len(texts)} texts"))
        return EmbeddingResponse(
            vectors=vectors, usage=Usage(input_tokens=tokens, requests=1), model=model
        )
