"""Handoffs, agents as tools, and streamed runs."""

import asyncio
import json

import pytest

from agentrig import Agent, Runner, tool
from agentrig.agents import (
    AgentChanged,
    ItemEvent,
    RunFinished,
    TextDeltaEvent,
    ToolArgumentsDeltaEvent,
    drop_tool_history,
    handoff,
)
from agentrig.errors import ProviderUnavailable
from agentrig.items import FunctionCall, FunctionCallOutput
from agentrig.testing import ScriptedModel, text, tool_call


@tool
def lookup(order: str) -> str:
    """Look an order up."""
    return f"order {order} shipped"


def billing_and_triage(billing_model, triage_model, **handoff_options):
    billing = Agent(name="billing", instructions="Bill.", model=billing_model, tools=[lookup])
    triage = Agent(
        name="triage",
        instructions="Route.",
        model=triage_model,
        tools=[lookup],
        handoffs=[handoff(billing, **handoff_options)],
    )
    return triage, billing


async def test_handoff_switches_the_agent_and_items_name_their_agent():
    triage_model = ScriptedModel([tool_call("transfer_to_billing")])
    billing_model = ScriptedModel([text("Your invoice is paid.")])
    triage, _ = billing_and_triage(billing_model, triage_model)
    result = await Runner.run(triage, "invoice?")
    assert result.final_output == "Your invoice is paid."
    assert result.last_agent.name == "billing"
    assert [(item.type, item.agent) for item in result.new_items] == [
        ("function_call", "triage"),
        ("function_call_output", "triage"),
        ("message", "billing"),
    ]
    assert json.loads(result.new_items[1].output) == {"assistant": "billing"}
    assert [t.name for t in triage_model.requests[0].tools] == ["lookup", "transfer_to_billing"]
    assert billing_model.requests[0].instructions == "Bill."


async def test_only_the_first_of_several_handoffs_wins_and_every_call_is_answered():
    other = Agent(name="other", model=ScriptedModel([]))
    billing_model = ScriptedModel([text("billing here")])
    billing = Agent(name="billing", model=billing_model)
    triage = Agent(
        name="triage",
        model=ScriptedModel([[tool_call("transfer_to_billing"), tool_call("transfer_to_other")]]),
        handoffs=[billing, other],
    )
    result = await Runner.run(triage, "hi")
    assert result.last_agent.name == "billing"
    outputs = [item for item in result.new_items if isinstance(item, FunctionCallOutput)]
    calls = [item for item in result.new_items if isinstance(item, FunctionCall)]
    assert {o.call_id for o in outputs} == {c.call_id for c in calls}
    assert "Ignored: the conversation is handed to billing instead." in [o.output for o in outputs]
    sent = billing_model.requests[0].items
    assert sum(isinstance(i, FunctionCall) for i in sent) == sum(
        isinstance(i, FunctionCallOutput) for i in sent
    )


async def test_input_filter_changes_what_the_next_agent_sees_not_the_items():
    triage_model = ScriptedModel([tool_call("lookup", order="7"), tool_call("transfer_to_billing")])
    billing_model = ScriptedModel([text("done")])
    triage, _ = billing_and_triage(billing_model, triage_model, input_filter=drop_tool_history)
    result = await Runner.run(triage, "order 7?")
    assert [item.type for item in billing_model.requests[0].items] == ["message"]
    assert sum(isinstance(item, FunctionCall) for item in result.new_items) == 2


async def test_handoffs_by_name_allow_agents_to_hand_back_and_forth():
    triage = Agent(
        name="triage",
        model=ScriptedModel([tool_call("transfer_to_billing"), text("back at triage")]),
        handoffs=["billing"],
    )
    billing = Agent(
        name="billing", model=ScriptedModel([tool_call("transfer_to_triage")]), handoffs=["triage"]
    )
    registry = {"triage": triage, "billing": billing}
    result = await Runner.run(triage, "hi", registry=registry)
    assert result.final_output == "back at triage"
    assert [e.agent for e in result.new_items if isinstance(e, FunctionCall)] == [
        "triage",
        "billing",
    ]


async def test_handoff_to_an_unknown_name_is_an_error():
    triage = Agent(
        name="triage", model=ScriptedModel([tool_call("transfer_to_ghost")]), handoffs=["ghost"]
    )
    with pytest.raises(Exception, match="unknown agent 'ghost'"):
        await Runner.run(triage, "hi")


async def test_agent_as_tool_runs_isolated_and_rolls_usage_up():
    researcher_model = ScriptedModel([tool_call("lookup", order="9"), text("order 9 shipped")])
    researcher = Agent(
        name="researcher",
        instructions="Research.",
        model=researcher_model,
        tools=[lookup],
        handoffs=[Agent(name="x", model=ScriptedModel([]))],
    )
    boss_model = ScriptedModel(
        [tool_call("researcher", input="where is order 9?"), text("It shipped.")]
    )
    boss = Agent(name="boss", model=boss_model, tools=[researcher.as_tool(max_turns=3)])
    result = await Runner.run(boss, "status of 9, secret=42")
    assert result.final_output == "It shipped."
    assert result.new_items[1].output == "order 9 shipped"
    nested_first = researcher_model.requests[0]
    assert [item.text for item in nested_first.items] == ["where is order 9?"]
    assert [t.name for t in nested_first.tools] == ["lookup"]  # no handoffs in a nested run
    assert result.usage.requests == 4  # 2 of the boss + 2 of the researcher
    assert all(item.agent == "boss" for item in result.new_items)


async def test_streamed_run_yields_deltas_items_and_the_result():
    model = ScriptedModel([tool_call("lookup", order="3"), text("order three shipped")])
    agent = Agent(name="clerk", model=model, tools=[lookup])
    stream = Runner.run_streamed(agent, "order 3?")
    events = [event async for event in stream.events()]
    kinds = [type(e).__name__ if not isinstance(e, ItemEvent) else e.name for e in events]
    assert kinds == [
        "ToolArgumentsDeltaEvent",
        "ToolArgumentsDeltaEvent",
        "tool_called",
        "tool_output",
        "TextDeltaEvent",
        "TextDeltaEvent",
        "TextDeltaEvent",
        "message_output",
        "RunFinished",
    ]
    deltas = [e.delta for e in events if isinstance(e, TextDeltaEvent)]
    assert "".join(deltas) == "order three shipped"
    arguments = "".join(e.delta for e in events if isinstance(e, ToolArgumentsDeltaEvent))
    assert json.loads(arguments) == {"order": "3"}
    assert {e.agent for e in events} == {"clerk"}
    assert (
        stream.result is events[-1].result and stream.result.final_output == "order three shipped"
    )


async def test_streamed_handoff_and_nested_agent_events_are_tagged():
    helper = Agent(name="helper", model=ScriptedModel([text("helped")]))
    billing = Agent(
        name="billing",
        model=ScriptedModel([tool_call("helper", input="x"), text("billed")]),
        tools=[helper.as_tool()],
    )
    triage = Agent(
        name="triage", model=ScriptedModel([tool_call("transfer_to_billing")]), handoffs=[billing]
    )
    events = [e async for e in Runner.run_streamed(triage, "hi").events()]
    changed = [e for e in events if isinstance(e, AgentChanged)]
    assert [(e.previous, e.agent) for e in changed] == [("triage", "billing")]
    helper_text = [e.delta for e in events if isinstance(e, TextDeltaEvent) and e.agent == "helper"]
    assert helper_text == ["helped"]
    assert sum(isinstance(e, RunFinished) for e in events) == 1  # nested runs add none
    assert [e.name for e in events if isinstance(e, ItemEvent) and e.agent == "triage"] == [
        "handoff_requested",
        "handoff_done",
    ]


async def test_a_failed_streamed_run_raises_from_events():
    model = ScriptedModel([ProviderUnavailable("down", provider="p", model="m")])
    stream = Runner.run_streamed(Agent(name="a", model=model), "hi")
    with pytest.raises(ProviderUnavailable):
        async for _ in stream.events():
            pass


async def test_a_consumer_that_goes_away_cancels_the_streamed_run():
    started = asyncio.Event()

    @tool
    async def wait_forever() -> str:
        """Waits."""
        started.set()
        await asyncio.sleep(3600)
        return "never"

    def slow_run():
        model = ScriptedModel([tool_call("wait_forever"), text("unreachable")])
        return Runner.run_streamed(Agent(name="a", model=model, tools=[wait_forever]), "go")

    async def consume(stream) -> None:
        async for _ in stream.events():
            pass

    stream = slow_run()  # the consumer's task is cancelled while it waits for an event
    consumer = asyncio.create_task(consume(stream))
    await started.wait()
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    await asyncio.wait([stream.task], timeout=5)
    assert stream.task.cancelled()

    started.clear()
    stream = slow_run()  # the consumer closes the iterator early
    events = stream.events()
    await anext(events)
    await started.wait()
    await events.aclose()
    await asyncio.wait([stream.task], timeout=5)
    assert stream.task.cancelled()
