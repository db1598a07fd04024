"""AgentRunner: conversations, the agent that last answered, concurrency, YAML."""

import asyncio

import pytest

from agentrig import Agent, AgentRunner, RunContext, ToolContext, tool
from agentrig.errors import ConfigError
from agentrig.items import Message, OutputText, new_id
from agentrig.llm.types import Completed, ItemDone, ModelRequest, ModelResponse
from agentrig.sessions import SQLiteSession
from agentrig.testing import ScriptedModel, text, tool_call
from agentrig.usage import Usage


class EchoInstructions:
    """Answers with its instructions and the last tool output it saw."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        await asyncio.sleep(0)
        last = request.items[-1]
        if last.type == "message":
            call = {
                "type": "function_call",
                "call_id": new_id("call"),
                "name": "remember",
                "arguments": "{}",
            }
            from agentrig.items import parse_item

            return ModelResponse(output=[parse_item(call)], usage=Usage(requests=1))
        answer = f"{request.instructions}; memory={last.output}"
        message = Message(id=new_id("msg"), role="assistant", content=[OutputText(text=answer)])
        return ModelResponse(output=[message], usage=Usage(requests=1))

    async def stream(self, request):
        response = await self.complete(request)
        for item in response.output:
            yield ItemDone(item=item)
        yield Completed(response=response)


@tool
async def remember(ctx: ToolContext) -> str:
    ctx.context.setdefault("seen", []).append(ctx.context["user"])
    await asyncio.sleep(0)
    return ",".join(ctx.context["seen"])


def instructions(ctx: RunContext, agent: Agent) -> str:
    return f"user={ctx.context['user']}"


async def test_two_hundred_concurrent_conversations_keep_their_own_context():
    agent = Agent(
        name="echo", instructions=instructions, model=EchoInstructions(), tools=[remember]
    )
    runner = AgentRunner([agent])
    shared = {"seen": []}
    results = await asyncio.gather(
        *(
            runner.run("hi", conversation_id=f"c{i}", context={**shared, "user": f"u{i}"})
            for i in range(200)
        )
    )
    for i, result in enumerate(results):
        assert result.final_output == f"user=u{i}; memory=u{i}"
        assert result.conversation_id == f"c{i}"
    assert shared == {"seen": []}


async def test_a_conversation_continues_with_the_agent_that_last_answered():
    billing_model = ScriptedModel([text("billing: first"), text("billing: second")])
    billing = Agent(name="billing", model=billing_model)
    triage_model = ScriptedModel([tool_call("transfer_to_billing"), text("triage here")])
    triage = Agent(name="triage", model=triage_model, handoffs=[billing])
    runner = AgentRunner([triage])
    first = await runner.run("invoice", conversation_id="c1")
    assert first.last_agent.name == "billing"
    second = await runner.run("and again", conversation_id="c1")
    assert second.final_output == "billing: second"
    assert len(triage_model.requests) == 1  # triage was not asked again
    history = [item.text for item in billing_model.requests[1].items if item.type == "message"]
    assert history == ["invoice", "billing: first", "and again"]
    other = await runner.run("new conversation")
    assert other.final_output == "triage here"  # a new conversation starts at the entry
    assert other.conversation_id and other.conversation_id != "c1"


async def test_runs_of_one_conversation_are_serialized():
    model = ScriptedModel([text("a"), text("b")])
    runner = AgentRunner([Agent(name="a", model=model)])
    await asyncio.gather(
        runner.run("one", conversation_id="x"), runner.run("two", conversation_id="x")
    )
    assert [len(r.items) for r in model.requests] == [1, 3]


async def test_sessions_can_be_any_backend(tmp_path):
    model = ScriptedModel([text("first"), text("second")])
    runner = AgentRunner(
        [
            Agent(name="a", model=model),
        ],
        sessions=lambda cid: SQLiteSession(cid, tmp_path / "s.db"),
    )
    await runner.run("one", conversation_id="k")
    await runner.run("two", conversation_id="k")
    assert len(await SQLiteSession("k", tmp_path / "s.db").get_items()) == 4


def test_registry_is_immutable_and_names_are_unique():
    a = Agent(name="a", model=ScriptedModel([]))
    runner = AgentRunner([a])
    with pytest.raises(TypeError):
        runner.agents["b"] = a  # type: ignore[index]
    with pytest.raises(ValueError, match="two different agents are named 'a'"):
        AgentRunner([a, Agent(name="a", model=ScriptedModel([]))])


YAML = """
agents:
  - name: triage
    description: Routes questions.
    instructions: Route the user to the right agent.
    model: fast
    handoffs: [maths]
  - name: maths
    description: Does arithmetic.
    instructions: Use the calculator.
    tools: [calculator, lookup]
    handoffs: [triage]
    model_settings: {temperature: 0.1}
"""


@tool
def lookup(key: str) -> str:
    return key


def test_agents_from_yaml(tmp_path):
    path = tmp_path / "agents.yaml"
    path.write_text(YAML)
    runner = AgentRunner.from_yaml(path, tools=[lookup])
    assert runner.entry.name == "triage" and set(runner.agents) == {"triage", "maths"}
    maths = runner.agents["maths"]
    assert [t.name for t in maths.tools] == ["calculator", "lookup"]
    assert maths.model == "default" and maths.model_settings.temperature == 0.1
    assert [h.agent_name for h in maths.handoffs] == ["triage"]
    assert runner.entry.model == "fast"


async def test_yaml_agents_run_with_scripted_models(tmp_path):
    path = tmp_path / "agents.yaml"
    path.write_text(YAML)
    runner = AgentRunner.from_yaml(path, tools=[lookup])
    scripted = {
        "triage": ScriptedModel([tool_call("transfer_to_maths")]),
        "maths": ScriptedModel([tool_call("calculator", expression="6*7"), text("42")]),
    }
    agents = [runner.agents[n].clone(model=scripted[n]) for n in ("triage", "maths")]
    result = await AgentRunner(agents).run("6 times 7?")
    assert result.final_output == "42" and result.last_agent.name == "maths"
    assert result.new_items[3].output == "42"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agents:\n  - name: a\n    tools: [nope]\n", "names the tool 'nope'"),
        ("agents:\n  - name: a\n    handoffs: [b]\n", "hands off to 'b'"),
        ("agents:\n  - name: a\n    colour: red\n", "colour"),
        ("agents: []\n", "at least 1"),
        ("agents: [\n", "cannot read agents"),
    ],
)
def test_bad_yaml_is_explained(tmp_path, text, message):
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        AgentRunner.from_yaml(path)
