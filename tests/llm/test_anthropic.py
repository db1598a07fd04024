"""The Anthropic adapter against the real SDK, with the HTTP layer stubbed by MockTransport.

The bodies are the documented wire examples of the Messages API (responses, server-sent
event streams and error bodies). The SDK (2.x) is built on ``httpx2``, so the stub is an
``httpx2.MockTransport``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from agentrig import errors
from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    InputImage,
    InputText,
    Message,
    Reasoning,
    user_message,
)
from agentrig.llm.providers.anthropic_messages import AnthropicClient
from agentrig.llm.providers.base import response_from_stream
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

MODEL = "claude-sonnet-5-5"
WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather in a given location",
    parameters={
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
)

Handler = Callable[[httpx2.Request], httpx2.Response]


class Recorder:
    """A MockTransport handler that answers with ``response`` and keeps the requests."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.response

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.requests[-1].content)


def client_for(handler: Handler, **kwargs: Any) -> AnthropicClient:
    http_client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return AnthropicClient(MODEL, api_key="sk-ant-test", http_client=http_client, **kwargs)


def message_body(
    content: list[dict[str, Any]], stop_reason: str | None = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": MODEL,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6, **usage},
    }


def json_response(body: dict[str, Any], status: int = 200, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers=headers)


def sse_response(*events: dict[str, Any]) -> httpx2.Response:
    text = "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)
    return httpx2.Response(
        200, content=text.encode(), headers={"content-type": "text/event-stream"}
    )


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"}


def message_start(input_tokens: int = 25, **usage: int) -> dict[str, Any]:
    message = message_body([], stop_reason=None)
    message["usage"] = {"input_tokens": input_tokens, "output_tokens": 1, **usage}
    return {"type": "message_start", "message": message}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def text_delta(index: int, text: str) -> dict[str, Any]:
    delta = {"type": "text_delta", "text": text}
    return {"type": "content_block_delta", "index": index, "delta": delta}


def json_delta(index: int, partial_json: str) -> dict[str, Any]:
    delta = {"type": "input_json_delta", "partial_json": partial_json}
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_end(stop_reason: str, output_tokens: int) -> list[dict[str, Any]]:
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    return [
        {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ]


PING = {"type": "ping"}


async def collect(client: AnthropicClient, request: ModelRequest) -> list[Any]:
    return [event async for event in client.stream(request)]


# --- complete -----------------------------------------------------------------------


async def test_plain_text_completion() -> None:
    body = message_body(
        [{"type": "text", "text": "Hello! How can I help?"}],
        cache_read_input_tokens=100,
        cache_creation_input_tokens=20,
    )
    client = client_for(Recorder(json_response(body)))

    response = await client.complete(ModelRequest(items=[user_message("Hello, Claude")]))

    assert isinstance(client, LLMClient)
    [message] = response.output
    assert isinstance(message, Message)
    assert message.role == "assistant"
    assert message.status == "completed"
    assert message.id is not None and message.id.startswith("msg_")
    assert message.content[0].type == "output_text"
    assert response.text == "Hello! How can I help?"
    assert response.finish_reason == "stop"
    assert response.model == MODEL
    assert response.usage.input_tokens == 12 + 100 + 20
    assert response.usage.cached_tokens == 100
    assert response.usage.output_tokens == 6
    assert response.usage.requests == 1


async def test_request_json_sent_to_the_messages_api() -> None:
    recorder = Recorder(json_response(message_body([{"type": "text", "text": "ok"}])))
    client = client_for(recorder)
    request = ModelRequest(
        instructions="You are terse.",
        items=[
            Message(role="developer", content="Answer in English."),
            user_message("Weather in Paris?"),
            user_message("And be quick."),
            Message(role="assistant", content="Let me check."),
            FunctionCall(call_id="toolu_01", name="get_weather", arguments='{"location": "Paris"}'),
            FunctionCall(call_id="toolu_02", name="get_weather", arguments=""),
            FunctionCallOutput(call_id="toolu_01", output="18C, sunny"),
            FunctionCallOutput(call_id="toolu_02", output="error: no location"),
            Reasoning(summary=[], encrypted_content="opaque"),
            user_message("Thanks."),
        ],
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        settings=ModelSettings(stop=["END"], extra={"metadata": {"user_id": "u-1"}}),
    )

    await client.complete(request)

    [sent] = recorder.requests
    assert sent.url.path == "/v1/messages"
    assert recorder.body == {
        "model": MODEL,
        "max_tokens": 4096,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Paris?"},
                    {"type": "text", "text": "And be quick."},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    },
                    {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C, sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_02",
                        "content": "error: no location",
                    },
                    {"type": "text", "text": "Thanks."},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "input_schema": WEATHER.parameters,
            }
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    }


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
async def test_tool_choice_mapping(tool_choice: str, expected: dict[str, Any]) -> None:
    recorder = Recorder(json_response(message_body([{"type": "text", "text": "ok"}])))
    request = ModelRequest(items=[user_message("hi")], tools=[WEATHER], tool_choice=tool_choice)

    await client_for(recorder).complete(request)

    assert recorder.body["tool_choice"] == expected


async def test_settings_and_default_max_tokens_option() -> None:
    recorder = Recorder(json_response(message_body([{"type": "text", "text": "ok"}])))
    client = client_for(recorder, options={"default_max_tokens": 1024})

    await client.complete(ModelRequest(items=[user_message("hi")]))
    assert recorder.body["max_tokens"] == 1024
    assert "tools" not in recorder.body and "tool_choice" not in recorder.body
    assert "temperature" not in recorder.body and "system" not in recorder.body

    settings = ModelSettings(temperature=0.2, top_p=0.9, max_output_tokens=50)
    await client.complete(ModelRequest(items=[user_message("hi")], settings=settings))
    assert recorder.body["max_tokens"] == 50
    assert recorder.body["temperature"] == 0.2
    assert recorder.body["top_p"] == 0.9


@pytest.mark.parametrize(
    "options", [{"default_max_tokens": 0}, {"default_max_tokens": "many"}, {"max_tokens": 10}]
)
def test_bad_options_raise_config_error(options: dict[str, Any]) -> None:
    with pytest.raises(errors.ConfigError, match="options"):
        client_for(Recorder(json_response({})), options=options)


async def test_images_become_image_blocks() -> None:
    recorder = Recorder(json_response(message_body([{"type": "text", "text": "a cat"}])))
    content = [
        InputText(text="What is this?"),
        InputImage(image_url="data:image/png;base64,iVBORw0KGgo="),
        InputImage(image_url="https://example.com/cat.jpg"),
    ]

    await client_for(recorder).complete(ModelRequest(items=[Message(role="user", content=content)]))

    assert recorder.body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


async def test_unsupported_image_is_a_bad_request_before_any_call() -> None:
    recorder = Recorder(json_response(message_body([])))
    image = InputImage(image_url="data:image/tiff;base64,AAAA")
    request = ModelRequest(items=[Message(role="user", content=[image])])

    with pytest.raises(errors.BadRequest, match="image/tiff"):
        await client_for(recorder).complete(request)
    assert recorder.requests == []


async def test_tool_use_response() -> None:
    body = message_body(
        [
            {"type": "text", "text": "I'll check the weather in San Francisco."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather",
                "input": {"location": "San Francisco, CA"},
            },
        ],
        stop_reason="tool_use",
    )
    client = client_for(Recorder(json_response(body)))

    response = await client.complete(
        ModelRequest(items=[user_message("Weather in SF?")], tools=[WEATHER])
    )

    message, call = response.output
    assert isinstance(message, Message)
    assert message.text == "I'll check the weather in San Francisco."
    assert isinstance(call, FunctionCall)
    assert call.call_id == "toolu_01A09q90qw90lq917835lq9"
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": "San Francisco, CA"}
    assert call.status == "completed"
    assert call.id is not None and call.id.startswith("fc_")
    assert response.tool_calls == [call]
    assert response.finish_reason == "tool_calls"


async def test_thinking_block_becomes_reasoning_and_max_tokens_is_length() -> None:
    body = message_body(
        [
            {"type": "thinking", "thinking": "The user greets me.", "signature": "sig=="},
            {"type": "text", "text": "Hi"},
        ],
        stop_reason="max_tokens",
    )
    response = await client_for(Recorder(json_response(body))).complete(
        ModelRequest(items=[user_message("hello")])
    )

    reasoning, _message = response.output
    assert isinstance(reasoning, Reasoning)
    assert reasoning.content is not None
    assert reasoning.content[0].text == "The user greets me."
    assert response.text == "Hi"
    assert response.finish_reason == "length"


async def test_structured_output_is_a_forced_tool_returned_as_json_text() -> None:
    schema = OutputSchema(
        name="city_weather",
        json_schema={
            "type": "object",
            "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
            "required": ["city", "celsius"],
        },
    )
    answer = {"city": "Paris", "celsius": 18}
    body = message_body(
        [{"type": "tool_use", "id": "toolu_9", "name": "city_weather", "input": answer}],
        stop_reason="tool_use",
    )
    recorder = Recorder(json_response(body))

    response = await client_for(recorder).complete(
        ModelRequest(items=[user_message("Weather in Paris?")], output_schema=schema)
    )

    sent = recorder.body
    assert sent["tools"][-1]["name"] == "city_weather"
    assert sent["tools"][-1]["input_schema"] == schema.json_schema
    assert sent["tool_choice"] == {"type": "tool", "name": "city_weather"}
    assert "city_weather" in sent["system"]
    [message] = response.output
    assert isinstance(message, Message) and message.role == "assistant"
    assert json.loads(response.text) == answer
    assert response.tool_calls == []
    assert response.finish_reason == "stop"


async def test_structured_output_with_tools_lets_the_model_call_them() -> None:
    schema = OutputSchema(json_schema={"type": "object", "properties": {}})
    recorder = Recorder(json_response(message_body([{"type": "text", "text": "x"}])))
    request = ModelRequest(items=[user_message("hi")], tools=[WEATHER], output_schema=schema)

    await client_for(recorder).complete(request)

    assert [tool["name"] for tool in recorder.body["tools"]] == ["get_weather", "output"]
    assert recorder.body["tool_choice"] == {"type": "any"}


# --- stream -------------------------------------------------------------------------


async def test_stream_text() -> None:
    response = sse_response(
        message_start(input_tokens=25, cache_read_input_tokens=5),
        block_start(0, {"type": "text", "text": ""}),
        PING,
        text_delta(0, "Hello"),
        text_delta(0, ", wor"),
        text_delta(0, "ld!"),
        block_stop(0),
        *message_end("end_turn", 15),
    )
    recorder = Recorder(response)

    events = await collect(client_for(recorder), ModelRequest(items=[user_message("Hi")]))

    assert recorder.body["stream"] is True
    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert [delta.delta for delta in deltas] == ["Hello", ", wor", "ld!"]
    assert isinstance(events[-1], Completed)
    assert sum(isinstance(event, Completed) for event in events) == 1
    final = events[-1].response
    [message] = final.output
    assert "".join(delta.delta for delta in deltas) == final.text == "Hello, world!"
    assert {delta.item_id for delta in deltas} == {message.id}
    [done] = [event for event in events if isinstance(event, ItemDone)]
    assert done.item == message
    assert final.usage.input_tokens == 30
    assert final.usage.cached_tokens == 5
    assert final.usage.output_tokens == 15
    assert final.finish_reason == "stop"
    assert final.model == MODEL


async def test_stream_tool_use() -> None:
    call_id = "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    pieces = ["", '{"location":', ' "San Fra', "ncisc", 'o, CA"', ', "unit": "fah', 'renheit"}']
    response = sse_response(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "Okay, let's check the weather for San Francisco, CA:"),
        block_stop(0),
        block_start(1, {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {}}),
        *[json_delta(1, piece) for piece in pieces],
        block_stop(1),
        *message_end("tool_use", 89),
    )

    events = await collect(
        client_for(Recorder(response)),
        ModelRequest(items=[user_message("Weather in SF?")], tools=[WEATHER]),
    )

    call_deltas = [event for event in events if isinstance(event, ToolCallDelta)]
    arguments = "".join(delta.delta for delta in call_deltas)
    assert json.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert {(d.call_id, d.name) for d in call_deltas} == {(call_id, "get_weather")}
    done = [event.item for event in events if isinstance(event, ItemDone)]
    assert [item.type for item in done] == ["message", "function_call"]
    call = done[1]
    assert isinstance(call, FunctionCall)
    assert call.arguments == arguments
    assert call.id == call_deltas[0].item_id
    # the text message is done before the tool call's first argument piece
    assert events.index(ItemDone(item=done[0])) < events.index(call_deltas[0])
    final = events[-1]
    assert isinstance(final, Completed)
    assert final.response.output == done
    assert final.response.finish_reason == "tool_calls"
    assert final.response.usage.output_tokens == 89


async def test_stream_structured_output_arrives_as_text() -> None:
    schema = OutputSchema(name="answer", json_schema={"type": "object", "properties": {}})
    response = sse_response(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_5", "name": "answer", "input": {}}),
        json_delta(0, '{"ok": '),
        json_delta(0, "true}"),
        block_stop(0),
        *message_end("tool_use", 7),
    )

    events = await collect(
        client_for(Recorder(response)),
        ModelRequest(items=[user_message("ok?")], output_schema=schema),
    )

    assert [e.delta for e in events if isinstance(e, TextDelta)] == ['{"ok": ', "true}"]
    assert not any(isinstance(e, ToolCallDelta) for e in events)
    final = events[-1].response
    assert json.loads(final.text) == {"ok": True}
    assert final.finish_reason == "stop"


async def test_stream_thinking_then_text() -> None:
    thinking = {"type": "thinking", "thinking": "", "signature": ""}
    response = sse_response(
        message_start(input_tokens=40),
        block_start(0, thinking),
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Two plus two "},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "is four."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM=="},
        },
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        text_delta(1, "4"),
        block_stop(1),
        *message_end("end_turn", 20),
    )
    client = client_for(Recorder(response))

    result = await response_from_stream(client.stream(ModelRequest(items=[user_message("2+2")])))

    reasoning, message = result.output
    assert isinstance(reasoning, Reasoning)
    assert reasoning.content is not None
    assert reasoning.content[0].text == "Two plus two is four."
    assert isinstance(message, Message)
    assert result.text == "4"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (40, 20)


async def test_stream_error_event_is_provider_unavailable() -> None:
    response = sse_response(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "Hel"),
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )

    with pytest.raises(errors.ProviderUnavailable, match="Overloaded") as caught:
        await collect(client_for(Recorder(response)), ModelRequest(items=[user_message("x")]))
    assert (caught.value.provider, caught.value.model) == ("anthropic", MODEL)


async def test_stream_cut_short_is_provider_unavailable() -> None:
    response = sse_response(message_start(), block_start(0, {"type": "text", "text": ""}))

    with pytest.raises(errors.ProviderUnavailable, match="message_stop"):
        await collect(client_for(Recorder(response)), ModelRequest(items=[user_message("x")]))


# --- errors -------------------------------------------------------------------------


def _raise(exc_type: type[Exception], message: str) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise exc_type(message, request=request)

    return handler


def _reply(*args: Any, **kwargs: Any) -> Handler:
    """A handler answering every request with a fresh ``httpx2.Response(*args, **kwargs)``."""
    return lambda request: httpx2.Response(*args, **kwargs)


def _error_reply(status: int, kind: str, message: str, **headers: str) -> Handler:
    return _reply(status, json=error_body(kind, message), headers=headers)


ERROR_CASES = [
    pytest.param(
        _error_reply(429, "rate_limit_error", "Number of request tokens has exceeded your limit"),
        errors.RateLimited,
        "rate_limit_error",
        id="429",
    ),
    pytest.param(
        _error_reply(401, "authentication_error", "invalid x-api-key"),
        errors.AuthenticationFailed,
        "invalid x-api-key",
        id="401",
    ),
    pytest.param(
        _error_reply(400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000"),
        errors.ContextTooLong,
        "prompt is too long",
        id="400-context",
    ),
    pytest.param(
        _error_reply(400, "invalid_request_error", "max_tokens: Field required"),
        errors.BadRequest,
        "max_tokens",
        id="400",
    ),
    pytest.param(
        _error_reply(500, "api_error", "Internal server error"),
        errors.ProviderUnavailable,
        "HTTP 500",
        id="500",
    ),
    pytest.param(
        _error_reply(529, "overloaded_error", "Overloaded"),
        errors.ProviderUnavailable,
        "HTTP 529",
        id="529",
    ),
    pytest.param(
        _raise(httpx2.ReadTimeout, "read timed out"), errors.Timeout, "timed out", id="timeout"
    ),
    pytest.param(
        _raise(httpx2.ConnectError, "connection refused"),
        errors.ProviderUnavailable,
        "connection refused",
        id="connect",
    ),
    pytest.param(
        _reply(200, content=b'{"id": "msg_1", "con', headers={"content-type": "application/json"}),
        errors.ProviderUnavailable,
        "unreadable",
        id="malformed-json",
    ),
    pytest.param(
        _reply(200, content=b"<html>bad gateway</html>"),
        errors.ProviderUnavailable,
        "unreadable",
        id="not-a-message",
    ),
]


@pytest.mark.parametrize(("reply", "error_type", "detail"), ERROR_CASES)
async def test_complete_error_mapping(reply: Handler, error_type: type, detail: str) -> None:
    client = client_for(reply, provider="claude-prod")

    with pytest.raises(error_type, match=detail) as caught:
        await client.complete(ModelRequest(items=[user_message("hi")]))

    error = caught.value
    assert type(error) is error_type
    assert (error.provider, error.model) == ("claude-prod", MODEL)
    assert str(error).startswith(f"claude-prod/{MODEL}: ")


@pytest.mark.parametrize(("reply", "error_type", "detail"), ERROR_CASES)
async def test_stream_error_mapping(reply: Handler, error_type: type, detail: str) -> None:
    client = client_for(reply)

    with pytest.raises(error_type, match=detail) as caught:
        await collect(client, ModelRequest(items=[user_message("hi")]))
    assert str(caught.value).startswith(f"anthropic/{MODEL}: ")


async def test_rate_limit_carries_retry_after() -> None:
    reply = _error_reply(429, "rate_limit_error", "slow down", **{"retry-after": "17"})

    with pytest.raises(errors.RateLimited) as caught:
        await client_for(reply).complete(ModelRequest(items=[user_message("hi")]))
    assert caught.value.retry_after == 17.0
    assert caught.value.retryable


async def test_sdk_does_not_retry() -> None:
    recorder = Recorder(json_response(error_body("overloaded_error", "Overloaded"), 529))

    with pytest.raises(errors.ProviderUnavailable):
        await client_for(recorder).complete(ModelRequest(items=[user_message("hi")]))
    assert len(recorder.requests) == 1
