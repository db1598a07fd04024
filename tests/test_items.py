import json

import pytest
from pydantic import ValidationError

from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    InputImage,
    InputText,
    Message,
    OutputText,
    Reasoning,
    ReasoningText,
    SummaryText,
    as_items,
    assistant_message,
    dump_items,
    parse_item,
    parse_items,
)

WIRE_ITEMS = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "hello", "annotations": []}],
        "status": "completed",
        "agent": "triage",
    },
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "add",
        "arguments": '{"a": 1, "b": 2}',
        "status": "completed",
        "agent": "math",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "3"},
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "adding"}],
        "content": [{"type": "reasoning_text", "text": "1 + 2"}],
    },
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
        ],
    },
]


def test_wire_json_round_trips_exactly():
    items = parse_items(WIRE_ITEMS)
    assert [type(item) for item in items] == [
        Message,
        Message,
        FunctionCall,
        FunctionCallOutput,
        Reasoning,
        Message,
    ]
    assert dump_items(items) == WIRE_ITEMS
    assert parse_items(json.loads(json.dumps(dump_items(items)))) == items


def test_item_round_trips_through_json_text():
    item = FunctionCall(call_id="c", name="f", arguments="{}", agent="a")
    assert parse_item(json.loads(item.model_dump_json(exclude_none=True))) == item


def test_items_carry_the_producing_agent():
    message = assistant_message("done", agent="writer")
    assert message.agent == "writer"
    assert message.to_json()["agent"] == "writer"
    assert message.id.startswith("msg_")


def test_string_content_becomes_a_part_of_the_right_kind():
    assert Message(role="user", content="hi").content == [InputText(text="hi")]
    assert Message(role="assistant", content="yo").content == [OutputText(text="yo")]
    assert as_items("question")[0].text == "question"


def test_message_text_joins_text_parts_only():
    message = Message(
        role="user",
        content=[InputText(text="a"), InputImage(image_url="http://x/y.png"), InputText(text="b")],
    )
    assert message.text == "ab"


def test_reasoning_parts():
    item = Reasoning(summary=[SummaryText(text="s")], content=[ReasoningText(text="r")])
    assert parse_item(item.to_json()) == item


def test_unknown_item_type_is_refused_naming_the_tag():
    with pytest.raises(ValidationError) as error:
        parse_item({"type": "telepathy", "text": "?"})
    assert "telepathy" in str(error.value)


def test_missing_field_is_named():
    with pytest.raises(ValidationError) as error:
        parse_item({"type": "function_call", "name": "f"})
    assert "call_id" in str(error.value)


def test_unknown_field_is_refused():
    with pytest.raises(ValidationError) as error:
        parse_item({"type": "function_call_output", "call_id": "c", "output": "", "oops": 1})
    assert "oops" in str(error.value)
