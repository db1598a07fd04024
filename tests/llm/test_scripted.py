import json

import pytest

from agentrig.items import FunctionCall, Message, as_items
from agentrig.llm.types import Completed, ItemDone, ModelRequest, TextDelta, ToolCallDelta
from agentrig.testing import ScriptedModel, ScriptExhausted, text, tool_call


def req(words="hello there"):
    return ModelRequest(items=as_items(words), instructions="be nice")


async def test_plays_back_turns_in_order_and_records_requests():
    model = ScriptedModel([text("first"), tool_call("add", a=1, b=2), text("last")])
    first = await model.complete(req("one"))
    second = await model.complete(req("two"))
    third = await model.complete(req("three"))
    assert first.text == "first" and first.finish_reason == "stop"
    [call] = second.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("add", {"a": 1, "b": 2})
    assert second.finish_reason == "tool_calls"
    assert third.text == "last"
    assert [r.items[0].text for r in model.requests] == ["one", "two", "three"]
    assert model.remaining == 0


async def test_several_outputs_in_one_turn():
    model = ScriptedModel([[text("checking both"), tool_call("a"), tool_call("b", call_id="c2")]])
    response = await model.complete(req())
    assert [type(item) for item in response.output] == [Message, FunctionCall, FunctionCall]
    assert [c.name for c in response.tool_calls] == ["a", "b"]
    assert response.tool_calls[1].call_id == "c2"


async def test_streams_real_deltas():
    model = ScriptedModel([[text("one two three"), tool_call("add", a=1)]])
    events = [event async for event in model.stream(req())]
    deltas = [e.delta for e in events if isinstance(e, TextDelta)]
    assert deltas == ["one ", "two ", "three"]
    arguments = "".join(e.delta for e in events if isinstance(e, ToolCallDelta))
    assert json.loads(arguments) == {"a": 1}
    assert [type(e.item) for e in events if isinstance(e, ItemDone)] == [Message, FunctionCall]
    assert isinstance(events[-1], Completed)
    assert events[-1].response.usage.output_tokens == 5  # words of the text and of the JSON


async def test_raises_a_scripted_exception_then_continues():
    model = ScriptedModel([RuntimeError("boom"), text("recovered")])
    with pytest.raises(RuntimeError, match="boom"):
        await model.complete(req())
    assert (await model.complete(req())).text == "recovered"


async def test_counts_words_as_tokens():
    response = await ScriptedModel([text("a b c")]).complete(req("x y"))
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 3)


async def test_running_out_of_turns_is_a_clear_error():
    model = ScriptedModel([text("only")], name="tiny")
    await model.complete(req())
    with pytest.raises(ScriptExhausted, match="'tiny' has no turn left for request #2"):
        await model.complete(req())
    model.add_turns(text("more"))
    assert (await model.complete(req())).text == "more"


def test_tool_call_accepts_an_argument_called_name():
    assert tool_call("greet", name="Ada").arguments == {"name": "Ada"}
