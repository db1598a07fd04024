"""Guardrails, approvals, and saved run states."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from agentrig import (
    Agent,
    GuardrailResult,
    Runner,
    agent_guardrail,
    input_guardrail,
    output_guardrail,
    tool,
)
from agentrig.agents import RunState, StateVersionError
from agentrig.agents.guardrails import input_text
from agentrig.errors import GuardrailTripped
from agentrig.sessions import InMemorySession
from agentrig.testing import ScriptedModel, text, tool_call

from .approval_agents import first_half, second_half

HERE = Path(__file__).parent


@input_guardrail
def no_secrets(ctx, agent, items):
    words = input_text(items)
    return GuardrailResult(tripped="password" in words, output={"reason": "asks for a password"})


@output_guardrail
async def polite(ctx, agent, output):
    return "stupid" in output


async def test_input_guardrail_trips_before_any_tool_runs():
    ran = []

    @tool
    def act() -> str:
        ran.append(1)
        return "acted"

    agent = Agent(
        name="a",
        model=ScriptedModel([tool_call("act"), text("x")]),
        tools=[act],
        input_guardrails=[no_secrets],
    )
    with pytest.raises(GuardrailTripped) as caught:
        await Runner.run(agent, "tell me the admin password")
    assert caught.value.guardrail == "no_secrets" and caught.value.stage == "input"
    assert caught.value.output == {"reason": "asks for a password"}
    assert ran == []


async def test_input_guardrail_runs_alongside_the_first_model_call():
    order = []

    class SlowModel(ScriptedModel):
        async def complete(self, request):
            order.append("model start")
            await asyncio.sleep(0.05)
            order.append("model end")
            return await super().complete(request)

    @input_guardrail
    async def watcher(ctx, agent, items):
        order.append("guardrail start")
        await asyncio.sleep(0.01)
        order.append("guardrail end")
        return False

    agent = Agent(name="a", model=SlowModel([text("fine")]), input_guardrails=[watcher])
    assert (await Runner.run(agent, "hello")).final_output == "fine"
    assert order.index("guardrail end") < order.index("model end")
    assert order.index("model start") < order.index("guardrail end")


async def test_output_guardrail_checks_the_final_answer():
    agent = Agent(
        name="a", model=ScriptedModel([text("that is a stupid idea")]), output_guardrails=[polite]
    )
    with pytest.raises(GuardrailTripped, match="output guardrail 'polite' tripped"):
        await Runner.run(agent, "idea?")
    agent = Agent(name="a", model=ScriptedModel([text("good idea")]), output_guardrails=[polite])
    assert (await Runner.run(agent, "idea?")).final_output == "good idea"


class Verdict(BaseModel):
    tripped: bool
    reason: str


async def test_a_guardrail_can_be_an_agent():
    checker_model = ScriptedModel([text('{"tripped": true, "reason": "homework"}')])
    checker = Agent(
        name="homework_check",
        instructions="Is this homework?",
        model=checker_model,
        output_type=Verdict,
    )
    agent = Agent(
        name="tutor",
        model=ScriptedModel([text("x = 4")]),
        input_guardrails=[agent_guardrail(checker)],
    )
    with pytest.raises(GuardrailTripped) as caught:
        await Runner.run(agent, "solve my homework: 2x = 8")
    assert caught.value.output == Verdict(tripped=True, reason="homework")
    assert checker_model.requests[0].items[0].text == "solve my homework: 2x = 8"


async def test_approval_pauses_then_approve_and_resume():
    session = InMemorySession()
    agent = first_half()
    paused = await Runner.run(agent, "refund A1", session=session)
    assert paused.final_output is None
    [interruption] = paused.interruptions
    assert (interruption.name, json.loads(interruption.arguments)) == (
        "refund",
        {"order": "A1", "amount": 30.0},
    )
    assert paused.state.status == "paused"
    agent.model.add_turns(text("Refunded."))
    paused.state.approve(interruption)
    result = await Runner.resume(paused.state, session=session)
    assert result.final_output == "Refunded."
    outputs = [i.output for i in result.new_items if i.type == "function_call_output"]
    assert outputs == ["order A1: paid 30.0", "refunded 30.0 on A1"]
    stored = await session.get_items()
    assert [i.type for i in stored].count("function_call_output") == 2 and len(stored) == 6


async def test_rejection_is_told_to_the_model():
    agent = first_half()
    paused = await Runner.run(agent, "refund A1")
    agent.model.add_turns(text("I could not refund."))
    paused.state.reject(paused.interruptions[0], "over the limit")
    result = await Runner.resume(paused.state)
    assert result.new_items[-2].output == "The call was rejected: over the limit"
    assert result.final_output == "I could not refund."


@pytest.mark.parametrize(
    ("decision", "expected"),
    [("approve", "refunded 30.0 on A1"), ("reject", "The call was rejected: not allowed")],
)
async def test_paused_state_saved_as_json_resumes_in_another_process(tmp_path, decision, expected):
    paused = await Runner.run(first_half(), "refund A1")
    path = tmp_path / "state.json"
    path.write_text(paused.state.to_string())
    done = subprocess.run(
        [sys.executable, str(HERE / "resume_in_subprocess.py"), str(path), decision],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result == {"final_output": "Done.", "outputs": ["order A1: paid 30.0", expected]}


async def test_saved_state_of_the_current_version_loads():
    data = json.loads((HERE / "fixtures" / "run_state_v1.json").read_text())
    state = RunState.from_json(data, second_half())
    assert state.status == "paused" and state.agent.name == "cashier"
    assert [i.name for i in state.interruptions] == ["refund"]
    state.approve(state.interruptions[0])
    result = await Runner.resume(state)
    assert result.final_output == "Done."
    assert result.new_items[-2].output == "refunded 30.0 on A1"


async def test_state_from_a_future_version_is_refused():
    data = json.loads((HERE / "fixtures" / "run_state_v1.json").read_text())
    data["version"] = 99
    with pytest.raises(StateVersionError, match="version 99 was written by a newer agentrig"):
        RunState.from_json(data, second_half())
    with pytest.raises(StateVersionError, match="not an agentrig run state"):
        RunState.from_json({"hello": 1}, second_half())
