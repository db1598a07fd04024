"""The Gemini adapter: agentrig requests and items to Google's Gemini API, and back.

It speaks through the official ``google-genai`` SDK (``pip install 'agentrig[gemini]'``)
so that the wire format stays Google's business, but over an httpx client that agentrig
owns (or the caller injects, e.g. a mock transport in tests) and with the SDK's retries
off: the router owns retries, timeouts and fallbacks, so one call here is one HTTP request.
SDK and transport exceptions become agentrig's error kinds, naming provider and model.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing, contextmanager
from typing import Any

import httpx
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from agentrig.errors import BadRequest, ConfigError, LLMError, ProviderUnavailable, Timeout
from agentrig.items import (
    ContentPart,
    FunctionCall,
    FunctionCallOutput,
    InputImage,
    InputText,
    Item,
    Message,
    OutputText,
    Reasoning,
    Refusal,
    SummaryText,
    new_id,
)
from agentrig.llm.providers.base import error_for_status, parse_arguments, retry_after_seconds
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
    ToolSpec,
    Usage,
)

__all__ = ["GeminiClient", "GeminiEmbedder"]

_API_VERSION = "v1beta"  # the version Google's REST docs use; it has the JSON-schema fields
_HTTP_OPTIONS = ("api_version", "headers")  # provider options for HTTP, not for the model
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# A thought signature rides in Reasoning.encrypted_content under this mark, so that another
# vendor's encrypted reasoning is never sent to Gemini.
_SIGNATURE = "gemini-thought-signature:"
# Call ids that agentrig (or OpenAI) made up: Gemini is only sent back the ids it made.
_FOREIGN_CALL_ID = "call_"


class _GeminiAPI:
    """What the chat client and the embedder share: the SDK client and the error mapping.

    ``options`` may hold ``api_version`` (default ``v1beta``) and ``headers`` for HTTP;
    the other keys are fields of ``_options_model``, sent with every request.
    """

    _options_model: type[pydantic.BaseModel]

    def __init__(
        self,
        model: str,
        *,
        provider: str = "gemini",
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.provider = provider
        self._options = dict(options or {})
        http = {key: self._options.pop(key) for key in _HTTP_OPTIONS if key in self._options}
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        http_options = types.HttpOptions(
            base_url=base_url,
            api_version=http.get("api_version", _API_VERSION),
            headers=http.get("headers"),
            httpx_async_client=self._http,
            retry_options=None,  # a single attempt
        )
        try:
            self._options_model(**self._options)
            self._client = genai.Client(vertexai=False, api_key=api_key, http_options=http_options)
        except ValueError as exc:  # a bad option, or no API key
            raise ConfigError(f"provider {provider!r} (kind gemini): {exc}") from None

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Re-raise SDK, transport and parsing errors as agentrig errors."""
        try:
            yield
        except LLMError:
            raise
        except Exception as exc:
            error = self._error(exc)
            if error is None:
                raise
            raise error from exc

    def _error(self, exc: Exception) -> LLMError | None:
        where = {"provider": self.provider, "model": self.model}
        if isinstance(exc, genai_errors.APIError):
            message = ": ".join(str(part) for part in (exc.status, exc.message) if part)
            retry_after = _retry_after(exc)
            return error_for_status(exc.code or 500, message, retry_after=retry_after, **where)
        if isinstance(exc, httpx.TimeoutException):
            return Timeout(f"no answer in time ({type(exc).__name__})", **where)
        if isinstance(exc, httpx.TransportError):
            return ProviderUnavailable(f"cannot reach the Gemini API: {exc!r}", **where)
        if isinstance(exc, json.JSONDecodeError | genai_errors.UnknownApiResponseError):
            return ProviderUnavailable(f"malformed response body: {exc}", **where)
        if isinstance(exc, pydantic.ValidationError):
            return ProviderUnavailable(f"unexpected response shape: {exc}", **where)
        if isinstance(exc, ValueError):  # the SDK refusing the request before sending it
            return BadRequest(str(exc), **where)
        return None


class GeminiClient(_GeminiAPI):
    """A Gemini chat model behind the :class:`~agentrig.llm.types.LLMClient` protocol.

    Options besides ``api_version`` and ``headers`` are ``GenerateContentConfig`` fields
    (``thinking_config``, ``safety_settings``, ...); a request's ``settings.extra`` wins.
    """

    _options_model = types.GenerateContentConfig

    async def complete(self, request: ModelRequest) -> ModelResponse:
        contents, config = self._prepare(request)
        assembler = _Assembler(self.model)
        with self._errors():
            reply = await self._client.aio.models.generate_content(
                model=self.model, contents=contents, config=config
            )
            assembler.feed(reply)
            assembler.finish()
            return assembler.response()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        contents, config = self._prepare(request)
        assembler = _Assembler(self.model)
        with self._errors():  # GeneratorExit and cancellation pass through untouched
            chunks = await self._client.aio.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
            async with aclosing(chunks):
                async for chunk in chunks:
                    for event in assembler.feed(chunk):
                        yield event
            for event in assembler.finish():
                yield event
            response = assembler.response()
        yield Completed(response=response)

    def _prepare(self, request: ModelRequest) -> tuple[list[types.Content], Any]:
        try:
            system, contents = _contents(request.items)
            if request.instructions:
                system.insert(0, request.instructions)
            return contents, types.GenerateContentConfig(**self._config(request, system))
        except ValueError as exc:
            raise BadRequest(
                f"cannot convert the request: {exc}", provider=self.provider, model=self.model
            ) from exc

    def _config(self, request: ModelRequest, system: list[str]) -> dict[str, Any]:
        settings = request.settings
        config: dict[str, Any] = {
            **self._options,
            "automatic_function_calling": {"disable": True},
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_output_tokens": settings.max_output_tokens,
            "stop_sequences": settings.stop,
        }
        if system:
            config["system_instruction"] = types.Content(parts=[_text("\n\n".join(system))])
        if request.tools:
            config["tools"] = [types.Tool(function_declarations=_declarations(request.tools))]
            config["tool_config"] = _tool_config(request.tool_choice)
        if request.output_schema is not None:
            config["response_mime_type"] = "application/json"
            config["response_json_schema"] = request.output_schema.json_schema
        config.update(settings.extra)
        return {key: value for key, value in config.items() if value is not None}


class GeminiEmbedder(_GeminiAPI):
    """A Gemini embedding model as an ``EmbeddingBackend`` (``batchEmbedContents``).

    Options besides ``api_version`` and ``headers`` are ``EmbedContentConfig`` fields,
    such as ``task_type`` or ``output_dimensionality``.
    """

    _options_model = types.EmbedContentConfig
    max_batch_size = 100

    async def embed_batch(self, texts: Sequence[str]) -> EmbeddingResponse:
        # one content per text: a list of plain strings may be merged into one content
        contents = [types.Content(role="user", parts=[_text(text)]) for text in texts]
        config = types.EmbedContentConfig(**self._options)
        with self._errors():
            reply = await self._client.aio.models.embed_content(
                model=self.model, contents=contents, config=config
            )
            vectors = [list(embedding.values or []) for embedding in reply.embeddings or []]
        if len(vectors) != len(texts):
            raise ProviderUnavailable(
                f"asked for {len(texts)} embeddings, got {len(vectors)}",
                provider=self.provider,
                model=self.model,
            )
        tokens = reply.usage_metadata.prompt_token_count if reply.usage_metadata else None
        usage = Usage(input_tokens=tokens or 0, requests=1)
        return EmbeddingResponse(vectors=vectors, usage=usage, model=self.model)


# --- request conversion --------------------------------------------------------------


def _contents(items: Sequence[Item]) -> tuple[list[str], list[types.Content]]:
    """Split items into system texts and Gemini contents, merging same-role neighbours."""
    system: list[str] = []
    contents: list[types.Content] = []
    names: dict[str, str] = {}  # call_id -> function name, for the function responses
    signature: bytes | None = None  # a thought signature waiting for the next model part

    def add(role: str, part: types.Part) -> None:
        nonlocal signature
        if role == "model" and signature is not None:
            part.thought_signature, signature = signature, None
        if contents and contents[-1].role == role:
            contents[-1].parts = [*(contents[-1].parts or []), part]
        else:
            contents.append(types.Content(role=role, parts=[part]))

    for item in items:
        if isinstance(item, Message) and item.role in ("system", "developer"):
            system.append(item.text)
        elif isinstance(item, Message):
            for content in item.content:
                add("model" if item.role == "assistant" else "user", _part(content))
        elif isinstance(item, FunctionCall):
            names[item.call_id] = item.name
            args = parse_arguments(item.arguments)
            call = types.FunctionCall(id=_sent_id(item.call_id), name=item.name, args=args)
            add("model", types.Part(function_call=call))
        elif isinstance(item, FunctionCallOutput):
            if item.call_id not in names:
                raise ValueError(f"function_call_output {item.call_id!r} has no function_call")
            answer = types.FunctionResponse(
                id=_sent_id(item.call_id),
                name=names[item.call_id],
                response={"result": item.output},
            )
            add("user", types.Part(function_response=answer))
        elif isinstance(item, Reasoning):
            signature = _signature_of(item) or signature
    return system, contents


def _text(text: str) -> types.Part:
    return types.Part(text=text)


def _part(content: ContentPart) -> types.Part:
    if isinstance(content, Refusal):
        return _text(content.refusal)
    if isinstance(content, InputText | OutputText):
        return _text(content.text)
    if isinstance(content, InputImage):
        url = content.image_url
    elif content.file_data and not content.file_data.startswith("data:"):  # bare base64
        mime = mimetypes.guess_type(content.filename or "")[0] or "application/octet-stream"
        url = f"data:{mime};base64,{content.file_data}"
    else:
        url = content.file_data or content.file_url
    if not url:
        raise ValueError(f"{content.type} needs a URL or data: Gemini cannot use file ids")
    if url.startswith("data:"):  # data:image/png;base64,....
        header, _, data = url.partition(",")
        mime = header.removeprefix("data:").removesuffix(";base64")
        return types.Part.from_bytes(data=base64.b64decode(data), mime_type=mime)
    mime = mimetypes.guess_type(url)[0]
    return types.Part(file_data=types.FileData(file_uri=url, mime_type=mime))


def _sent_id(call_id: str) -> str | None:
    return None if call_id.startswith(_FOREIGN_CALL_ID) else call_id


def _signature_of(item: Reasoning) -> bytes | None:
    encrypted = item.encrypted_content or ""
    if not encrypted.startswith(_SIGNATURE):
        return None
    try:
        return base64.b64decode(encrypted.removeprefix(_SIGNATURE), validate=True)
    except binascii.Error:
        return None


def _declarations(specs: Sequence[ToolSpec]) -> list[types.FunctionDeclaration]:
    return [
        types.FunctionDeclaration(
            name=spec.name,
            description=spec.description or None,
            parameters_json_schema=spec.parameters,
        )
        for spec in specs
    ]


def _tool_config(choice: str) -> types.ToolConfig:
    if choice in _TOOL_MODES:
        calling = types.FunctionCallingConfig(mode=_TOOL_MODES[choice])
    else:
        calling = types.FunctionCallingConfig(mode="ANY", allowed_function_names=[choice])
    return types.ToolConfig(function_calling_config=calling)


# --- response conversion -------------------------------------------------------------


class _Assembler:
    """Turns Gemini response chunks, as they arrive, into items and stream events."""

    def __init__(self, model: str) -> None:
        self.items: list[Item] = []
        self.usage = Usage(requests=1)
        self.model = model
        self._events: list[ModelStreamEvent] = []
        self._answered = False  # a candidate or a prompt block came: the body made sense
        self._finish: str | None = None
        self._message_id = new_id("msg")
        self._text: list[str] = []
        self._text_at: int | None = None  # where the message goes among the items
        self._thoughts: list[str] = []

    def feed(self, chunk: types.GenerateContentResponse) -> list[ModelStreamEvent]:
        """Take one chunk (or the whole response); return the events it makes."""
        candidate = chunk.candidates[0] if chunk.candidates else None
        for part in (candidate and candidate.content and candidate.content.parts) or []:
            self._part(part)
        if candidate and candidate.finish_reason:
            self._finish = candidate.finish_reason.value
        if chunk.prompt_feedback and chunk.prompt_feedback.block_reason:
            self._finish = "SAFETY"  # the prompt itself was blocked
        if (candidate and (candidate.content or candidate.finish_reason)) or self._finish:
            self._answered = True
        if chunk.usage_metadata:
            self.usage = _usage(chunk.usage_metadata)
        self.model = chunk.model_version or self.model
        return self._flush()

    def finish(self) -> list[ModelStreamEvent]:
        """Close the reasoning and the message; return their ``ItemDone`` events."""
        self._close_thoughts()
        if self._text_at is not None:
            text = OutputText(text="".join(self._text))
            message = Message(
                id=self._message_id, role="assistant", content=[text], status="completed"
            )
            self.items.insert(self._text_at, message)
            self._events.append(ItemDone(item=message))
        return self._flush()

    def response(self) -> ModelResponse:
        if not self._answered:
            raise genai_errors.UnknownApiResponseError("the response has no candidates")
        return ModelResponse(
            output=self.items, usage=self.usage, model=self.model, finish_reason=self._reason()
        )

    def _part(self, part: types.Part) -> None:
        if part.thought:
            self._thoughts.append(part.text or "")
            return
        self._close_thoughts()
        if part.function_call:
            if part.thought_signature:  # Gemini 3 rejects a replayed call without it
                self._add(_reasoning("", part.thought_signature))
            self._call(part.function_call)
        elif part.text:
            self._text_at = len(self.items) if self._text_at is None else self._text_at
            self._text.append(part.text)
            self._events.append(TextDelta(item_id=self._message_id, delta=part.text))

    def _call(self, call: types.FunctionCall) -> None:
        item_id, arguments = new_id("fc"), json.dumps(call.args or {})
        call_id, name = call.id or new_id("call"), call.name or ""
        self._events.append(
            ToolCallDelta(item_id=item_id, call_id=call_id, name=name, delta=arguments)
        )
        self._add(
            FunctionCall(
                id=item_id, call_id=call_id, name=name, arguments=arguments, status="completed"
            )
        )

    def _close_thoughts(self) -> None:
        if self._thoughts:
            self._add(_reasoning("".join(self._thoughts), None))
            self._thoughts = []

    def _add(self, item: Item) -> None:
        self.items.append(item)
        self._events.append(ItemDone(item=item))

    def _flush(self) -> list[ModelStreamEvent]:
        events, self._events = self._events, []
        return events

    def _reason(self) -> FinishReason:
        if self._finish in _FILTERED:
            return "content_filter"
        if self._finish == "MAX_TOKENS":
            return "length"
        if any(isinstance(item, FunctionCall) for item in self.items):
            return "tool_calls"
        return "stop"


def _reasoning(text: str, signature: bytes | None) -> Reasoning:
    encrypted = _SIGNATURE + base64.b64encode(signature).decode() if signature else None
    summary = [SummaryText(text=text)] if text else []
    return Reasoning(
        id=new_id("rs"), summary=summary, encrypted_content=encrypted, status="completed"
    )


def _usage(meta: types.GenerateContentResponseUsageMetadata) -> Usage:
    return Usage(
        input_tokens=meta.prompt_token_count or 0,
        cached_tokens=meta.cached_content_token_count or 0,
        output_tokens=(meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
        requests=1,
    )


def _retry_after(exc: genai_errors.APIError) -> float | None:
    """Seconds to wait, from a ``retry-after`` header or a ``google.rpc.RetryInfo`` detail."""
    seconds = retry_after_seconds(getattr(exc.response, "headers", None))
    body = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else None
    details = body.get("details") if isinstance(body, dict) else None
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None  # e.g. "37s"
        if seconds is None and isinstance(delay, str):
            seconds = retry_after_seconds({"retry-after": delay.removesuffix("s")})
    return seconds
