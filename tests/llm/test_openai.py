"""The openai adapter against a real HTTP server speaking Chat Completions."""

import json

import pytest

from agentrig.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextTooLong,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from agentrig.items import FunctionCall, FunctionCallOutput, Message, as_items
from agentrig.llm.providers.openai_chat import OpenAIChatClient, OpenAIEmbedder
from agentrig.llm.types import (
    Completed,
    ItemDone,
    ModelRequest,
    ModelSettings,
    OutputSchema,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)
from agentrig.testing.fake_openai_server import Fail, Hang, Malformed, Reply

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def client_for(server, **options):
    return OpenAIChatClient("gpt-test", provider="fake", base_url=server.base_url, options=options)


async def test_text_answer_with_usage(fake_server):
    fake_server.script(Reply(text="Paris.", prompt_tokens=12, completion_tokens=3, cached_tokens=4))
    response = await client_for(fake_server).complete(ModelRequest(items=as_items("Capital?")))
    assert response.text == "Paris."
    assert response.finish_reason == "stop"
    assert response.model == "gpt-test"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)
    assert response.usage.cached_tokens == 4
    [message] = response.output
    assert isinstance(message, Message) and message.role == "assistant"


async def test_request_is_converted_to_chat_messages(fake_server):
    history = [
        *as_items("weather in Paris?"),
        FunctionCall(call_id="call_a", name="get_weather", arguments='{"city": "Paris"}'),
        FunctionCallOutput(call_id="call_a", output="sunny"),
    ]
    request = ModelRequest(
        items=history,
        instructions="Be brief.",
        tools=[WEATHER],
        tool_choice="get_weather",
        parallel_tool_calls=False,
        settings=ModelSettings(temperature=0.2, top_p=0.9, max_output_tokens=50, stop=["\n"]),
    )
    await client_for(fake_server).complete(request)
    sent = fake_server.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
    ]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"] == WEATHER.parameters
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["stop"]) == (
        0.2,
        0.9,
        50,
        ["\n"],
    )


async def test_tool_calls_become_function_call_items(fake_server):
    fake_server.script(
        Reply(text=None, tool_calls=[("get_weather", {"city": "Oslo"}), ("get_weather", {})])
    )
    request = ModelRequest(items=as_items("weather?"), tools=[WEATHER])
    response = await client_for(fake_server).complete(request)
    assert response.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {}),
    ]
    assert response.tool_calls[0].call_id == "call_0"


async def test_structured_output_request(fake_server):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fake_server.script(Reply(text='{"n": 4}'))
    request = ModelRequest(
        items=as_items("2+2"), output_schema=OutputSchema(name="sum", json_schema=schema)
    )
    response = await client_for(fake_server).complete(request)
    assert json.loads(response.text) == {"n": 4}
    assert fake_server.requests[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "sum", "schema": schema, "strict": True},
    }


async def test_stream_of_text(fake_server):
    fake_server.script(Reply(text="one two three", prompt_tokens=7, completion_tokens=3))
    events = [e async for e in client_for(fake_server).stream(ModelRequest(items=as_items("c")))]
    deltas = [e.delta for e in events if isinstance(e, TextDelta)]
    assert deltas == ["one ", "two ", "three"]
    done = [e.item for e in events if isinstance(e, ItemDone)]
    assert [item.text for item in done] == ["one two three"]
    assert isinstance(events[-1], Completed)
    assert events[-1].response.usage.input_tokens == 7
    assert fake_server.requests[-1]["stream_options"] == {"include_usage": True}


async def test_stream_of_tool_calls(fake_server):
    fake_server.script(Reply(text=None, tool_calls=[("get_weather", {"city": "Rome"})]))
    request = ModelRequest(items=as_items("weather?"), tools=[WEATHER])
    events = [e async for e in client_for(fake_server).stream(request)]
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(pieces) == 2 and {p.name for p in pieces} == {"get_weather"}
    assert json.loads("".join(p.delta for p in pieces)) == {"city": "Rome"}
    [call] = [e.item for e in events if isinstance(e, ItemDone)]
    assert isinstance(call, FunctionCall) and call.call_id == "call_0"
    assert events[-1].response.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("behaviour", "error", "words"),
    [
        (Fail(429, "slow down", {"retry-after": "7"}), RateLimited, "slow down"),
        (Fail(500, "boom"), ProviderUnavailable, "HTTP 500"),
        (Fail(503, "overloaded"), ProviderUnavailable, "overloaded"),
        (Fail(401, "bad key"), AuthenticationFailed, "bad key"),
        (Fail(400, "unknown parameter foo"), BadRequest, "foo"),
        (Fail(400, "maximum context length is 8192 tokens"), ContextTooLong, "context"),
        (Malformed(), ProviderUnavailable, "malformed"),
    ],
)
async def test_errors_are_mapped(fake_server, behaviour, error, words):
    fake_server.script(behaviour)
    with pytest.raises(error) as caught:
        await client_for(fake_server).complete(ModelRequest(items=as_items("x")))
    message = str(caught.value)
    assert message.startswith("fake/gpt-test: ") and words in message
    assert type(caught.value) is error
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == 7


async def test_stream_errors_are_mapped(fake_server):
    fake_server.script(Fail(429))
    with pytest.raises(RateLimited):
        async for _ in client_for(fake_server).stream(ModelRequest(items=as_items("x"))):
            pass


async def test_timeout(fake_server):
    fake_server.script(Hang(1))
    with pytest.raises(Timeout, match="fake/gpt-test"):
        await client_for(fake_server, timeout=0.2).complete(ModelRequest(items=as_items("x")))


async def test_connection_refused():
    client = OpenAIChatClient("m", provider="gone", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ProviderUnavailable, match="gone/m: cannot connect"):
        await client.complete(ModelRequest(items=as_items("x")))


async def test_embeddings_in_order_with_usage(fake_server):
    embedder = OpenAIEmbedder("emb", base_url=fake_server.base_url)
    response = await embedder.embed_batch(["a b", "c", "a b"])
    assert len(response.vectors) == 3 and len(response.vectors[0]) == 8
    assert response.vectors[0] == response.vectors[2] != response.vectors[1]
    assert response.usage.input_tokens == 5  # the fake server counts words
    assert fake_server.requests[-1]["input"] == ["a b", "c", "a b"]
    assert fake_server.requests[-1]["model"] == "emb"
