"""Crews: the hierarchical process, delegation and its loop guard, the crew's limits."""

from __future__ import annotations

import asyncio

from agentrig import Agent, ModelRouter
from agentrig.crews import Crew, Process, Task, TaskDelegated
from agentrig.testing import ScriptedModel, text, tool_call

from .helpers import scripted_agent, sent, tool_outputs


def delegate(coworker: str, task: str = "dig", context: str = "all we know"):
    return tool_call("delegate_work", coworker=coworker, task=task, context=context)


async def test_the_manager_is_kept_to_its_coworkers_and_its_delegation_limit():
    researcher, research_model = scripted_agent(
        "researcher", text("fact 1"), text("fact 2"), text("fact 3"), allow_delegation=True
    )
    writer, _ = scripted_agent("writer")
    manager_model = ScriptedModel(
        [
            delegate("manager"),  # itself
            delegate("Nobody Special"),  # not in the crew
            delegate("researcher", "find fact 1"),
            tool_call("ask_question", coworker="'RESEARCHER'", question="fact 2?", context="c"),
            delegate("Researcher", "find fact 3"),  # by role
            delegate("writer", "one more"),  # past the limit
            text("Report: fact 1, fact 2, fact 3"),
        ]
    )
    manager = Agent(name="manager", instructions="Manage.", model=manager_model)
    crew = Crew(
        agents=[researcher, writer],
        tasks=[Task("Research {topic}", "A report", name="report")],
        process=Process.hierarchical,
        manager=manager,
        max_delegations=3,
    )
    stream = crew.kickoff_streamed({"topic": "bees"})
    events = [event async for event in stream.events()]
    result = stream.result
    assert result.status == "completed" and result.output == "Report: fact 1, fact 2, fact 3"
    outputs = tool_outputs(manager_model.requests[-1])
    assert outputs[0].startswith("Error: 'manager' is not a coworker")
    assert "researcher (Researcher), writer (Writer)" in outputs[0]
    assert outputs[1].startswith("Error: 'Nobody Special' is not a coworker")
    assert outputs[2:5] == ["fact 1", "fact 2", "fact 3"]
    assert "used its 3 delegations" in outputs[5]
    assert [(e.coworker, e.kind) for e in events if isinstance(e, TaskDelegated)] == [
        ("researcher", "delegate_work"), ("researcher", "ask_question"),
        ("researcher", "delegate_work"),
    ]  # fmt: skip
    assert "find fact 1" in sent(research_model.requests[0])
    assert "all we know" in sent(research_model.requests[0])
    offered = {spec.name for request in research_model.requests for spec in request.tools}
    assert offered == set()  # the coworker cannot delegate back, even with allow_delegation
    [output] = result.tasks_output
    assert output.agent == "manager" and output.delegations == 3
    assert output.usage.requests == 7 + 3  # the manager's calls and the coworker's


async def test_a_manager_that_only_delegates_still_ends():
    coworker, _ = scripted_agent("helper", *[text("again") for _ in range(50)])
    manager_model = ScriptedModel([delegate("helper") for _ in range(100)])
    manager = Agent(name="boss", instructions="Manage.", model=manager_model)
    crew = Crew(
        agents=[coworker],
        tasks=[Task("one", "x", name="one", max_turns=6), Task("two", "x", name="two")],
        process="hierarchical",
        manager=manager,
    )
    result = await asyncio.wait_for(crew.kickoff(), 10)
    assert result.status == "failed"
    first, second = result.tasks_output
    assert first.status == "failed" and "MaxTurnsExceeded" in first.error
    assert first.delegations == 3 and second.status == "skipped"
    assert len(manager_model.requests) == 6


async def test_the_crews_total_turns_are_bounded_with_partial_results():
    a, _ = scripted_agent("a", text("first done"))
    b, _ = scripted_agent("b", *[tool_call("nothing_here") for _ in range(20)])
    c, c_model = scripted_agent("c")
    crew = Crew(
        tasks=[Task("one", "x", agent=a), Task("two", "x", agent=b, max_turns=50),
               Task("three", "x", agent=c)],
        max_turns=5,
    )  # fmt: skip
    result = await crew.kickoff()
    assert result.status == "failed" and "max_turns is 5" in result.error
    assert result.reason == "turns" and result.state.reason == "turns"
    assert [o.status for o in result.tasks_output] == ["completed", "failed", "skipped"]
    assert result.tasks_output[0].raw == "first done" and c_model.requests == []
    assert result.usage.requests == 5


async def test_the_default_manager_comes_from_the_routers_manager_role():
    router = ModelRouter()
    manager_model = ScriptedModel([delegate("analyst", "count"), text("42, checked")])
    router.register("scripted/manager", manager_model)
    router.add_role("manager", ["scripted/manager"])
    analyst, _ = scripted_agent("analyst", text("42"))
    crew = Crew(agents=[analyst], tasks=[Task("Count", "a number")], process="hierarchical",
                router=router)  # fmt: skip
    result = await crew.kickoff()
    assert result.output == "42, checked" and result.tasks_output[0].agent == "manager"
    instructions = manager_model.requests[0].instructions
    assert instructions.startswith("You are Crew Manager.")
    specs = {spec.name: spec.description for spec in manager_model.requests[0].tools}
    assert set(specs) == {"delegate_work", "ask_question"}
    assert "analyst (Analyst)" in specs["delegate_work"]


async def test_agents_allowed_to_delegate_ask_only_their_crew_mates():
    writer_model = ScriptedModel(
        [tool_call("ask_question", coworker="editor", question="tone?", context="a post"),
         tool_call("ask_question", coworker="writer", question="me?", context=""),
         text("post, in a friendly tone")]
    )  # fmt: skip
    writer = Agent(name="writer", role="Writer", goal="g", backstory="b", model=writer_model,
                   allow_delegation=True)  # fmt: skip
    editor, editor_model = scripted_agent("editor", text("friendly"))
    crew = Crew(agents=[writer, editor], tasks=[Task("Write", "a post", agent=writer)])
    result = await crew.kickoff()
    assert result.output == "post, in a friendly tone"
    outputs = tool_outputs(writer_model.requests[-1])
    assert outputs[0] == "friendly"
    assert (
        outputs[1]
        == "Error: 'writer' is not a coworker you can ask. Choose one of: editor (Editor)."
    )
    assert "tone?" in sent(editor_model.requests[0])
    assert result.tasks_output[0].delegations == 1
    plain, plain_model = scripted_agent("plain", text("done"))
    await Crew(agents=[plain, editor], tasks=[Task("x", "x", agent=plain)]).kickoff()
    assert plain_model.requests[0].tools == []
