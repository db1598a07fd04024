"""Crews: human review, tool approvals, pause and resume in another process, cost."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from agentrig import Agent, ModelRouter, tool
from agentrig.agents import StateVersionError
from agentrig.crews import Crew, CrewState, Task
from agentrig.errors import AgentrigError
from agentrig.llm.cost import Price
from agentrig.store.usage import SQLUsageLedger, usage_summary
from agentrig.testing import ScriptedModel, text, tool_call

from .helpers import scripted_agent, tool_outputs
from .review_crew import build

HERE = Path(__file__).parent


def resume_elsewhere(path: Path, action: str, feedback: str = "", write: list[str] = ()) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE / "resume_crew.py"), str(path), action, feedback,
         json.dumps(list(write))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_human_review_pauses_and_resumes_in_new_processes(tmp_path):
    crew, _, _ = build(["facts about bees"], ["draft 1"])
    paused = await crew.kickoff({"topic": "bees"})
    assert paused.status == "paused" and paused.output == ""
    [waiting] = paused.interruptions
    assert (waiting.task, waiting.kind, waiting.output) == ("write", "review", "draft 1")
    assert [o.status for o in paused.tasks_output] == ["completed", "awaiting_review"]
    assert paused.usage.requests == 2  # what finished is kept
    path = tmp_path / "state.json"
    path.write_text(paused.state.to_string())

    revised = resume_elsewhere(path, "revise", "shorter, please", ["draft 2"])
    assert revised["status"] == "paused" and revised["research_calls"] == 0
    assert revised["interruptions"] == [["write", "review", "draft 2"]]
    [request] = revised["write_sent"]
    assert "draft 1" in request and "shorter, please" in request
    assert revised["attempts"] == [1, 2] and revised["requests"] == 3

    approved = resume_elsewhere(path, "approve")
    assert approved["status"] == "completed" and approved["output"] == "draft 2"
    assert approved["statuses"] == ["completed", "completed"]
    assert approved["research_calls"] == 0 and approved["write_sent"] == []
    assert approved["requests"] == 3


async def test_decisions_are_checked_and_states_are_versioned():
    crew, _, _ = build(["facts"], ["draft"])
    state = (await crew.kickoff({"topic": "t"})).state
    with pytest.raises(AgentrigError, match="'research' is completed, not waiting"):
        state.approve("research")
    with pytest.raises(AgentrigError, match="no task 'nope'"):
        state.revise("nope", "x")
    with pytest.raises(ValueError, match="needs feedback"):
        state.revise("write", " ")
    data = state.to_json()
    with pytest.raises(StateVersionError, match="newer agentrig"):
        CrewState.from_json({**data, "version": 99})
    with pytest.raises(StateVersionError, match="not an agentrig crew state"):
        CrewState.from_string("[1, 2]")
    other, _, _ = build([], [])
    other.name = "another"
    with pytest.raises(AgentrigError, match="of crew 'review', not 'another'"):
        await other.resume(CrewState.from_json(data))


@tool(needs_approval=True)
def publish(title: str) -> str:
    """Publish a post."""
    return f"published {title}"


@pytest.mark.parametrize("decision", ["approve", "revise"])
async def test_a_tool_needing_approval_pauses_the_crew(decision):
    model = ScriptedModel([tool_call("publish", title="Bees"), text("finished")])
    agent = Agent(name="publisher", instructions="Publish.", model=model, tools=[publish])
    after, after_model = scripted_agent("after", text("after done"))
    crew = Crew("pub", tasks=[Task("Publish", "x", agent=agent), Task("Next", "x", agent=after)])
    paused = await crew.kickoff()
    [waiting] = paused.interruptions
    assert waiting.kind == "approval" and waiting.tool_calls[0]["name"] == "publish"
    assert after_model.requests == []
    state = CrewState.from_string(paused.state.to_string())
    if decision == "approve":
        state.approve("task_1")
    else:
        state.revise("task_1", "not today")
    result = await crew.resume(state)
    assert result.status == "completed" and result.output == "after done"
    told = tool_outputs(model.requests[-1])[0]
    if decision == "approve":
        assert told == "published Bees"
    else:
        assert "not today" in told and "published" not in told
    assert result.tasks_output[0].usage.requests == 2


async def test_crew_cost_equals_the_usage_rows_in_the_store(database):
    router = ModelRouter(ledger=SQLUsageLedger(database))
    price = Price(input=Decimal(3), output=Decimal(7))
    for name in ("research", "write", "manager"):
        model = ScriptedModel([text(f"{name} answer with words")] * 3)
        router.register(f"scripted/{name}", model, price=price)
    router.add_role("manager", ["scripted/manager"])
    researcher = Agent(name="researcher", role="R", goal="g", backstory="b",
                       model="scripted/research")  # fmt: skip
    writer = Agent(name="writer", role="W", goal="g", backstory="b", model="scripted/write")
    crew = Crew(
        agents=[researcher, writer],
        tasks=[Task("Research", "x", agent=researcher), Task("Write", "x", agent=writer)],
        router=router,
    )
    result = await crew.kickoff()
    hierarchical = Crew(agents=[researcher, writer], tasks=[Task("Plan", "x")],
                        process="hierarchical", router=router)  # fmt: skip
    managed = await hierarchical.kickoff()
    await router.aclose()
    rows = await usage_summary(database)
    assert result.cost_micros > 0 and managed.cost_micros > 0
    assert sum(row.cost_micros for row in rows) == result.cost_micros + managed.cost_micros
    assert sum(row.calls for row in rows) == result.usage.requests + managed.usage.requests
    assert result.cost_micros == sum(o.cost_micros for o in result.tasks_output)
    assert {row.role for row in rows} == {"scripted/research", "scripted/write", "manager"}


async def test_max_cost_stops_the_crew_with_its_partial_results():
    router = ModelRouter()
    price = Price(input=Decimal(1000), output=Decimal(1000))
    router.register("scripted/dear", ScriptedModel([text("an expensive answer")] * 5), price=price)
    agents = [Agent(name=f"a{n}", instructions="i", model="scripted/dear") for n in range(3)]
    crew = Crew(tasks=[Task(f"t{n}", "x", agent=a) for n, a in enumerate(agents)],
                router=router, max_cost_usd=0.001)  # fmt: skip
    result = await crew.kickoff()
    assert result.status == "failed" and "max_cost_usd" in result.error
    assert result.reason == "budget" and result.to_json()["reason"] == "budget"
    statuses = [o.status for o in result.tasks_output]
    assert statuses[0] == "completed" and "failed" in statuses and statuses[-1] == "skipped"
    assert result.cost_micros >= 1000 and result.tasks_output[0].raw == "an expensive answer"


async def test_the_routers_budget_stops_the_crew_too():
    from agentrig.config import LLMSettings
    from agentrig.llm.ledger import InMemoryLedger

    budgets = {"default": {"monthly_usd": 0.0005}}
    router = ModelRouter(LLMSettings(budgets=budgets), ledger=InMemoryLedger())
    price = Price(input=Decimal(1000), output=Decimal(1000))
    router.register("scripted/dear", ScriptedModel([text("paid for")] * 5), price=price)
    router.add_role("default", ["scripted/dear"])
    agents = [Agent(name=f"a{n}", instructions="i", model="default") for n in range(3)]
    crew = Crew(tasks=[Task(f"t{n}", "x", agent=a) for n, a in enumerate(agents)], router=router)
    result = await crew.kickoff()
    assert result.status == "failed" and result.reason == "budget"
    assert "monthly" in result.error and "'default'" in result.error
    assert [o.status for o in result.tasks_output] == ["completed", "failed", "skipped"]
    assert result.tasks_output[0].raw == "paid for" and result.cost_micros > 500
    resumed = CrewState.from_string(result.state.to_string())
    assert resumed.reason == "budget"
