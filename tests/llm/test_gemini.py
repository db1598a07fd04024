"""The Gemini adapter against the real google-genai SDK, with only HTTP faked.

The fake answers with Gemini REST wire examples (``generateContent`` JSON,
``streamGenerateContent?alt=sse`` event streams, ``batchEmbedContents`` JSON) and keeps
every request, so the tests check both directions of the conversion on the wire.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from agentrig.errors import (
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    ContextTooLong,
    LLMError,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    InputText,
    Message,
    Reasoning,
    assistant_message,
    user_message,
)
from agentrig.llm.providers.gemini import GeminiClient, GeminiEmbedder
from agentrig.llm.types import (
    Completed,
    ItemDone,
    LLMClient,
    ModelRequest,
    ModelSettings,
    OutputSchema,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)

MODEL = "gemini-2.0-flash"
PROVIDER = "google-ai"
BASE_URL = "https://gemini.test"

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER_TOOL = ToolSpec(
    name="get_weather", description="Current weather in a city", parameters=WEATHER_SCHEMA
)


class FakeGemini:
    """An httpx handler that records requests and answers what the test set up."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answer: Callable[[httpx.Request], httpx.Response] = lambda _: httpx.Response(500)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)

    def reply(self, body: Any, status: int = 200) -> None:
        self._answer = lambda _: httpx.Response(status, json=body)

    def reply_raw(self, content: bytes, status: int = 200) -> None:
        self._answer = lambda _: httpx.Response(status, content=content)

    def reply_sse(self, *chunks: dict[str, Any]) -> None:
        stream = "".join(f"data: {json.dumps(chunk)}\r\n\r\n" for chunk in chunks).encode()
        headers = {"content-type": "text/event-stream"}
        self._answer = lambda _: httpx.Response(200, content=stream, headers=headers)

    def fail(self, exc: Exception) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            raise exc

        self._answer = answer

    @property
    def sent(self) -> dict[str, Any]:
        """The JSON body of the last request."""
        return json.loads(self.requests[-1].content)


@pytest.fixture
def api() -> FakeGemini:
    return FakeGemini()


@pytest.fixture
async def http(api: FakeGemini) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as client:
        yield client


@pytest.fixture
def client(http: httpx.AsyncClient) -> GeminiClient:
    return GeminiClient(
        MODEL, provider=PROVIDER, api_key="test-key", base_url=BASE_URL, http_client=http
    )


def reply(*parts: dict[str, Any], finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    """A ``GenerateContentResponse`` in wire form."""
    return {
        "candidates": [
            {
                "content": {"parts": list(parts), "role": "model"},
                "finishReason": finish,
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
        "modelVersion": "gemini-2.0-flash-001",
        "responseId": "mIvAaO3bA4u8xN8P3pOfqQg",
        **extra,
    }


def camel_keys(value: Any) -> Any:
    """``value`` with lowerCamel keys: proto JSON accepts both spellings and the SDK
    passes some nested objects through in snake_case."""
    if isinstance(value, dict):
        return {_camel(key): camel_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camel_keys(item) for item in value]
    return value


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


def ask(text: str = "Hello", **fields: Any) -> ModelRequest:
    return ModelRequest(items=[user_message(text)], **fields)


async def collect(client: GeminiClient, request: ModelRequest) -> list[Any]:
    return [event async for event in client.stream(request)]


# --- complete ------------------------------------------------------------------------


async def test_plain_text_reply(client: GeminiClient, api: FakeGemini) -> None:
    api.reply(
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "Hi! How can I help?"}], "role": "model"},
                    "finishReason": "STOP",
                    "avgLogprobs": -0.12,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 12,
                "candidatesTokenCount": 7,
                "thoughtsTokenCount": 4,
                "cachedContentTokenCount": 3,
                "totalTokenCount": 23,
            },
            "modelVersion": "gemini-2.0-flash-001",
        }
    )

    response = await client.complete(ask())

    [message] = response.output
    assert isinstance(message, Message)
    assert message.role == "assistant"
    assert message.text == "Hi! How can I help?"
    assert message.status == "completed"
    assert message.id is not None and message.id.startswith("msg_")
    assert response.finish_reason == "stop"
    assert response.model == "gemini-2.0-flash-001"
    assert response.usage.input_tokens == 12
    assert response.usage.cached_tokens == 3
    assert response.usage.output_tokens == 11  # candidates + thoughts
    assert response.usage.requests == 1

    [request] = api.requests
    assert str(request.url) == f"{BASE_URL}/v1beta/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == "test-key"
    assert api.sent == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "generationConfig": {},
    }


def test_is_an_llm_client(client: GeminiClient) -> None:
    assert isinstance(client, LLMClient)


async def test_model_name_when_no_version_is_reported(
    client: GeminiClient, api: FakeGemini
) -> None:
    body = reply({"text": "ok"})
    del body["modelVersion"]
    api.reply(body)

    response = await client.complete(ask())

    assert response.model == MODEL


async def test_request_wire_form(client: GeminiClient, api: FakeGemini) -> None:
    api.reply(reply({"text": "You're welcome."}))
    items = [
        Message(role="developer", content="Answer in one line."),
        user_message("Weather in Paris and Rome?"),
        assistant_message("Let me check."),
        FunctionCall(call_id="gem-7", name="get_weather", arguments='{"city": "Paris"}'),
        FunctionCall(call_id="call_x1", name="get_weather", arguments='{"city": "Rome"}'),
        FunctionCallOutput(call_id="gem-7", output="18C, sunny"),
        FunctionCallOutput(call_id="call_x1", output="22C, cloudy"),
        user_message("Thanks!"),
    ]
    settings = ModelSettings(
        temperature=0.2, top_p=0.9, max_output_tokens=256, stop=["END"], extra={"top_k": 5}
    )
    request = ModelRequest(
        items=items, instructions="You are a weather bot.", tools=[WEATHER_TOOL], settings=settings
    )

    await client.complete(request)

    sent = api.sent
    assert sent["systemInstruction"] == {
        "parts": [{"text": "You are a weather bot.\n\nAnswer in one line."}]
    }
    assert sent["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Let me check."},
                # Gemini's own call id goes back; one that Gemini did not make is left out
                {"functionCall": {"id": "gem-7", "name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "gem-7",
                        "name": "get_weather",
                        "response": {"result": "18C, sunny"},
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"result": "22C, cloudy"},
                    }
                },
                {"text": "Thanks!"},
            ],
        },
    ]
    assert sent["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 256,
        "stopSequences": ["END"],
        "topK": 5,
    }
    [tool] = sent["tools"]
    [declaration] = tool["functionDeclarations"]
    assert camel_keys(declaration) == {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parametersJsonSchema": WEATHER_SCHEMA,  # the schema's own keys have no underscores
    }
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
async def test_tool_choice_modes(
    client: GeminiClient, api: FakeGemini, choice: str, expected: dict[str, Any]
) -> None:
    api.reply(reply({"text": "ok"}))

    await client.complete(ask(tools=[WEATHER_TOOL], tool_choice=choice))

    assert api.sent["toolConfig"] == {"functionCallingConfig": expected}


async def test_no_tools_no_tool_config(client: GeminiClient, api: FakeGemini) -> None:
    api.reply(reply({"text": "ok"}))

    await client.complete(ask(tool_choice="required"))

    assert "tools" not in api.sent
    assert "toolConfig" not in api.sent


async def test_function_call_reply(client: GeminiClient, api: FakeGemini) -> None:
    api.reply(
        reply(
            {"text": "Checking both cities."},
            {
                "functionCall": {"id": "gem-1", "name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": base64.b64encode(b"opaque-signature").decode(),
            },
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
        )
    )

    response = await client.complete(ask("Weather in Paris and Rome?", tools=[WEATHER_TOOL]))

    message, signature, paris, rome = response.output
    assert isinstance(message, Message) and message.text == "Checking both cities."
    assert isinstance(signature, Reasoning) and signature.encrypted_content
    assert isinstance(paris, FunctionCall) and isinstance(rome, FunctionCall)
    assert (paris.call_id, paris.name, json.loads(paris.arguments)) == (
        "gem-1",
        "get_weather",
        {"city": "Paris"},
    )
    assert rome.call_id.startswith("call_")
    assert json.loads(rome.arguments) == {"city": "Rome"}
    assert paris.status == rome.status == "completed"
    assert paris.id and paris.id.startswith("fc_") and paris.id != rome.id
    assert response.tool_calls == [paris, rome]
    assert response.finish_reason == "tool_calls"


async def test_thought_signature_goes_back_with_its_call(
    client: GeminiClient, api: FakeGemini
) -> None:
    signature = base64.b64encode(b"opaque-signature").decode()
    api.reply(
        reply(
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                "thoughtSignature": signature,
            }
        )
    )
    first = await client.complete(ask("Weather in Oslo?", tools=[WEATHER_TOOL]))
    [call] = first.tool_calls
    api.reply(reply({"text": "It is 3C in Oslo."}))

    items = [
        user_message("Weather in Oslo?"),
        *first.output,
        FunctionCallOutput(call_id=call.call_id, output="3C"),
    ]
    await client.complete(ModelRequest(items=items, tools=[WEATHER_TOOL]))

    model_turn = api.sent["contents"][1]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                "thoughtSignature": signature,
            }
        ],
    }


async def test_foreign_encrypted_reasoning_is_not_sent(
    client: GeminiClient, api: FakeGemini
) -> None:
    api.reply(reply({"text": "ok"}))
    items = [
        user_message("Hi"),
        Reasoning(encrypted_content="gAAAAABo-openai-blob"),
        assistant_message("Hello"),
        user_message("Again"),
    ]

    await client.complete(ModelRequest(items=items))

    assert api.sent["contents"][1] == {"role": "model", "parts": [{"text": "Hello"}]}


async def test_thoughts_become_reasoning(client: GeminiClient, api: FakeGemini) -> None:
    api.reply(
        reply(
            {"text": "The user greets me; greet back.", "thought": True},
            {"text": "Hello!"},
            usageMetadata={
                "promptTokenCount": 4,
                "candidatesTokenCount": 2,
                "thoughtsTokenCount": 30,
            },
        )
    )

    response = await client.complete(ask())

    reasoning, message = response.output
    assert isinstance(reasoning, Reasoning)
    assert [part.text for part in reasoning.summary] == ["The user greets me; greet back."]
    assert reasoning.encrypted_content is None
    assert isinstance(message, Message) and message.text == "Hello!"
    assert response.usage.output_tokens == 32


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
    ],
)
async def test_finish_reasons(
    client: GeminiClient, api: FakeGemini, finish: str, expected: str
) -> None:
    api.reply(reply({"text": "partial"}, finish=finish))

    response = await client.complete(ask())

    assert response.finish_reason == expected


async def test_blocked_prompt(client: GeminiClient, api: FakeGemini) -> None:
    api.reply(
        {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "modelVersion": "gemini-2.0-flash-001",
        }
    )

    response = await client.complete(ask())

    assert response.output == []
    assert response.finish_reason == "content_filter"
    assert response.usage.input_tokens == 9


async def test_structured_output(client: GeminiClient, api: FakeGemini) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    api.reply(reply({"text": '{"answer": 42}'}))

    response = await client.complete(
        ask("6 x 7?", output_schema=OutputSchema(name="result", json_schema=schema))
    )

    assert api.sent["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    assert json.loads(response.text) == {"answer": 42}


async def test_options_set_api_version_and_default_config(
    api: FakeGemini, http: httpx.AsyncClient
) -> None:
    client = GeminiClient(
        MODEL,
        api_key="test-key",
        base_url=BASE_URL,
        http_client=http,
        options={"api_version": "v1alpha", "thinking_config": {"thinking_budget": 0}},
    )
    api.reply(reply({"text": "ok"}))

    await client.complete(ask(settings=ModelSettings(temperature=0.5)))

    assert api.requests[-1].url.path == f"/v1alpha/models/{MODEL}:generateContent"
    assert camel_keys(api.sent["generationConfig"]) == {
        "temperature": 0.5,
        "thinkingConfig": {"thinkingBudget": 0},
    }


PNG = base64.b64encode(b"\x89PNG fake").decode()
PDF = base64.b64encode(b"%PDF-1.7 fake").decode()


@pytest.mark.parametrize(
    ("attachment", "expected"),
    [
        (
            InputImage(image_url=f"data:image/png;base64,{PNG}"),
            {"inlineData": {"mimeType": "image/png", "data": PNG}},
        ),
        (
            InputFile(file_data=PDF, filename="report.pdf"),
            {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
        ),
        (
            InputImage(image_url="https://example.com/cat.jpg"),
            {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
        ),
    ],
    ids=["data-url", "bare-base64-file", "url"],
)
async def test_attachments(
    client: GeminiClient, api: FakeGemini, attachment: Any, expected: dict[str, Any]
) -> None:
    api.reply(reply({"text": "A red dot."}))
    content = [InputText(text="What is this?"), attachment]

    await client.complete(ModelRequest(items=[Message(role="user", content=content)]))

    assert camel_keys(api.sent["contents"][0]["parts"]) == [{"text": "What is this?"}, expected]


def test_bad_option_is_a_config_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(ConfigError, match="no_such_field"):
        GeminiClient(MODEL, api_key="k", http_client=http, options={"no_such_field": 1})


def test_missing_api_key_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)

    with pytest.raises(ConfigError, match=f"provider '{PROVIDER}'.*API key"):
        GeminiClient(MODEL, provider=PROVIDER, http_client=http)


async def test_aclose_leaves_an_injected_client_open(
    client: GeminiClient, http: httpx.AsyncClient
) -> None:
    await client.aclose()

    assert not http.is_closed


async def test_unconvertible_request_is_a_bad_request(
    client: GeminiClient, api: FakeGemini
) -> None:
    orphan = FunctionCallOutput(call_id="gem-404", output="?")

    with pytest.raises(BadRequest, match="gem-404") as caught:
        await client.complete(ModelRequest(items=[user_message("hi"), orphan]))

    assert (caught.value.provider, caught.value.model) == (PROVIDER, MODEL)
    assert api.requests == []


# --- stream --------------------------------------------------------------------------


async def test_stream_text(client: GeminiClient, api: FakeGemini) -> None:
    api.reply_sse(
        {
            "candidates": [{"content": {"parts": [{"text": "The sky"}], "role": "model"}}],
            "usageMetadata": {"promptTokenCount": 6, "totalTokenCount": 6},
            "modelVersion": "gemini-2.0-flash-001",
        },
        {
            "candidates": [{"content": {"parts": [{"text": " is blue"}], "role": "model"}}],
            "modelVersion": "gemini-2.0-flash-001",
        },
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": " by day."}], "role": "model"},
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 6,
                "candidatesTokenCount": 6,
                "totalTokenCount": 12,
            },
            "modelVersion": "gemini-2.0-flash-001",
        },
    )

    events = await collect(client, ask("Sky colour?"))

    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert [delta.delta for delta in deltas] == ["The sky", " is blue", " by day."]
    assert [type(event) for event in events[-2:]] == [ItemDone, Completed]
    assert sum(isinstance(event, Completed) for event in events) == 1
    done, completed = events[-2], events[-1]
    assert isinstance(done.item, Message) and done.item.text == "The sky is blue by day."
    response = completed.response
    assert response.text == "".join(delta.delta for delta in deltas)
    assert {delta.item_id for delta in deltas} == {response.output[0].id}
    assert response.usage.input_tokens == 6
    assert response.usage.output_tokens == 6
    assert response.finish_reason == "stop"
    assert response.model == "gemini-2.0-flash-001"
    url = api.requests[-1].url
    assert url.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert url.params["alt"] == "sse"


async def test_stream_function_call(client: GeminiClient, api: FakeGemini) -> None:
    api.reply_sse(
        {"candidates": [{"content": {"parts": [{"text": "Let me look."}], "role": "model"}}]},
        {
            "candidates": [
                {
                    "content": {
                        "parts": [
                            {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}}}
                        ],
                        "role": "model",
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 8},
        },
    )

    events = await collect(client, ask("Weather in Lima?", tools=[WEATHER_TOOL]))

    assert [type(event) for event in events] == [
        TextDelta,
        ToolCallDelta,
        ItemDone,  # the call
        ItemDone,  # the message, complete only at the end
        Completed,
    ]
    delta, call_done, message_done, completed = events[1:]
    assert delta.name == "get_weather"
    assert json.loads(delta.delta) == {"city": "Lima"}
    call = call_done.item
    assert isinstance(call, FunctionCall)
    assert (call.id, call.call_id, call.arguments) == (delta.item_id, delta.call_id, delta.delta)
    assert message_done.item.text == "Let me look."
    response = completed.response
    assert [item.type for item in response.output] == ["message", "function_call"]
    assert response.tool_calls == [call]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 8)


# --- embeddings ----------------------------------------------------------------------


async def test_embeddings(api: FakeGemini, http: httpx.AsyncClient) -> None:
    embedder = GeminiEmbedder(
        "text-embedding-004",
        provider=PROVIDER,
        api_key="test-key",
        base_url=BASE_URL,
        http_client=http,
        options={"output_dimensionality": 3},
    )
    api.reply({"embeddings": [{"values": [0.1, -0.2, 0.3]}, {"values": [0.4, 0.5, -0.6]}]})

    result = await embedder.embed_batch(["first text", "second text"])

    assert embedder.max_batch_size == 100
    assert result.vectors == [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]
    assert result.model == "text-embedding-004"
    assert result.usage.requests == 1
    assert result.usage.input_tokens == 0
    assert api.requests[-1].url.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert api.sent == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"role": "user", "parts": [{"text": text}]},
                "outputDimensionality": 3,
            }
            for text in ("first text", "second text")
        ]
    }


async def test_embeddings_count_mismatch(api: FakeGemini, http: httpx.AsyncClient) -> None:
    embedder = GeminiEmbedder("text-embedding-004", api_key="k", http_client=http)
    api.reply({"embeddings": [{"values": [0.1]}]})

    with pytest.raises(ProviderUnavailable, match="asked for 2 embeddings, got 1"):
        await embedder.embed_batch(["a", "b"])


async def test_embedding_errors_are_mapped(api: FakeGemini, http: httpx.AsyncClient) -> None:
    embedder = GeminiEmbedder(
        "text-embedding-004", provider=PROVIDER, api_key="k", http_client=http
    )
    api.reply({"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}, 429)

    with pytest.raises(RateLimited, match=f"{PROVIDER}/text-embedding-004"):
        await embedder.embed_batch(["a"])


# --- errors --------------------------------------------------------------------------


def google_error(code: int, status: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, **extra}}


RATE_LIMIT = google_error(
    429,
    "RESOURCE_EXHAUSTED",
    "You exceeded your current quota.",
    details=[{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
)

HTTP_ERRORS = [
    (429, RATE_LIMIT, RateLimited),
    (401, google_error(401, "UNAUTHENTICATED", "API key not valid."), AuthenticationFailed),
    (403, google_error(403, "PERMISSION_DENIED", "Permission denied."), AuthenticationFailed),
    (400, google_error(400, "INVALID_ARGUMENT", "Invalid value at 'contents'."), BadRequest),
    (
        400,
        google_error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed.",
        ),
        ContextTooLong,
    ),
    (500, google_error(500, "INTERNAL", "An internal error has occurred."), ProviderUnavailable),
    (503, google_error(503, "UNAVAILABLE", "The model is overloaded."), ProviderUnavailable),
]


async def call(client: GeminiClient, streaming: bool) -> None:
    if streaming:
        await collect(client, ask())
    else:
        await client.complete(ask())


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(("status", "body", "kind"), HTTP_ERRORS)
async def test_http_errors(
    client: GeminiClient,
    api: FakeGemini,
    streaming: bool,
    status: int,
    body: dict[str, Any],
    kind: type[LLMError],
) -> None:
    api.reply(body, status)

    with pytest.raises(kind) as caught:
        await call(client, streaming)

    error = caught.value
    assert type(error) is kind
    assert (error.provider, error.model) == (PROVIDER, MODEL)
    assert str(error).startswith(f"{PROVIDER}/{MODEL}: HTTP {status}")
    assert body["error"]["message"] in str(error)
    assert len(api.requests) == 1  # the SDK does not retry: the router does


async def test_rate_limit_carries_retry_delay(client: GeminiClient, api: FakeGemini) -> None:
    api.reply(RATE_LIMIT, 429)

    with pytest.raises(RateLimited) as caught:
        await client.complete(ask())

    assert caught.value.retry_after == 37.0
    assert caught.value.retryable


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (httpx.ReadTimeout("read timed out"), Timeout),
        (httpx.ConnectTimeout("connect timed out"), Timeout),
        (httpx.ConnectError("connection refused"), ProviderUnavailable),
        (httpx.RemoteProtocolError("peer closed connection"), ProviderUnavailable),
    ],
)
async def test_transport_errors(
    client: GeminiClient,
    api: FakeGemini,
    streaming: bool,
    failure: Exception,
    kind: type[LLMError],
) -> None:
    api.fail(failure)

    with pytest.raises(kind, match=f"^{PROVIDER}/{MODEL}: ") as caught:
        await call(client, streaming)

    assert type(caught.value) is kind
    assert caught.value.__cause__ is failure


@pytest.mark.parametrize(
    "body",
    [b"<html>502 Bad Gateway</html>", b'{"candidates": [', b"[]", b'{"unexpected": true}'],
    ids=["html", "truncated", "list", "no-candidates"],
)
async def test_malformed_body(client: GeminiClient, api: FakeGemini, body: bytes) -> None:
    api.reply_raw(body)

    with pytest.raises(ProviderUnavailable, match=f"^{PROVIDER}/{MODEL}: ") as caught:
        await client.complete(ask())

    assert "response" in caught.value.reason


async def test_malformed_stream(client: GeminiClient, api: FakeGemini) -> None:
    good = json.dumps({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})
    api.reply_raw(f"data: {good}\r\n\r\ndata: {{not json\r\n\r\n".encode())

    events: list[Any] = []
    with pytest.raises(ProviderUnavailable, match=f"^{PROVIDER}/{MODEL}: malformed"):
        async for event in client.stream(ask()):
            events.append(event)

    assert [type(event) for event in events] == [TextDelta]  # no Completed after a failure


async def test_error_inside_stream(client: GeminiClient, api: FakeGemini) -> None:
    api.reply_sse(
        {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]},
        google_error(503, "UNAVAILABLE", "The model is overloaded."),
    )

    with pytest.raises(ProviderUnavailable, match="HTTP 503: UNAVAILABLE: The model is overloaded"):
        await collect(client, ask())
