"""The Responses API wire format: request parsing, item and response rendering, and the
streamed events of a response, each checked against the Open Responses spec."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from agentrig import Agent, Runner, tool
from agentrig.agents.events import AgentChanged, ItemEvent, RunFinished, TextDeltaEvent
from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    InputImage,
    Message,
    OutputText,
    Reasoning,
    SummaryText,
    assistant_message,
    user_message,
)
from agentrig.llm.types import (
    Completed,
    ItemDone,
    ModelRequest,
    ModelResponse,
    TextDelta,
    ToolCallDelta,
)
from agentrig.server.sse import ResponseEventStream, encode_sse
from agentrig.server.wire import (
    CreateResponseRequest,
    WireError,
    conversation_object,
    deleted_object,
    input_item,
    item_list,
    output_item,
    parse_input_items,
    response_resource,
)
from agentrig.testing import ScriptedModel, text, tool_call
from agentrig.usage import Usage
from tests.server.openresponses import (
    SpecViolation,
    spec,
    validate_event,
    validate_item,
    validate_response,
    validate_stream,
    validate_with_openai_sdk,
)

TEXT_STREAM = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]
CALL_STREAM = [
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
]
WHOLE_ITEM = ["response.output_item.added", "response.output_item.done"]


def request(**fields: Any) -> CreateResponseRequest:
    return CreateResponseRequest.model_validate({"model": "m", "input": "hi", **fields})


def resource(body: CreateResponseRequest, status: str = "completed", output=(), **extra) -> dict:
    done = status not in ("in_progress", "queued")
    return response_resource(
        id="resp_1",
        created_at=1_700_000_000,
        model=body.model,
        status=status,
        request=body,
        output=list(output),
        usage=Usage(input_tokens=12, output_tokens=5, cached_tokens=2) if done else None,
        completed_at=1_700_000_001 if status == "completed" else None,
        **extra,
    )


def check(document: dict) -> None:
    """Valid under the Open Responses spec and under the openai SDK's models."""
    (validate_response if document.get("object") == "response" else validate_event)(document)
    validate_with_openai_sdk(document)


def squash(kinds: list[str]) -> list[str]:
    """Event types with runs of the same delta type collapsed into one."""
    return [k for i, k in enumerate(kinds) if not (k.endswith(".delta") and kinds[i - 1] == k)]


def streamed(
    events: list[Any],
    output: list[Any],
    *,
    body: CreateResponseRequest | None = None,
    status: str = "completed",
    **extra: Any,
) -> tuple[list[dict], dict]:
    """The whole SSE stream of a response fed ``events``, validated; and its final resource."""
    body = body or request()
    stream = ResponseEventStream()
    sent = [
        stream.created(resource(body, "in_progress")),
        stream.in_progress(resource(body, "in_progress")),
    ]
    for event in events:
        sent += stream.feed(event)
    sent += stream.finish("completed" if status == "completed" else "incomplete")
    final = resource(body, status, output, **extra)
    terminal = {
        "completed": stream.completed,
        "incomplete": stream.incomplete,
        "failed": stream.failed,
    }
    sent.append(terminal[status](final))
    validate_stream(sent)
    validate_response(final)
    for document in [*sent, final]:
        validate_with_openai_sdk(document)
    return sent, final


async def model_stream(model: ScriptedModel) -> tuple[list[Any], list[Any]]:
    events = [event async for event in model.stream(ModelRequest(items=[user_message("hi")]))]
    completed = events[-1]
    assert isinstance(completed, Completed)
    return events, completed.response.output


# --- requests --------------------------------------------------------------------------


def test_a_string_input_is_one_user_message_and_defaults_are_openai_s():
    body = request()
    [item] = body.input_items()
    assert isinstance(item, Message) and item.role == "user" and item.text == "hi"
    assert (body.store, body.stream, body.background, body.truncation) == (
        True,
        False,
        False,
        "disabled",
    )
    assert body.agentrig_tool_choice() == "auto" and body.tool_specs() == []
    assert body.output_schema() is None and body.conversation_id() is None


def test_easy_messages_typed_items_and_echoed_output_items_become_canonical_items():
    body = request(
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "again", "annotations": [], "logprobs": []}
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "more"}],
            },
        ]
    )
    items = body.input_items()
    assert [(i.role, i.text) for i in items] == [
        ("developer", "Be brief."),
        ("user", "hi"),
        ("assistant", "hello"),
        ("assistant", "again"),
        ("user", "more"),
    ]
    assert isinstance(items[2].content[0], OutputText)
    assert items[3].id == "msg_1" and items[3].status == "completed"


def test_images_and_files_are_content_parts():
    body = request(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
                    {"type": "input_image", "file_id": "file_1", "detail": None},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,AAA",
                        "filename": "a.pdf",
                    },
                    {"type": "input_file", "file_url": "https://x/a.pdf"},
                ],
            }
        ]
    )
    parts = body.input_items()[0].content
    assert [p.type for p in parts] == [
        "input_text",
        "input_image",
        "input_image",
        "input_file",
        "input_file",
    ]
    assert (parts[1].image_url, parts[1].detail) == ("https://x/cat.png", "low")
    assert (parts[2].file_id, parts[2].detail) == ("file_1", "auto")
    assert parts[3].filename == "a.pdf" and parts[4].file_url == "https://x/a.pdf"


def test_function_calls_their_outputs_and_reasoning_items_are_accepted():
    body = request(
        input=[
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "hmm"}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "f",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "42"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [
                    {"type": "input_text", "text": "4"},
                    {"type": "input_text", "text": "2"},
                ],
            },
        ]
    )
    reasoning, call, first, second = body.input_items()
    assert isinstance(reasoning, Reasoning) and reasoning.summary[0].text == "hmm"
    assert isinstance(call, FunctionCall) and call.call_id == "call_1"
    assert isinstance(first, FunctionCallOutput) and first.output == "42"
    assert second.output == "42"


def test_item_references_keep_their_place_and_must_be_resolved():
    body = request(
        input=[
            {"type": "item_reference", "id": "msg_a"},
            {"role": "user", "content": "and then?"},
            {"id": "fc_b"},  # the spec's item reference may leave out its type
        ]
    )
    assert body.reference_ids() == ["msg_a", "fc_b"]
    with pytest.raises(WireError, match=r"input\[0\]: no item with id 'msg_a'") as caught:
        body.input_items()
    assert caught.value.param == "input[0].id"
    found = {
        "msg_a": assistant_message("before"),
        "fc_b": FunctionCall(id="fc_b", call_id="c", name="f"),
    }
    items = body.input_items(found)
    assert [item.type for item in items] == ["message", "message", "function_call"]
    assert items[0] is not found["msg_a"]  # fresh copies: the caller may change them


def test_nulls_and_unknown_fields_are_ignored():
    body = request(
        tools=None,
        text=None,
        metadata=None,
        store=None,
        stream_options={"x": 1},
        prompt={"id": "p"},
        tool_choice=None,
        parallel_tool_calls=None,
    )
    assert body.tools == [] and body.store is True and body.metadata == {}
    assert request(text={"format": None, "verbosity": None}).text.format.type == "text"
    assert body.parallel_tool_calls is True and body.tool_choice == "auto"


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"model": None}, "model"),
        ({"tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]}, "tools[1].type"),
        ({"tools": [{"type": "function", "name": "bad name"}]}, "tools.0.name"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"tool_choice": {"type": "function", "name": "g"}}, "tool_choice.name"),
        ({"tool_choice": "required"}, "tool_choice: 'required' needs tools"),
        ({"text": {"format": {"type": "xml"}}}, "text.format"),
        (
            {"text": {"format": {"type": "json_schema", "schema": {}}}},
            "text.format.json_schema.name",
        ),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata: at most 16 keys"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
        ({"metadata": {"k": 1}}, "metadata.k"),
        ({"input": [{"type": "computer_call"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0]",
        ),
        ({"input": [{"role": "user", "content": [{"type": "input_file"}]}]}, "input[0].content[0]"),
        ({"input": ["hi", {"role": "robot", "content": "x"}]}, "input[0]: expected an object"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        (
            {
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_image", "image_url": "u"}],
                    }
                ]
            },
            "input[0].output",
        ),
        ({"previous_response_id": "resp_1", "conversation": "conv_1"}, "previous_response_id"),
        ({"background": True, "store": False}, "background"),
        ({"max_output_tokens": 5}, "max_output_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"truncation": "sometimes"}, "truncation"),
        ({"service_tier": "gold"}, "service_tier"),
    ],
)
def test_bad_fields_give_a_validation_error_naming_them(fields, names):
    with pytest.raises(ValidationError) as caught:
        request(**fields) if "model" not in fields else CreateResponseRequest.model_validate(fields)
    assert names in str(caught.value)


def test_conversions_to_agentrig_types():
    parameters = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    body = request(
        tools=[
            {
                "type": "function",
                "name": "f",
                "description": "Eff.",
                "parameters": parameters,
                "strict": True,
            },
            {"type": "function", "name": "g"},
        ],
        tool_choice={"type": "function", "name": "g"},
        text={
            "format": {
                "type": "json_schema",
                "name": "answer",
                "schema": parameters,
                "strict": True,
            }
        },
        temperature=0.2,
        top_p=0.9,
        max_output_tokens=64,
        conversation={"id": "conv_1"},
    )
    f, g = body.tool_specs()
    assert (f.name, f.description, f.parameters, f.strict) == ("f", "Eff.", parameters, True)
    assert (g.description, g.parameters, g.strict) == (
        "",
        {"type": "object", "properties": {}},
        False,
    )
    assert body.agentrig_tool_choice() == "g"
    schema = body.output_schema()
    assert (schema.name, schema.json_schema, schema.strict) == ("answer", parameters, True)
    settings = body.model_settings()
    assert (settings.temperature, settings.top_p, settings.max_output_tokens) == (0.2, 0.9, 64)
    assert (
        body.conversation_id() == "conv_1"
        and request(conversation="conv_2").conversation_id() == "conv_2"
    )
    json_object = request(text={"format": {"type": "json_object"}}).output_schema()
    assert json_object.json_schema == {"type": "object"} and json_object.strict is False
    assert (
        request(
            tool_choice="required", tools=[{"type": "function", "name": "f"}]
        ).agentrig_tool_choice()
        == "required"
    )


def test_parse_input_items_reads_a_conversation_s_items_without_references():
    items = parse_input_items(
        [
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "assistant", "content": "yo"},
        ]
    )
    assert [i.text for i in items] == ["hi", "yo"]
    with pytest.raises(ValueError, match=r"items\[1\]: an item reference is not allowed"):
        parse_input_items(
            [{"role": "user", "content": "hi"}, {"type": "item_reference", "id": "x"}]
        )
    with pytest.raises(ValueError, match=r"items\[0\]\.type"):
        parse_input_items([{"type": "web_search_call"}])


# --- items and responses ---------------------------------------------------------------


def test_output_items_have_ids_statuses_annotations_and_logprobs():
    message = assistant_message("hi", agent="triage")
    data = output_item(message)
    assert data["content"] == [
        {"type": "output_text", "text": "hi", "annotations": [], "logprobs": []}
    ]
    assert data["agent"] == "triage" and data["status"] == "completed"
    output = FunctionCallOutput(call_id="call_1", output="42", agent="triage")
    rendered = output_item(output)
    assert rendered["id"].startswith("fco_") and rendered["id"] == output.id  # kept on the item
    assert output_item(output)["id"] == rendered["id"] and rendered["status"] == "completed"
    call = output_item(FunctionCall(call_id="call_1", name="f", arguments='{"x": 1}'))
    assert call["id"].startswith("fc_") and call["status"] == "completed"
    reasoning = output_item(Reasoning(summary=[SummaryText(text="thinking")]))
    assert reasoning["id"].startswith("rs_") and "status" not in reasoning
    for item in (data, rendered, call, reasoning):
        validate_item(item)


def test_input_items_render_with_ids_and_spec_shaped_images():
    message = Message(role="user", content=[InputImage(file_id="file_1")])
    data = input_item(message)
    assert data["content"] == [
        {"type": "input_image", "image_url": None, "file_id": "file_1", "detail": "auto"}
    ]
    validate_item(data)
    validate_item(input_item(user_message("hi")))


def test_a_response_resource_has_every_required_field_and_validates():
    body = request(
        instructions="Be brief.", metadata={"user": "u1"}, user="u1", safety_identifier="s1"
    )
    data = resource(body, output=[assistant_message("hello")])
    required = spec()["components"]["schemas"]["ResponseResource"]["required"]
    assert [name for name in required if name not in data] == []
    assert "output_text" not in data  # the SDKs compute it
    assert data["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 17,
    }
    assert (data["object"], data["instructions"], data["metadata"]) == (
        "response",
        "Be brief.",
        {"user": "u1"},
    )
    assert (data["text"], data["tool_choice"], data["tools"]) == (
        {"format": {"type": "text"}},
        "auto",
        [],
    )
    assert (data["temperature"], data["top_p"], data["service_tier"]) == (1.0, 1.0, "default")
    assert (data["user"], data["safety_identifier"], data["conversation"]) == ("u1", "s1", None)
    check(data)


def test_a_response_echoes_tools_tool_choice_text_format_and_settings_in_wire_form():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = request(
        tools=[{"type": "function", "name": "f", "parameters": schema, "strict": True}],
        tool_choice={"type": "function", "name": "f"},
        text={
            "format": {"type": "json_schema", "name": "out", "schema": schema},
            "verbosity": "low",
        },
        reasoning={"effort": "low"},
        temperature=0.5,
        max_output_tokens=100,
        max_tool_calls=3,
        parallel_tool_calls=False,
        service_tier="flex",
        previous_response_id="resp_0",
    )
    data = resource(
        body, "incomplete", [assistant_message("{")], incomplete_details="max_output_tokens"
    )
    assert data["tools"] == [
        {"type": "function", "name": "f", "description": "", "parameters": schema, "strict": True}
    ]
    assert data["tool_choice"] == {"type": "function", "name": "f"}
    assert data["text"] == {
        "format": {
            "type": "json_schema",
            "name": "out",
            "schema": schema,
            "description": None,
            "strict": False,
        },
        "verbosity": "low",
    }
    assert data["reasoning"] == {"effort": "low", "summary": None}
    assert data["incomplete_details"] == {"reason": "max_output_tokens"}
    assert (data["temperature"], data["max_output_tokens"], data["max_tool_calls"]) == (0.5, 100, 3)
    assert (data["parallel_tool_calls"], data["service_tier"]) == (False, "flex")
    assert data["previous_response_id"] == "resp_0"
    check(data)
    for fmt in ({"type": "json_object"}, {"type": "text"}):
        check(resource(request(text={"format": fmt})))


def test_a_failed_response_carries_its_error_and_a_conversation_its_id():
    body = request(conversation={"id": "conv_1"})
    data = resource(body, "failed", error={"code": "server_error", "message": "boom"})
    assert (
        data["error"] == {"code": "server_error", "message": "boom"} and data["usage"] is not None
    )
    assert data["conversation"] == {"id": "conv_1"} and data["completed_at"] is None
    check(data)
    assert resource(request(), conversation_id="conv_9")["conversation"] == {"id": "conv_9"}


def test_the_validator_reports_what_is_wrong_and_where():
    data = resource(request())
    del data["tools"]
    with pytest.raises(SpecViolation, match="'tools' is a required property"):
        validate_response(data)
    data = resource(request(), output=[assistant_message("x")])
    del data["output"][0]["content"][0]["logprobs"]
    with pytest.raises(SpecViolation, match=r"output\[0\]"):
        validate_response(data)
    with pytest.raises(SpecViolation, match=r"no streaming event of type 'response\.nope'"):
        validate_event({"type": "response.nope", "sequence_number": 0})
    event = {
        "type": "response.output_text.delta",
        "sequence_number": 3,
        "item_id": "m",
        "output_index": 0,
        "content_index": 0,
        "delta": "x",
    }
    with pytest.raises(SpecViolation, match="'logprobs' is a required property"):
        validate_event(event)


# --- streams ---------------------------------------------------------------------------


async def test_a_plain_text_stream_follows_openai_s_order():
    events, output = await model_stream(ScriptedModel([text("Hello there, friend.")]))
    sent, final = streamed(events, output)
    kinds = [event["type"] for event in sent]
    assert squash(kinds) == [*TEXT_STREAM, "response.completed"]
    assert kinds.count("response.output_text.delta") > 1
    deltas = "".join(e["delta"] for e in sent if e["type"] == "response.output_text.delta")
    done = next(e for e in sent if e["type"] == "response.output_text.done")
    assert deltas == done["text"] == "Hello there, friend."
    added = sent[2]["item"]
    assert (added["status"], added["content"], added["role"]) == ("in_progress", [], "assistant")
    assert sent[3]["part"] == {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    assert sent[-2]["item"] == final["output"][0] and final["output"][0]["status"] == "completed"
    assert [e["sequence_number"] for e in sent] == list(range(len(sent)))


async def test_a_streamed_function_call():
    events, output = await model_stream(ScriptedModel([tool_call("lookup", order="7")]))
    sent, _ = streamed(events, output)
    kinds = [event["type"] for event in sent]
    assert squash(kinds) == [*TEXT_STREAM[:2], *CALL_STREAM, "response.completed"]
    added, done = sent[2]["item"], sent[-2]["item"]
    assert (added["arguments"], added["status"], added["name"]) == ("", "in_progress", "lookup")
    arguments = "".join(e["delta"] for e in sent if e["type"].endswith("arguments.delta"))
    assert json.loads(arguments) == {"order": "7"} == json.loads(done["arguments"])
    assert (
        done["call_id"] == added["call_id"] == output[0].call_id and done["status"] == "completed"
    )


async def test_two_function_calls_in_one_response_are_streamed_one_after_the_other():
    model = ScriptedModel([[tool_call("a", x=1), tool_call("b", y=2)]])
    events, output = await model_stream(model)
    sent, _ = streamed(events, output)
    kinds = squash([event["type"] for event in sent])
    assert kinds == [*TEXT_STREAM[:2], *CALL_STREAM, *CALL_STREAM, "response.completed"]
    done = [e["item"] for e in sent if e["type"] == "response.output_item.done"]
    assert [(d["name"], d["arguments"]) for d in done] == [("a", '{"x": 1}'), ("b", '{"y": 2}')]
    assert [e["output_index"] for e in sent if e["type"] == "response.output_item.added"] == [0, 1]


def test_interleaved_items_from_a_provider_are_closed_one_at_a_time():
    """Chat Completions streams every delta and only then every item: the stream closes each
    item when the next one starts, from what was streamed, and ignores the later "done"."""
    message = assistant_message("Let me look.")
    first = FunctionCall(id="", call_id="call_1", name="a", arguments='{"x":1}', status="completed")
    second = FunctionCall(id="", call_id="call_2", name="b", arguments="{}", status="completed")
    events = [
        TextDelta(item_id=message.id, delta="Let me "),
        TextDelta(item_id=message.id, delta="look."),
        ToolCallDelta(item_id="", call_id="call_1", name="a", delta='{"x":'),
        ToolCallDelta(item_id="", call_id="call_1", name="a", delta="1}"),
        ToolCallDelta(item_id="", call_id="call_2", name="b", delta="{}"),
        ItemDone(item=message),
        ItemDone(item=first),
        ItemDone(item=second),
        Completed(response=ModelResponse(output=[message, first, second])),
    ]
    sent, final = streamed(events, [message, first, second])
    kinds = squash([event["type"] for event in sent])
    assert kinds == [*TEXT_STREAM, *CALL_STREAM, *CALL_STREAM, "response.completed"]
    assert first.id.startswith("fc_") and second.id.startswith("fc_") and first.id != second.id
    done = [e["item"] for e in sent if e["type"] == "response.output_item.done"]
    assert [item.get("arguments") for item in done] == [None, '{"x":1}', "{}"]
    assert [item["id"] for item in done] == [item["id"] for item in final["output"]]


async def test_an_agent_run_with_a_tool_streams_the_call_its_output_and_the_answer():
    @tool
    def lookup(order: str) -> str:
        """Look an order up."""
        return f"order {order} shipped"

    model = ScriptedModel([tool_call("lookup", order="7"), text("It shipped.")])
    agent = Agent(name="shop", model=model, tools=[lookup])
    run = Runner.run_streamed(agent, "where is order 7?")
    events = [event async for event in run.events()]
    names = [e.name for e in events if isinstance(e, ItemEvent)]
    assert names == ["tool_called", "tool_output", "message_output"]
    assert isinstance(events[-1], RunFinished)
    sent, final = streamed([*events, AgentChanged("shop", "x")], list(run.result.new_items))
    kinds = squash([event["type"] for event in sent])
    assert kinds == [
        *TEXT_STREAM[:2],
        *CALL_STREAM,
        *WHOLE_ITEM,
        *TEXT_STREAM[2:],
        "response.completed",
    ]
    output = final["output"]
    assert [item["type"] for item in output] == ["function_call", "function_call_output", "message"]
    assert output[1]["id"].startswith("fco_") and output[1]["output"] == "order 7 shipped"
    assert {item["agent"] for item in output} == {"shop"}
    added = [e["item"] for e in sent if e["type"] == "response.output_item.added"]
    assert added[1]["status"] == "in_progress" and added[2]["agent"] == "shop"


async def test_a_handoff_continues_the_output_and_a_nested_agent_s_events_are_not_output():
    helper = Agent(name="helper", model=ScriptedModel([text("helped")]))
    billing = Agent(
        name="billing",
        model=ScriptedModel([tool_call("helper", input="x"), text("billed")]),
        tools=[helper.as_tool()],
    )
    triage = Agent(
        name="triage", model=ScriptedModel([tool_call("transfer_to_billing")]), handoffs=[billing]
    )
    run = Runner.run_streamed(triage, "hi")
    events = [event async for event in run.events()]
    assert any(getattr(e, "agent", None) == "helper" for e in events)
    sent, final = streamed(events, list(run.result.new_items))
    kinds = squash([event["type"] for event in sent])
    assert kinds == [
        *TEXT_STREAM[:2],
        *CALL_STREAM,
        *WHOLE_ITEM,
        *CALL_STREAM,
        *WHOLE_ITEM,
        *TEXT_STREAM[2:],
        "response.completed",
    ]
    assert [(item["type"], item["agent"]) for item in final["output"]] == [
        ("function_call", "triage"),
        ("function_call_output", "triage"),
        ("function_call", "billing"),
        ("function_call_output", "billing"),
        ("message", "billing"),
    ]
    assert ResponseEventStream(agent="billing").feed(events[0]) == []  # not the running agent


def test_the_stream_validator_catches_a_broken_stream():
    body = request()

    def events(final: dict, *, finish: bool = True, skip: int = 0) -> list[dict]:
        stream = ResponseEventStream()
        sent = [stream.created(resource(body, "in_progress"))]
        sent += stream.feed(TextDelta(item_id="msg_1", delta="x"))[skip:]
        return [*sent, *(stream.finish() if finish else []), stream.completed(final)]

    with pytest.raises(SpecViolation, match="never done"):
        validate_stream(events(resource(body), finish=False))
    with pytest.raises(SpecViolation, match="sequence numbers"):
        validate_stream(events(resource(body), skip=1))
    with pytest.raises(SpecViolation, match="not the items streamed"):
        validate_stream(events(resource(body, output=[assistant_message("x")])))


def test_reasoning_and_whole_messages_get_their_summary_and_text_events():
    reasoning = Reasoning(
        id="rs_1", summary=[SummaryText(text="Think."), SummaryText(text="Again.")]
    )
    message = assistant_message("Answer.")
    message.content.append(OutputText(text=" More."))
    events = [ItemEvent("a", "reasoning", reasoning), ItemEvent("a", "message_output", message)]
    sent, _ = streamed(events, [reasoning, message])
    summary = [
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    ]
    part = [
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
    ]
    kinds = [event["type"] for event in sent]
    assert kinds == [
        *TEXT_STREAM[:2],
        "response.output_item.added",
        *summary,
        *summary,
        "response.output_item.done",
        "response.output_item.added",
        *part,
        *part,
        "response.output_item.done",
        "response.completed",
    ]
    assert sent[2]["item"] == {"type": "reasoning", "id": "rs_1", "summary": []}
    assert [e["text"] for e in sent if e["type"] == "response.output_text.done"] == [
        "Answer.",
        " More.",
    ]


def test_a_refusal_is_streamed_with_refusal_events():
    message = Message(id="msg_r", role="assistant", content=[{"type": "refusal", "refusal": "No."}])
    sent, _ = streamed([ItemDone(item=message)], [message])
    kinds = [event["type"] for event in sent][3:-2]
    assert kinds == [
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
    ]


def test_a_failed_response_closes_the_open_item_as_incomplete():
    events = [TextDeltaEvent("a", "msg_f", "Partial")]
    body = request()
    sent, _ = streamed(
        events, [], body=body, status="failed", error={"code": "server_error", "message": "x"}
    )
    assert sent[-2]["type"] == "response.output_item.done"
    assert sent[-2]["item"]["status"] == "incomplete"
    assert sent[-2]["item"]["content"][0]["text"] == "Partial" and sent[-2]["item"]["agent"] == "a"
    assert sent[-1]["type"] == "response.failed" and sent[-1]["response"]["error"]["message"] == "x"


def test_an_incomplete_response_ends_with_the_cut_item_and_response_incomplete():
    message = Message(
        id="msg_i", role="assistant", content=[OutputText(text="Once upon")], status="incomplete"
    )
    events = [TextDelta(item_id="msg_i", delta="Once "), TextDelta(item_id="msg_i", delta="upon")]
    sent, final = streamed(
        events, [message], status="incomplete", incomplete_details={"reason": "max_output_tokens"}
    )
    assert squash([e["type"] for e in sent]) == [*TEXT_STREAM, "response.incomplete"]
    assert sent[-2]["item"]["status"] == "incomplete" == final["output"][0]["status"]
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_late_delta_of_an_item_already_closed_is_dropped():
    stream = ResponseEventStream()
    stream.feed(TextDelta(item_id="m1", delta="a"))
    stream.feed(ToolCallDelta(item_id="fc1", call_id="c", name="f", delta="{}"))
    assert stream.feed(TextDelta(item_id="m1", delta="late")) == []
    assert stream.feed(RunFinished("a", None)) == []


def test_the_error_event_validates_and_has_openai_s_flat_fields():
    stream = ResponseEventStream()
    stream.created(resource(request(), "in_progress"))
    event = stream.error_event("The model is overloaded.", "server_error")
    assert event["type"] == "error" and event["sequence_number"] == 1
    assert (event["code"], event["message"], event["param"]) == (
        "server_error",
        "The model is overloaded.",
        None,
    )
    assert event["error"] == {
        "type": "server_error",
        "code": "server_error",
        "message": "The model is overloaded.",
        "param": None,
    }
    check(event)


def test_encode_sse_writes_the_event_name_and_compact_json():
    event = {"type": "response.output_text.delta", "sequence_number": 4, "delta": "é"}
    assert (
        encode_sse(event)
        == (
            'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            '"sequence_number":4,"delta":"é"}\n\n'
        ).encode()
    )


# --- other objects ---------------------------------------------------------------------


def test_conversations_lists_and_deletions_in_openai_s_shapes():
    from datetime import UTC, datetime

    record = {
        "id": "conv_1",
        "object": "conversation",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "metadata": None,
    }
    assert conversation_object(record) == {
        "id": "conv_1",
        "object": "conversation",
        "created_at": 1767225600,
        "metadata": {},
    }
    items = [input_item(user_message("a")), input_item(assistant_message("b"))]
    page = item_list(items, has_more=True)
    assert page == {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"],
        "last_id": items[1]["id"],
        "has_more": True,
    }
    assert item_list([]) == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    assert deleted_object("conv_1", "conversation") == {
        "id": "conv_1",
        "object": "conversation.deleted",
        "deleted": True,
    }
    assert deleted_object("resp_1", "response") == {
        "id": "resp_1",
        "object": "response",
        "deleted": True,
    }
