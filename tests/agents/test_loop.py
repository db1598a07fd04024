"""The loop: answers, tools, errors, limits, context, structured output, callbacks, steps."""

import asyncio
import json
import logging

import pytest
from pydantic import BaseModel

from agentrig import Agent, Runner, ToolContext, tool
from agentrig.agents import assemble, dispatch_tools, infer, persist, rehydrate
from agentrig.agents.context import RunContext
from agentrig.errors import MaxTurnsExceeded, OutputInvalid, ProviderUnavailable, ToolFailed
from agentrig.items import FunctionCall, FunctionCallOutput, Message
from agentrig.sessions import InMemorySession
from agentrig.testing import ScriptedModel, text, tool_call


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def agent_with(model, **options) -> Agent:
    return Agent(**{"name": "assistant", "instructions": "Be useful.", "model": model, **options})


async def test_a_plain_answer():
    model = ScriptedModel([text("Hello there.")])
    result = await Runner.run(agent_with(model), "hi")
    assert result.final_output == "Hello there."
    assert result.last_agent.name == "assistant"
    [message] = result.new_items
    assert isinstance(message, Message) and message.agent == "assistant"
    assert result.usage.requests == 1
    [request] = model.requests
    assert request.instructions == "Be useful."
    assert request.items[0].text == "hi"


async def test_tool_round_trip_sends_the_output_back():
    model = ScriptedModel([tool_call("add", a=2, b=3), text("It is 5.")])
    result = await Runner.run(agent_with(model, tools=[add]), "2+3?")
    assert result.final_output == "It is 5."
    call, output, _answer = result.new_items
    assert isinstance(call, FunctionCall) and isinstance(output, FunctionCallOutput)
    assert output.call_id == call.call_id and output.output == "5"
    assert {item.agent for item in result.new_items} == {"assistant"}
    second = model.requests[1]
    assert [item.type for item in second.items] == [
        "message",
        "function_call",
        "function_call_output",
    ]
    assert [t.name for t in model.requests[0].tools] == ["add"]


async def test_several_calls_run_concurrently_and_answer_in_call_order():
    started = {name: asyncio.Event() for name in ("first", "second")}

    @tool
    async def wait_for(name: str, other: str) -> str:
        started[name].set()
        await asyncio.wait_for(started[other].wait(), 2)  # only passes if both run at once
        return f"{name} done"

    model = ScriptedModel(
        [
            [
                tool_call("wait_for", name="first", other="second"),
                tool_call("wait_for", name="second", other="first"),
            ],
            text("both done"),
        ]
    )
    result = await Runner.run(agent_with(model, tools=[wait_for]), "go")
    outputs = [item.output for item in result.new_items if isinstance(item, FunctionCallOutput)]
    assert outputs == ["first done", "second done"]


async def test_a_failing_tool_is_retried_then_reported_to_the_model():
    attempts = []

    @tool(max_retries=2)
    def flaky() -> str:
        attempts.append(1)
        raise RuntimeError("disk on fire")

    model = ScriptedModel([tool_call("flaky"), text("sorry")])
    result = await Runner.run(agent_with(model, tools=[flaky]), "go")
    assert len(attempts) == 3
    output = result.new_items[1]
    assert output.output == "Error: flaky failed: RuntimeError: disk on fire"
    assert result.final_output == "sorry"


async def test_a_tool_can_fail_the_run():
    @tool(fail_run=True)
    def fatal() -> str:
        raise RuntimeError("stop everything")

    with pytest.raises(ToolFailed, match="stop everything") as caught:
        await Runner.run(agent_with(ScriptedModel([tool_call("fatal")]), tools=[fatal]), "go")
    assert isinstance(caught.value.new_items[0], FunctionCall)


async def test_a_slow_tool_is_cancelled_and_reported():
    cancelled = asyncio.Event()

    @tool(timeout=0.05)
    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    model = ScriptedModel([tool_call("slow"), text("gave up")])
    result = await Runner.run(agent_with(model, tools=[slow]), "go")
    assert (
        result.new_items[1].output == "Error: slow did not finish within 0.05 s and was cancelled"
    )
    assert cancelled.is_set()


async def test_bad_arguments_and_unknown_tools_are_told_to_the_model():
    model = ScriptedModel(
        [[tool_call("add", a="one", b=2), tool_call("teleport", to="mars")], text("ok")]
    )
    result = await Runner.run(agent_with(model, tools=[add]), "go")
    bad, unknown = (
        item.output for item in result.new_items if isinstance(item, FunctionCallOutput)
    )
    assert bad.startswith("Error: invalid arguments for add: a: Input should be a valid integer")
    assert unknown == "Error: no tool named 'teleport'; available: ['add']"


async def test_max_turns_carries_what_was_produced_and_the_session_keeps_it():
    session = InMemorySession()
    model = ScriptedModel([tool_call("add", a=1, b=1)] * 5)
    with pytest.raises(MaxTurnsExceeded, match="max_turns=2") as caught:
        await Runner.run(agent_with(model, tools=[add]), "loop", session=session, max_turns=2)
    assert len(caught.value.new_items) == 4 and caught.value.usage.requests == 2
    stored = await session.get_items()
    assert [item.type for item in stored] == [
        "message",
        "function_call",
        "function_call_output",
        "function_call",
        "function_call_output",
    ]


async def test_provider_failure_carries_the_items_and_the_session_keeps_them():
    session = InMemorySession()
    model = ScriptedModel(
        [tool_call("add", a=1, b=1), ProviderUnavailable("down", provider="p", model="m")]
    )
    with pytest.raises(ProviderUnavailable) as caught:
        await Runner.run(agent_with(model, tools=[add]), "go", session=session)
    assert [i.type for i in caught.value.new_items] == ["function_call", "function_call_output"]
    assert caught.value.usage.requests == 1
    assert len(await session.get_items()) == 3


async def test_instructions_can_be_a_function_of_the_context():
    async def instructions(ctx: RunContext, agent: Agent) -> str:
        return f"{agent.name} serves {ctx.context['user']} on turn {ctx.turn}"

    model = ScriptedModel([text("hi")])
    await Runner.run(agent_with(model, instructions=instructions), "x", context={"user": "ada"})
    assert model.requests[0].instructions == "assistant serves ada on turn 0"


async def test_context_is_private_to_the_run():
    @tool
    def note(ctx: ToolContext, word: str) -> str:
        ctx.context["notes"].append(word)
        return "noted"

    shared = {"notes": []}
    model = ScriptedModel([tool_call("note", word="a"), text("done")])
    result = await Runner.run(agent_with(model, tools=[note]), "x", context=shared)
    assert result.context == {"notes": ["a"]}
    assert shared == {"notes": []}


async def test_tool_state_persists_through_the_session():
    @tool
    def count(ctx: ToolContext) -> str:
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        return str(ctx.state["n"])

    session = InMemorySession()
    agent = agent_with(
        ScriptedModel([tool_call("count"), text("a"), tool_call("count"), text("b")]), tools=[count]
    )
    await Runner.run(agent, "one", session=session)
    second = await Runner.run(agent, "two", session=session)
    assert second.new_items[1].output == "2"
    assert (await session.get_meta()).tool_state == {"count": {"n": 2}}


class Weather(BaseModel):
    city: str
    degrees: int


async def test_structured_output_is_validated():
    model = ScriptedModel([text('{"city": "Oslo", "degrees": 3}')])
    result = await Runner.run(agent_with(model, output_type=Weather), "weather?")
    assert result.final_output == Weather(city="Oslo", degrees=3)
    schema = model.requests[0].output_schema
    assert schema.name == "weather" and schema.json_schema["required"] == ["city", "degrees"]


async def test_invalid_structured_output_is_retried_then_refused():
    model = ScriptedModel([text("sunny"), text('{"city": "Oslo", "degrees": 3}')])
    result = await Runner.run(agent_with(model, output_type=Weather), "weather?")
    assert result.final_output.degrees == 3
    correction = model.requests[1].items[-1]
    assert (
        correction.role == "user" and "does not match the required JSON schema" in correction.text
    )
    model = ScriptedModel([text("no"), text("nope"), text("still no")])
    with pytest.raises(OutputInvalid, match="does not match Weather after 2 retries"):
        await Runner.run(agent_with(model, output_type=Weather), "weather?")


async def test_callbacks_in_order_sync_or_async_and_a_failing_one_is_harmless(caplog):
    seen = []

    class Hooks:
        def on_run_start(self, ctx):
            seen.append("run_start")

        async def on_agent_thinking(self, ctx, agent):
            seen.append(f"thinking:{agent.name}")

        def on_tool_start(self, ctx, agent, call):
            seen.append(f"tool_start:{call.name}")
            raise RuntimeError("callback bug")

        def on_tool_complete(self, ctx, agent, call, output):
            seen.append(f"tool_complete:{output}")

        def on_agent_complete(self, ctx, agent, output):
            seen.append(f"complete:{output}")

        def on_run_complete(self, ctx, result):
            seen.append("run_complete")

    model = ScriptedModel([tool_call("add", a=1, b=2), text("3")])
    with caplog.at_level(logging.ERROR):
        result = await Runner.run(agent_with(model, tools=[add]), "go", hooks=Hooks())
    assert result.final_output == "3"
    assert seen == [
        "run_start",
        "thinking:assistant",
        "tool_start:add",
        "tool_complete:3",
        "thinking:assistant",
        "complete:3",
        "run_complete",
    ]
    assert "callback on_tool_start failed" in caplog.text


async def test_the_steps_can_be_called_one_by_one():
    session = InMemorySession()
    agent = agent_with(ScriptedModel([tool_call("add", a=4, b=5), text("9")]), tools=[add])
    state = await rehydrate(agent, "4+5", session=session)
    run = RunContext(state, agent.reachable())
    response = await infer(state, run)
    assert response.tool_calls and state.pending and state.status == "running"
    json.dumps(state.to_json())  # serializable at every step boundary
    await dispatch_tools(state, run)
    assert not state.pending and state.new_items[-1].output == "9"
    await infer(state, run)
    assert state.status == "finished"
    await persist(state, session)
    result = assemble(state, run)
    assert result.final_output == "9" and len(await session.get_items()) == 4


async def test_a_long_run_sends_each_request_with_its_own_items():
    model = ScriptedModel([tool_call("add", a=1, b=1)] * 3 + [text("done")])
    await Runner.run(agent_with(model, tools=[add]), "go", max_turns=4)
    assert [len(request.items) for request in model.requests] == [1, 3, 5, 7]


async def test_session_history_reaches_the_model():
    session = InMemorySession()
    agent = agent_with(ScriptedModel([text("first answer"), text("second answer")]))
    await Runner.run(agent, "first question", session=session)
    await Runner.run(agent, "second question", session=session)
    texts = [item.text for item in agent.model.requests[1].items]
    assert texts == ["first question", "first answer", "second question"]


async def test_tool_choice_is_forced_until_a_tool_answered():
    model = ScriptedModel([tool_call("add", a=1, b=1), text("2")])
    await Runner.run(agent_with(model, tools=[add], tool_choice="required"), "go")
    assert [r.tool_choice for r in model.requests] == ["required", "auto"]
