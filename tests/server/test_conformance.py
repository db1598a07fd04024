"""The Open Responses conformance cases against a live server, over raw HTTP.

Every request body sent is checked against the spec's ``CreateResponseBody`` (so the cases
are the spec's, not agentrig's dialect); every response body, stored response, input item
and Server-Sent Event received is validated against the Open Responses OpenAPI document
(``tests/server/openresponses.py``). The fake upstream records what the model was sent.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx

from agentrig.testing.fake_openai_server import Reply
from tests.server.conftest import chat_outcomes
from tests.server.openresponses import (
    check,
    validate_item,
    validate_response,
    validate_stream,
)

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
# a 1x1 transparent PNG
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()
PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 minimal").decode()


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def create(served, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """POST /v1/responses (not streamed): the body checked against the spec's request schema,
    the answer against ``ResponseResource`` (or the error envelope when ``status`` is not 200)."""
    check("CreateResponseBody", body, "the request")
    response = httpx.post(f"{served.v1}/responses", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    if status != 200:
        assert set(document["error"]) == {"message", "type", "param", "code"}
        return document
    validate_response(document)
    return document


def stream(served, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a streamed POST /v1/responses, each ``event:`` name matching its data's
    ``type``; every event and the stream's shape validated."""
    body = {**body, "stream": True}
    check("CreateResponseBody", body, "the request")
    events, name = [], None
    with httpx.stream("POST", f"{served.v1}/responses", json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                event = json.loads(line[len("data: ") :])
                assert event["type"] == name
                events.append(event)
    validate_stream(events)
    return events


def stored(served, response_id: str) -> dict[str, Any]:
    """The stored response and its input items, validated."""
    resource = httpx.get(f"{served.v1}/responses/{response_id}").json()
    validate_response(resource)
    items = httpx.get(f"{served.v1}/responses/{response_id}/input_items?order=asc").json()
    for item in items["data"]:
        validate_item(item)
    return {**resource, "input_items": items["data"]}


def text_of(resource: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in resource["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def test_basic_response(served):
    served.fake.script(Reply(text="Hello there, friend.", prompt_tokens=12, completion_tokens=4))
    body = {"model": "default", "input": [user("Say hello in exactly 3 words.")]}
    resource = create(served, body)
    assert resource["object"] == "response" and resource["status"] == "completed"
    assert resource["model"] == "default" and resource["completed_at"] is not None
    [message] = resource["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert text_of(resource) == "Hello there, friend."
    assert resource["usage"]["input_tokens"] == 12 and resource["usage"]["total_tokens"] == 16
    sent = served.fake.requests[-1]["messages"]
    assert sent == [{"role": "user", "content": "Say hello in exactly 3 words."}]
    again = stored(served, resource["id"])
    assert again["output"] == resource["output"]
    assert [item["content"][0]["text"] for item in again["input_items"]] == [
        "Say hello in exactly 3 words."
    ]


def test_streaming_response(served):
    served.fake.script(Reply(text="Counting: one two three."))
    events = stream(served, {"model": "default", "input": [user("Count to three.")]})
    kinds = [event["type"] for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert events[0]["response"]["status"] == "in_progress"
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_item.added") == 1
    for kind in ("content_part.added", "output_text.done", "content_part.done", "output_item.done"):
        assert kinds.count(f"response.{kind}") == 1, kind
    deltas = [event["delta"] for event in events if event["type"] == "response.output_text.delta"]
    assert len(deltas) == 4 and "".join(deltas) == "Counting: one two three."
    [done] = [event for event in events if event["type"] == "response.output_text.done"]
    assert done["text"] == "Counting: one two three."
    final = events[-1]["response"]
    assert final["status"] == "completed" and text_of(final) == "Counting: one two three."
    assert stored(served, final["id"])["output"] == final["output"]


def test_system_prompt(served):
    served.fake.script(Reply(text="Arr, ahoy!"), Reply(text="Ahoy again."))
    body = {
        "model": "default",
        "input": [
            {"type": "message", "role": "system", "content": "You are a pirate."},
            user("Say hello."),
        ],
    }
    assert text_of(create(served, body)) == "Arr, ahoy!"
    assert served.fake.requests[-1]["messages"] == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Say hello."},
    ]
    resource = create(
        served, {"model": "default", "instructions": "Talk like a pirate.", "input": "Hello."}
    )
    assert resource["instructions"] == "Talk like a pirate."
    assert served.fake.requests[-1]["messages"][0] == {
        "role": "system",
        "content": "Talk like a pirate.",
    }


def test_tool_calling(served):
    served.fake.script(Reply(text=None, tool_calls=[("get_weather", {"city": "San Francisco"})]))
    body = {
        "model": "default",
        "input": [user("What is the weather like in San Francisco?")],
        "tools": [WEATHER_TOOL],
    }
    resource = create(served, body)
    assert resource["status"] == "completed"
    [call] = resource["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "San Francisco"} and call["call_id"]
    assert resource["tools"][0]["name"] == "get_weather"
    assert resource["tools"][0]["parameters"] == WEATHER_TOOL["parameters"]
    [tool] = served.fake.requests[-1]["tools"]
    assert tool["function"]["name"] == "get_weather"


def test_streamed_tool_calling(served):
    served.fake.script(Reply(text=None, tool_calls=[("get_weather", {"city": "Oslo"})]))
    body = {"model": "default", "input": [user("Weather in Oslo?")], "tools": [WEATHER_TOOL]}
    events = stream(served, body)
    [added] = [event for event in events if event["type"] == "response.output_item.added"]
    assert added["item"]["type"] == "function_call" and added["item"]["name"] == "get_weather"
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert len(deltas) == 2 and "".join(deltas) == done["arguments"]
    assert json.loads(done["arguments"]) == {"city": "Oslo"}
    [call] = events[-1]["response"]["output"]
    assert call["type"] == "function_call" and call["arguments"] == done["arguments"]
    assert not any(event["type"].startswith("response.output_text") for event in events)


def test_function_call_round_trip_without_stored_state(served):
    served.fake.script(
        Reply(text=None, tool_calls=[("get_weather", {"city": "Oslo"})]),
        Reply(text="It is 3 degrees in Oslo."),
    )
    question = user("Weather in Oslo?")
    body = {"model": "default", "input": [question], "tools": [WEATHER_TOOL], "store": False}
    first = create(served, body)
    [call] = first["output"]
    assert httpx.get(f"{served.v1}/responses/{first['id']}").status_code == 404  # store: false
    result = {"type": "function_call_output", "call_id": call["call_id"], "output": "3 degrees"}
    replay = {k: call[k] for k in ("type", "call_id", "name", "arguments")}
    second = create(served, {**body, "input": [question, replay, result]})
    assert text_of(second) == "It is 3 degrees in Oslo."
    sent = served.fake.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == call["call_id"]
    assert sent[2] == {"role": "tool", "tool_call_id": call["call_id"], "content": "3 degrees"}


def test_image_input(served):
    served.fake.script(Reply(text="A tiny transparent square."))
    image_url = f"data:image/png;base64,{PNG}"
    content = [
        {"type": "input_text", "text": "What is in this image?"},
        {"type": "input_image", "image_url": image_url, "detail": "low"},
    ]
    body = {"model": "default", "input": [{"type": "message", "role": "user", "content": content}]}
    resource = create(served, body)
    assert text_of(resource) == "A tiny transparent square."
    [message] = served.fake.requests[-1]["messages"]
    assert message["content"] == [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": image_url, "detail": "low"}},
    ]
    [item] = stored(served, resource["id"])["input_items"]
    assert item["content"][1] == {"type": "input_image", "image_url": image_url, "detail": "low"}


def test_file_input_is_sent_to_the_model(served):
    served.fake.script(Reply(text="It is a minimal PDF."))
    content = [
        {"type": "input_file", "filename": "tiny.pdf", "file_data": PDF},
        {"type": "input_text", "text": "What is this file?"},
    ]
    body = {"model": "default", "input": [{"type": "message", "role": "user", "content": content}]}
    resource = create(served, body)
    assert text_of(resource) == "It is a minimal PDF."
    [message] = served.fake.requests[-1]["messages"]
    assert message["content"] == [
        {"type": "file", "file": {"file_data": PDF, "filename": "tiny.pdf"}},
        {"type": "text", "text": "What is this file?"},
    ]
    [item] = stored(served, resource["id"])["input_items"]
    assert item["content"][0] == {"type": "input_file", "filename": "tiny.pdf", "file_data": PDF}


def test_input_the_model_cannot_receive_is_a_clear_400(served):
    """Chat Completions has no file-by-URL part and no image-by-file-id part: such input is
    refused, never silently dropped."""
    sent_before = len(served.fake.requests)
    content = [
        {"type": "input_file", "file_url": "https://example.com/report.pdf"},
        {"type": "input_text", "text": "Summarise it."},
    ]
    body = {"model": "default", "input": [{"type": "message", "role": "user", "content": content}]}
    error = create(served, body, status=400)["error"]
    assert "file_url" in error["message"] and error["type"] == "invalid_request_error"
    events = stream(served, body)
    assert events[-1]["type"] == "response.failed"
    assert "file_url" in events[-1]["response"]["error"]["message"]
    image = [{"type": "input_image", "file_id": "file_123", "detail": "auto"}]
    body = {"model": "default", "input": [{"type": "message", "role": "user", "content": image}]}
    assert "file_id" in create(served, body, status=400)["error"]["message"]
    assert len(served.fake.requests) == sent_before  # nothing reached the model


def test_multi_turn_input(served):
    served.fake.script(Reply(text="Your name is Alice."))
    body = {
        "model": "default",
        "input": [
            user("My name is Alice."),
            {"type": "message", "role": "assistant", "content": "Nice to meet you, Alice!"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "How can I help?"}],
            },
            user("What is my name?"),
        ],
    }
    resource = create(served, body)
    assert text_of(resource) == "Your name is Alice."
    sent = served.fake.requests[-1]["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "My name is Alice."),
        ("assistant", "Nice to meet you, Alice!"),
        ("assistant", "How can I help?"),
        ("user", "What is my name?"),
    ]
    assert len(stored(served, resource["id"])["input_items"]) == 4


def test_previous_response_id(served):
    served.fake.script(Reply(text="Nice to meet you, Bob."), Reply(text="You are Bob."))
    first = create(served, {"model": "default", "input": [user("I am Bob.")]})
    events = stream(
        served,
        {"model": "default", "input": [user("Who am I?")], "previous_response_id": first["id"]},
    )
    second = events[-1]["response"]
    assert events[0]["response"]["previous_response_id"] == first["id"]
    assert second["previous_response_id"] == first["id"] and text_of(second) == "You are Bob."
    sent = served.fake.requests[-1]["messages"]
    assert [m["content"] for m in sent] == ["I am Bob.", "Nice to meet you, Bob.", "Who am I?"]
    again = stored(served, second["id"])
    assert again["previous_response_id"] == first["id"]
    assert [item["content"][0]["text"] for item in again["input_items"]] == ["Who am I?"]
    error = create(
        served, {"model": "default", "input": "x", "previous_response_id": "resp_gone"}, 400
    )["error"]
    assert error["code"] == "previous_response_not_found"
    assert error["param"] == "previous_response_id"


def test_stream_with_background_is_a_clear_400(served):
    body = {"model": "default", "input": "x", "stream": True, "background": True}
    response = httpx.post(f"{served.v1}/responses", json=body, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "stream" and "background" in error["message"]
    assert served.fake.requests == []


def test_client_disconnecting_mid_stream_leaves_the_server_working(served):
    slow = "word " * 200
    served.fake.script(Reply(text=slow, chunk_delay=0.02))
    body = {"model": "default", "input": "talk", "stream": True}
    with httpx.stream("POST", f"{served.v1}/responses", json=body, timeout=30) as response:
        lines = response.iter_lines()
        deltas = 0
        for line in lines:
            if line.startswith("data: ") and '"response.output_text.delta"' in line:
                deltas += 1
                if deltas == 3:
                    break  # leave: the connection is closed with 197 words still to come
    left = time.monotonic()
    # The abandoned model stream is cut (its usage row says so) long before its 4 s end.
    url = served.settings.effective_database_url
    while chat_outcomes(url) != ["cancelled"]:
        assert time.monotonic() - left < 2, chat_outcomes(url)
        time.sleep(0.05)
    served.fake.script(Reply(text="still here"))
    events = stream(served, {"model": "default", "input": "are you there?"})
    assert text_of(events[-1]["response"]) == "still here"
    served.fake.script(Reply(text="and not streamed"))
    assert text_of(create(served, {"model": "default", "input": "again"})) == "and not streamed"
    assert httpx.get(f"{served.url}/health").json() == {"status": "ok"}
