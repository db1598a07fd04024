"""The official openai SDK against a live agentrig server (models behind a fake upstream)."""

import json

import httpx
import openai
import pytest

from agentrig.testing.fake_openai_server import Fail, Hang, Reply
from tests.server.openresponses import validate_event, validate_response


def test_create_plain_and_read_back(served):
    served.fake.script(Reply(text="Hello from agentrig.", prompt_tokens=7, completion_tokens=4))
    client = served.openai()
    response = client.responses.create(model="default", input="Hi!", instructions="Be brief.")
    assert response.output_text == "Hello from agentrig."
    assert response.status == "completed" and response.usage.input_tokens == 7
    sent = served.fake.requests[-1]["messages"]
    assert sent == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    raw = httpx.get(f"{served.v1}/responses/{response.id}").json()
    validate_response(raw)
    assert client.responses.retrieve(response.id).output_text == "Hello from agentrig."
    items = client.responses.input_items.list(response.id)
    assert [item.content[0].text for item in items.data] == ["Hi!"]


def test_streamed_events_in_order_and_valid(served):
    served.fake.script(Reply(text="one two three"))
    client = served.openai()
    events = list(client.responses.create(model="default", input="count", stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert types.count("response.output_text.delta") == 3
    numbers = [event.sequence_number for event in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert events[-1].response.output_text == "one two three"
    served.fake.script(Reply(text="one two three"))
    raw = raw_events(served, {"model": "default", "input": "count", "stream": True})
    assert [e["type"] for e in raw] == types
    for event in raw:
        validate_event(event)


def raw_events(served, body) -> list[dict]:
    """The SSE events of a streamed request as sent on the wire."""
    events = []
    with httpx.stream("POST", f"{served.v1}/responses", json=body, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def test_previous_response_id_chains_history(served):
    client = served.openai()
    served.fake.script(Reply(text="I am Bob."), Reply(text="You asked my name."))
    first = client.responses.create(model="default", input="What is your name?")
    second = client.responses.create(
        model="default", input="What did I ask?", previous_response_id=first.id
    )
    assert second.output_text == "You asked my name."
    assert second.previous_response_id == first.id
    sent = [m["content"] for m in served.fake.requests[-1]["messages"]]
    assert sent == ["What is your name?", "I am Bob.", "What did I ask?"]


def test_function_tool_round_trip(served):
    client = served.openai()
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    served.fake.script(
        Reply(text=None, tool_calls=[("get_weather", {"city": "Oslo"})]),
        Reply(text="It is 3 degrees in Oslo."),
    )
    first = client.responses.create(model="default", input="Weather in Oslo?", tools=[tool])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Oslo"}
    second = client.responses.create(
        model="default",
        previous_response_id=first.id,
        tools=[tool],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "3 degrees"}],
    )
    assert second.output_text == "It is 3 degrees in Oslo."
    roles = [m["role"] for m in served.fake.requests[-1]["messages"]]
    assert roles == ["user", "assistant", "tool"]


def test_server_side_agent_runs_its_own_tools(served):
    served.fake.script(
        Reply(text=None, tool_calls=[("calculator", {"expression": "6*7"})]),
        Reply(text="6 times 7 is 42."),
    )
    response = served.openai().responses.create(model="agent:maths", input="6 times 7?")
    assert response.output_text == "6 times 7 is 42."
    types = [item.type for item in response.output]
    assert types == ["function_call", "function_call_output", "message"]
    assert response.output[1].output == "42"


def test_structured_output(served):
    served.fake.script(Reply(text='{"answer": 4}'))
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    response = served.openai().responses.create(
        model="default",
        input="2+2",
        text={"format": {"type": "json_schema", "name": "sum", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"answer": 4}
    assert served.fake.requests[-1]["response_format"]["json_schema"]["schema"] == schema


def test_errors_use_the_openai_envelope(served):
    client = served.openai()
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="default", input="x", previous_response_id="resp_nope")
    assert caught.value.code == "previous_response_not_found"
    conversation = client.conversations.create()
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model="default",
            input="x",
            previous_response_id="resp_nope",
            conversation=conversation.id,
        )
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="nosuchrole", input="x")
    assert caught.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_missing")
    bad = httpx.post(f"{served.v1}/responses", json={"model": "default", "input": 5})
    assert bad.status_code == 400 and "input" in bad.json()["error"]["message"]
    part = {"type": "message", "role": "user", "content": [{"type": "input_text"}]}
    for body, param in (
        ({"input": [part]}, "input[0].content[0].text"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": "x", "temperature": "hot"}, "temperature"),
    ):
        bad = httpx.post(f"{served.v1}/responses", json={"model": "default", **body})
        error = bad.json()["error"]
        assert (bad.status_code, error["param"]) == (400, param), error
        assert error["message"].startswith(f"Invalid request: {param}: ")
    served.fake.script(Fail(500), Fail(500), Fail(500))
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="default", input="x")
    assert caught.value.status_code == 502


def test_conversations_with_paginated_items(served):
    client = served.openai()
    conversation = client.conversations.create(
        metadata={"topic": "demo"},
        items=[{"type": "message", "role": "user", "content": "remember: blue"}],
    )
    served.fake.script(Reply(text="Noted."), Reply(text="Blue."))
    client.responses.create(model="default", input="ok?", conversation=conversation.id)
    client.responses.create(model="default", input="colour?", conversation=conversation.id)
    sent = [m["content"] for m in served.fake.requests[-1]["messages"]]
    assert sent == ["remember: blue", "ok?", "Noted.", "colour?"]
    page = client.conversations.items.list(conversation.id, limit=2, order="asc")
    assert len(page.data) == 2 and page.has_more
    everything = list(client.conversations.items.list(conversation.id, limit=2, order="asc"))
    assert len(everything) == 5
    assert client.conversations.retrieve(conversation.id).metadata == {"topic": "demo"}
    first_id = everything[0].id
    assert (
        client.conversations.items.retrieve(first_id, conversation_id=conversation.id).id
        == first_id
    )
    client.conversations.items.delete(first_id, conversation_id=conversation.id)
    assert len(list(client.conversations.items.list(conversation.id))) == 4
    client.conversations.delete(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)


def test_background_with_poll_and_cancel(served):
    import time

    client = served.openai()
    served.fake.script(Reply(text="done in the background"))
    queued = client.responses.create(model="default", input="work", background=True)
    assert queued.status in ("queued", "in_progress")
    for _ in range(100):
        polled = client.responses.retrieve(queued.id)
        if polled.status == "completed":
            break
        time.sleep(0.05)
    assert polled.output_text == "done in the background"
    served.fake.script(Hang(5))
    slow = client.responses.create(model="default", input="slow", background=True)
    cancelled = client.responses.cancel(slow.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(slow.id).status == "cancelled"


def test_chat_completions_and_models(served):
    client = served.openai()
    served.fake.script(Reply(text="chat answer"), Reply(text="streamed chat answer"))
    completion = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "chat answer"
    chunks = client.chat.completions.create(
        model="default", stream=True, messages=[{"role": "user", "content": "hi"}]
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed chat answer"
    models = {m.id for m in client.models.list()}
    assert {"default", "fake/m", "agent:maths"} <= models


def test_chat_completions_carry_images_and_files_and_refuse_unknown_parts(served):
    client = served.openai()
    served.fake.script(Reply(text="a red square"))
    parts = [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
        },
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
        },
    ]
    completion = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": parts}]
    )
    assert completion.choices[0].message.content == "a red square"
    assert served.fake.requests[-1]["messages"][-1] == {"role": "user", "content": parts}
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    refused = httpx.post(
        f"{served.v1}/chat/completions",
        json={"model": "default", "messages": [{"role": "user", "content": [audio]}]},
        timeout=30,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "messages[0].content[0].type"
    assert "input_audio" in refused.json()["error"]["message"]


def test_health_ready_metrics(served):
    assert httpx.get(f"{served.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{served.url}/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["queue"] == "ok (in process)"
    served.fake.script(Reply(text="x"))
    served.openai().responses.create(model="default", input="x")
    metrics = httpx.get(f"{served.url}/metrics").text
    assert (
        'agentrig_http_requests_total{method="POST",route="/v1/responses",status="200"}' in metrics
    )


def test_a_conversation_deleted_while_the_model_answers_is_a_404_not_a_500(served):
    import threading

    client = served.openai()
    conversation = client.conversations.create()
    served.fake.script(Hang(0.6, then=Reply(text="too late")))
    deleter = threading.Timer(0.2, lambda: client.conversations.delete(conversation.id))
    deleter.start()
    reply = httpx.post(
        f"{served.v1}/responses",
        json={"model": "default", "input": "hi", "conversation": conversation.id},
        timeout=30,
    )
    deleter.join()
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"]["param"] == "conversation"
    assert conversation.id in reply.json()["error"]["message"]
