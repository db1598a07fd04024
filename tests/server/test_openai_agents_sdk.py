"""The OpenAI Agents SDK with agentrig as its model backend: an agent with a function tool
runs to completion through ``OpenAIResponsesModel`` pointed at the live server, plain and
streamed. The SDK runs the tool on its side; agentrig serves each model turn."""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI

from agentrig.testing.fake_openai_server import Reply
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled


@pytest.fixture(autouse=True)
def no_tracing():
    set_tracing_disabled(True)  # the SDK would otherwise export traces to OpenAI


def weather_agent(served, calls: list[str]) -> Agent:
    @function_tool
    def get_weather(city: str) -> str:
        """The current weather of a city."""
        calls.append(city)
        return f"3 degrees and snowing in {city}"

    client = AsyncOpenAI(base_url=served.v1, api_key="x", max_retries=0)
    return Agent(
        name="weather",
        instructions="Answer with the weather tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="default", openai_client=client),
    )


def check_model_turns(served) -> None:
    """What the upstream model saw: the tool offered, then its result in the second turn."""
    first, second = served.fake.requests[-2:]
    assert [tool["function"]["name"] for tool in first["tools"]] == ["get_weather"]
    assert first["messages"][0] == {"role": "system", "content": "Answer with the weather tool."}
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][-1]["content"] == "3 degrees and snowing in Oslo"


async def test_agent_with_a_function_tool_runs_to_completion(served):
    served.fake.script(
        Reply(text=None, tool_calls=[("get_weather", {"city": "Oslo"})]),
        Reply(text="It is 3 degrees and snowing in Oslo."),
    )
    calls: list[str] = []
    result = await Runner.run(weather_agent(served, calls), "What is the weather in Oslo?")
    assert calls == ["Oslo"]
    assert result.final_output == "It is 3 degrees and snowing in Oslo."
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert len(result.raw_responses) == 2
    assert all(r.response_id.startswith("resp_") for r in result.raw_responses)
    assert result.context_wrapper.usage.requests == 2
    check_model_turns(served)


async def test_streamed_agent_run(served):
    served.fake.script(
        Reply(text=None, tool_calls=[("get_weather", {"city": "Oslo"})]),
        Reply(text="Snowing in Oslo, 3 degrees."),
    )
    calls: list[str] = []
    run = Runner.run_streamed(weather_agent(served, calls), "Weather in Oslo?")
    deltas, arguments = [], []
    async for event in run.stream_events():
        if event.type == "raw_response_event":
            if event.data.type == "response.output_text.delta":
                deltas.append(event.data.delta)
            elif event.data.type == "response.function_call_arguments.done":
                arguments.append(json.loads(event.data.arguments))
    assert calls == ["Oslo"] and arguments == [{"city": "Oslo"}]
    assert run.final_output == "Snowing in Oslo, 3 degrees."
    assert "".join(deltas) == "Snowing in Oslo, 3 degrees." and len(deltas) > 1
    check_model_turns(served)
