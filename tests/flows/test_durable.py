"""Durable flows: the record at every step boundary, pauses for people, resume anywhere,
and a run killed with SIGKILL in the middle of a state resumed in a new process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from agentrig import Agent, tool
from agentrig.agents import StateVersionError
from agentrig.crews import Crew, Task
from agentrig.errors import AgentrigError
from agentrig.flows import Flow, FlowRun, Human, NotResumable, OnSuccess
from agentrig.store.flow_runs import FlowRunStore
from agentrig.testing import ScriptedModel, text, tool_call
from tests.conftest import fresh_postgres_database

HERE = Path(__file__).parent


class Ticket(BaseModel):
    question: str
    answer: str = ""


def support_flow(reviewed: Crew | None = None) -> Flow:
    flow = Flow("support", variables=Ticket)
    flow.state("triage", run=lambda ctx: f"triaged: {ctx.variables.question}", initial=True)
    flow.state("escalation", run=Human("A customer asks: {question}"), output_to="answer")
    flow.state("resolved", final=True)
    flow.transition("triage", "escalation", when=OnSuccess())
    flow.transition("escalation", "resolved", when=OnSuccess())
    return flow


async def test_the_record_is_written_at_every_step_boundary(database):
    store = FlowRunStore(database)
    seen = []

    async def look(ctx):
        stored = await store.get(ctx.run_id)
        seen.append((stored.status, stored.current_state, stored.steps))
        return {"n": ctx.variables["n"] + 1}

    flow = Flow("steps", variables={"n": 0})
    for index, name in enumerate(("a", "b", "c")):
        flow.state(name, run=look, initial=index == 0)
    flow.state("end", final=True)
    flow.transition("a", "b").transition("b", "c").transition("c", "end")
    result = await flow.run(store=store, tenant="t1")
    assert seen == [("running", "a", 0), ("running", "b", 1), ("running", "c", 2)]
    stored = await store.get(result.run_id, "t1")
    assert stored.status == "completed" and stored.current_state == "end" and stored.steps == 3
    assert stored.finished_at is not None and stored.flow == "steps"
    assert FlowRun.from_json(stored.data).variables == {"n": 3}
    assert await store.get(result.run_id, "t2") is None  # another tenant's
    assert [r.id for r in await store.list("t1", status="completed")] == [result.run_id]
    assert await store.list("t1", status="paused") == []


async def test_a_human_step_pauses_the_run_until_someone_replies(database):
    store = FlowRunStore(database)
    flow = support_flow()
    paused = await flow.run({"question": "Where is my refund?"}, store=store)
    assert paused.status == "paused" and paused.final_state == "escalation"
    [waiting] = paused.interruptions
    assert waiting.kind == "human" and waiting.output == "A customer asks: Where is my refund?"
    assert (await store.get(paused.run_id)).status == "paused"
    [listed] = await flow.runs(status="paused", store=store)
    assert listed.run_id == paused.run_id
    with pytest.raises(NotResumable, match=r"still waits for decisions on \['escalation'\]"):
        await flow.resume(paused.run_id, store=store)
    run = await flow.get_run(paused.run_id, store=store)
    with pytest.raises(AgentrigError, match="answer it with a reply"):
        run.approve()
    with pytest.raises(AgentrigError, match="nothing named 'triage' waits"):
        run.reply("x", target="triage")
    run = FlowRun.from_string(run.to_string())  # hours later, in another process
    run.reply("Refunded on Monday.")
    await flow.save_run(run, store=store)
    done = await flow.resume(paused.run_id, store=store)
    assert done.status == "completed" and done.output == "Refunded on Monday."
    assert done.variables.answer == "Refunded on Monday."
    assert [(s.state, s.visit) for s in done.history] == [("triage", 1), ("escalation", 1)]
    with pytest.raises(NotResumable, match="has completed already"):
        await flow.resume(paused.run_id, store=store)
    with pytest.raises(AgentrigError, match="is completed, not paused"):
        done.run.reply("again")


async def test_a_crew_review_inside_a_state_pauses_the_flow_and_resumes_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    research = ScriptedModel([text("research notes")])
    writing = ScriptedModel([text("first draft"), text("second draft")])
    researcher = Agent(name="researcher", role="R", goal="g", backstory="b", model=research)
    writer = Agent(name="writer", role="W", goal="g", backstory="b", model=writing)
    draft = Task("Write", "a draft", agent=writer, name="draft", human_input=True)
    crew = Crew("write", agents=[writer], tasks=[draft])
    flow = Flow("content", database_url=url)
    flow.state("research", run=researcher, initial=True)
    flow.state("writing", run=crew)
    flow.state("published", final=True)
    flow.transition("research", "writing", when=OnSuccess())
    flow.transition("writing", "published", when=OnSuccess())
    paused = await flow.run({})
    [waiting] = paused.interruptions
    assert (waiting.state, waiting.kind, waiting.target, waiting.output) == (
        "writing", "review", "draft", "first draft"
    )  # fmt: skip
    assert paused.cost_micros == paused.run.cost_micros and paused.usage.requests == 2
    run = await flow.get_run(paused.run_id)
    run.revise("draft", "Shorter, please.")
    assert run.waiting == []
    await flow.save_run(run)
    again = await flow.resume(paused.run_id)
    assert again.status == "paused" and again.interruptions[0].output == "second draft"
    assert "Shorter, please." in str(writing.requests[-1].items)
    run = await flow.get_run(paused.run_id)
    run.approve("draft")
    await flow.save_run(run)
    done = await flow.resume(run.run_id)
    assert done.status == "completed" and done.output == "second draft"
    assert len(research.requests) == 1  # the finished state is not run again
    assert [s.state for s in done.history] == ["research", "writing"]
    assert done.history[1].usage.requests == 2  # both drafts, counted once each
    assert done.usage.requests == 3


@tool(needs_approval=True)
def refund(amount: int) -> str:
    """Refund the customer."""
    return f"refunded {amount}"


@pytest.mark.parametrize("decision", ["approve", "revise"])
async def test_an_agent_tool_approval_pauses_the_flow(decision, tmp_path):
    model = ScriptedModel([tool_call("refund", amount=20), text("handled")])
    agent = Agent(name="clerk", instructions="Handle it.", model=model, tools=[refund])
    flow = Flow("refunds", database_url=f"sqlite:///{tmp_path / 'runs.db'}")
    flow.state("handle", run=agent, initial=True)
    flow.state("done", final=True)
    flow.transition("handle", "done", when=OnSuccess())
    paused = await flow.run({})
    [waiting] = paused.interruptions
    assert waiting.kind == "approval" and waiting.tool_calls[0]["name"] == "refund"
    run = await flow.get_run(paused.run_id)
    if decision == "approve":
        run.approve(waiting.target)
    else:
        run.revise(waiting.target, "not over 10")
    await flow.save_run(run)
    done = await flow.resume(run.run_id)
    assert done.status == "completed" and done.output == "handled"
    told = next(i for i in model.requests[-1].items if getattr(i, "output", None)).output
    assert ("refunded 20" in told) == (decision == "approve")
    assert done.history[0].usage.requests == 2


def test_a_run_record_is_versioned():
    run = FlowRun("f", {}, {}, "a")
    assert FlowRun.from_string(run.to_string()) == run
    with pytest.raises(StateVersionError, match="not an agentrig flow run"):
        FlowRun.from_json({"kind": "crew_state"})
    with pytest.raises(StateVersionError, match="written by a newer agentrig"):
        FlowRun.from_json({**run.to_json(), "version": 99})
    with pytest.raises(StateVersionError, match="invalid JSON"):
        FlowRun.from_string("{")


async def test_resume_refuses_another_flows_run_and_a_changed_definition(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    flow = Flow("one", database_url=url)
    flow.state("a", run=Human("?"), initial=True)
    flow.state("end", final=True)
    flow.transition("a", "end")
    paused = await flow.run()
    other = Flow("two", database_url=url)
    other.state("x", run=Human("?"), initial=True)
    other.state("end", final=True)
    other.transition("x", "end")
    with pytest.raises(NotResumable, match="no stored run"):
        await other.resume(paused.run_id)
    with pytest.raises(NotResumable, match="is of flow 'one'"):
        await other.resume(paused.run)
    renamed = Flow("one", database_url=url)
    renamed.state("b", run=Human("?"), initial=True)
    renamed.state("end", final=True)
    renamed.transition("b", "end")
    paused.run.reply("ok")
    with pytest.raises(NotResumable, match="stands at state 'a', which flow 'one' no longer"):
        await renamed.resume(paused.run)


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the flow never reached the review"
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request, tmp_path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
    else:
        async with fresh_postgres_database() as postgres:
            yield postgres


async def test_a_run_killed_in_the_middle_of_a_state_resumes_in_a_new_process(url, tmp_path):
    marker = tmp_path / "in-review"
    script = str(HERE / "durable_flow.py")
    process = subprocess.Popen(
        [sys.executable, script, "run", url, str(marker)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        run_id = json.loads(process.stdout.readline())["run_id"]
        wait_for(marker, process)
        os.killpg(process.pid, signal.SIGKILL)  # in the middle of "review"
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    resumed = subprocess.run([sys.executable, script, "resume", url, run_id],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    reference = json.loads(
        subprocess.run(
            [sys.executable, script, "reference"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    )
    assert result["status"] == "completed" and result["output"] == "review answer in a few words"
    assert [s["state"] for s in result["history"]] == ["research", "writing", "review"]
    assert [s["status"] for s in result["history"]] == ["completed"] * 3
    # research's and writing's models had no turns left: a call would have failed the step
    assert result["usage"] == reference["usage"] and result["usage"]["requests"] == 3
    assert result["cost_usd"] == reference["cost_usd"] > 0
    assert sum(s["cost_usd"] for s in result["history"]) == pytest.approx(result["cost_usd"])


async def test_an_error_with_a_nul_is_stored_on_every_database(database):
    def broken(ctx):
        raise ValueError("bad \x00 byte")

    store = FlowRunStore(database)
    flow = Flow("nul")
    flow.state("end", run=broken, initial=True, final=True)
    result = await flow.run(store=store)
    assert result.status == "failed" and result.error == "state 'end': bad \x00 byte"
    stored = await store.get(result.run_id)  # the column holds it escaped: PostgreSQL
    assert stored.error == result.error  # cannot hold a NUL, the record keeps it exact
    assert FlowRun.from_json(stored.data).error == result.error


async def test_without_a_database_url_runs_go_to_the_configured_database(tmp_path):
    flow = Flow("plain")  # the test's data directory (AGENTRIG_DATA_DIR) holds agentrig.db
    flow.state("only", run=lambda ctx: "done", initial=True, final=True)
    first = await flow.run()
    second = await flow.run()
    assert flow.database_url.endswith(str(tmp_path / "data" / "agentrig.db"))
    assert (tmp_path / "data" / "agentrig.db").exists()
    assert {run.run_id for run in await flow.runs()} == {first.run_id, second.run_id}
