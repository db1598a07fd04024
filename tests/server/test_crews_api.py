"""Crews served: ``model: "crew:<name>"`` through the official ``openai`` SDK (plain,
streamed, background, paused for a review), and ``/api/v1/crews`` runs as jobs of the
server's own queue, reviewed and resumed, with totals equal to the usage rows. The model
is the scripted upstream (``fake_server``), so every call goes through the router."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import text

from agentrig.store import Database
from agentrig.store.jobs import JobStore
from agentrig.testing.fake_openai_server import Hang, Reply
from tests.server.conftest import Served, serve
from tests.server.openresponses import validate_event, validate_response

AGENTS = """
writer:
  role: Technical Writer
  goal: Write clear text about {topic}
  backstory: You have written manuals for twenty years.
"""
BRIEF_TASKS = """
outline:
  description: Outline a short note about {input}.
  expected_output: Three bullet points.
  agent: writer
write:
  description: Write the note from the outline.
  expected_output: One paragraph.
  agent: writer
  context: [outline]
"""
REVIEW_TASKS = """
draft:
  description: Draft a title for a post about {topic}.
  expected_output: A title.
  agent: writer
  human_input: true
polish:
  description: Polish the approved title.
  expected_output: The final title.
  agent: writer
"""


def write_crews(folder: Path) -> Path:
    for name, tasks, agents, options in (
        ("brief", BRIEF_TASKS, AGENTS.replace("{topic}", "{input}"), ""),
        ("review", REVIEW_TASKS, AGENTS, ""),
        ("tight", BRIEF_TASKS, AGENTS.replace("{topic}", "{input}"), "max_cost_usd: 0.000001\n"),
    ):
        (folder / name).mkdir(parents=True)
        (folder / name / "crew.yaml").write_text(f"name: {name}\nprocess: sequential\n{options}")
        (folder / name / "agents.yaml").write_text(agents)
        (folder / name / "tasks.yaml").write_text(tasks)
    return folder


@pytest.fixture
def crews(tmp_path, database_url, fake_server):
    folder = write_crews(tmp_path / "crews")
    live, settings, app = serve(tmp_path, database_url, fake_server, crews_dir=str(folder))
    with live:
        yield Served(live.url, fake_server, settings, app)


def prompts(fake) -> list[str]:
    """The last user message of every model request the upstream received."""
    return [
        next(m["content"] for m in reversed(r["messages"]) if m["role"] == "user")
        for r in fake.requests
    ]


def wait_for(url: str, done, timeout: float = 30.0, headers=None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(url, headers=headers).json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


async def crew_response_job(settings, response_id: str):
    """The ``crew_response`` job that completes the background response ``response_id``."""
    database = Database(settings.effective_database_url)
    try:
        async with database.engine.connect() as connection:
            query = text("SELECT id, payload FROM jobs WHERE type = 'crew_response'")
            rows = (await connection.execute(query)).all()
        (job_id,) = [i for i, payload in rows if json.loads(payload)["response_id"] == response_id]
        return await JobStore(database).get(job_id)
    finally:
        await database.aclose()


def usage_rows(database_url: str, calls: int) -> tuple[int, int, int]:
    """Token and cost totals of the usage rows, once ``calls`` rows are written (the
    ledger writes them in batches, a quarter of a second apart)."""

    async def read():
        database = Database(database_url)
        try:
            async with database.engine.connect() as connection:
                query = "SELECT COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_micros) "
                row = (await connection.execute(text(query + "FROM llm_usage"))).one()
                return tuple(int(v or 0) for v in row)
        finally:
            await database.aclose()

    deadline = time.monotonic() + 10
    while (totals := asyncio.run(read()))[0] < calls and time.monotonic() < deadline:
        time.sleep(0.1)
    assert totals[0] == calls
    return totals[1:]


def test_a_crew_answers_through_the_openai_sdk(crews):
    crews.fake.script(Reply(text="- sun\n- panels\n- storage"), Reply(text="Solar power works."))
    client = crews.openai()
    response = client.responses.create(model="crew:brief", input="solar power")
    assert response.status == "completed"
    assert response.output_text == "Solar power works."
    validate_response(response.model_dump(mode="json", exclude_unset=True))
    first, second = prompts(crews.fake)
    assert "Outline a short note about solar power." in first
    assert "- sun" in second  # the outline reached the write task as its context
    system = crews.fake.requests[0]["messages"][0]["content"]
    assert "You are Technical Writer." in system and "solar power" in system
    progress = [item for item in response.output if item.type == "reasoning"]
    lines = [item.summary[0].text for item in progress]
    assert any(line.startswith("▶ outline: writer") for line in lines)
    assert any(line.startswith("■ write: completed") for line in lines)
    assert response.output[-1].type == "message"
    assert response.usage.input_tokens == 20 and response.usage.output_tokens == 10
    assert "crew:brief" in [model.id for model in client.models.list().data]
    stored = client.responses.retrieve(response.id)
    assert stored.output_text == "Solar power works."


def test_a_crew_streams_its_progress_as_valid_events(crews):
    crews.fake.script(Reply(text="outline"), Reply(text="The note."))
    client = crews.openai()
    events = list(client.responses.create(model="crew:brief", input="wind", stream=True))
    for event in events:
        validate_event(event.model_dump(mode="json", exclude_unset=True))
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [item.type for item in done][-1] == "message"
    summaries = [item.summary[0].text for item in done if item.type == "reasoning"]
    assert summaries[0].startswith("▶ outline") and summaries[-1].startswith("■ write")
    assert events[-1].response.output_text == "The note."


def test_named_inputs_as_json_and_a_missing_input_is_a_400(crews):
    client = crews.openai()
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="crew:review", input="no topic here")
    assert "'topic'" in refused.value.message and refused.value.code == "missing_input"
    with pytest.raises(openai.BadRequestError) as unknown:
        client.responses.create(model="crew:nosuch", input="x")
    assert "brief" in unknown.value.message and unknown.value.code == "model_not_found"
    assert crews.fake.requests == []  # nothing reached a model


def test_a_paused_crew_response_is_resumed_as_a_run(crews):
    crews.fake.script(Reply(text="A Title"), Reply(text="The Final Title"))
    client = crews.openai()
    response = client.responses.create(model="crew:review", input=json.dumps({"topic": "bees"}))
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "crew_paused"
    run_id = response.output_text.split("/api/v1/crews/runs/")[1].split("/")[0]
    runs = f"{crews.url}/api/v1/crews/runs"
    run = httpx.get(f"{runs}/{run_id}").json()
    assert run["status"] == "paused" and run["interruptions"][0]["output"] == "A Title"
    approved = httpx.post(f"{runs}/{run_id}/approve", json={"task": "draft"})
    assert approved.status_code == 202, approved.text
    run = wait_for(f"{runs}/{run_id}", lambda r: r["status"] not in ("queued", "running"))
    assert run["status"] == "completed", run
    assert run["output"] == "The Final Title"
    assert [t["attempts"] for t in run["tasks"]] == [1, 1]  # the draft was not run again
    assert len(crews.fake.requests) == 2


def test_a_crew_over_its_budget_fails_with_its_progress(crews):
    crews.fake.script(Reply(text="the outline"))
    client = crews.openai()
    response = client.responses.create(model="crew:tight", input="gold")
    assert response.status == "failed"
    assert response.error.code == "budget_exceeded" and "max_cost_usd" in response.error.message
    lines = [item.summary[0].text for item in response.output if item.type == "reasoning"]
    assert any(line.startswith("■ outline: completed") for line in lines)
    assert any(line.startswith("■ write: failed") for line in lines)
    assert len(crews.fake.requests) == 1  # the second call was refused before it was made
    validate_response(response.model_dump(mode="json", exclude_unset=True))


def test_background_crew_response(crews):
    crews.fake.script(Reply(text="o"), Reply(text="Done in the background."))
    client = crews.openai()
    queued = client.responses.create(model="crew:brief", input="tides", background=True)
    assert queued.status in ("queued", "in_progress")
    deadline = time.monotonic() + 30
    while (found := client.responses.retrieve(queued.id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert found.status == "completed" and found.output_text == "Done in the background."
    job = asyncio.run(crew_response_job(crews.settings, queued.id))
    assert job.status == "succeeded" and job.result["status"] == "completed"


def test_a_background_crew_response_is_cancelled(crews):
    crews.fake.script(Hang(4))
    client = crews.openai()
    queued = client.responses.create(model="crew:brief", input="slow", background=True)
    deadline = time.monotonic() + 10
    while not crews.fake.requests:  # the crew's first model call is on its way
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    cancelled = client.responses.cancel(queued.id)
    while (found := client.responses.retrieve(queued.id)).status != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert cancelled.status == "cancelled" and found.output == []
    job = asyncio.run(crew_response_job(crews.settings, queued.id))
    while job.status == "running" and time.monotonic() < deadline:  # the crew stops too
        time.sleep(0.05)
        job = asyncio.run(crew_response_job(crews.settings, queued.id))
    assert job.status == "succeeded" and job.result["status"] == "cancelled"
    assert time.monotonic() - started < 2.5  # not the 4 s the model would have taken


def test_kickoff_as_a_job_with_review_revise_and_totals(crews, database_url):
    crews.fake.script(
        Reply(text="Bees Title"), Reply(text="Bees: A Better Title"), Reply(text="Final Bees")
    )
    base = f"{crews.url}/api/v1/crews"
    listed = httpx.get(base).json()["data"]
    inputs = {c["name"]: c["inputs"] for c in listed}
    assert inputs == {"brief": ["input"], "review": ["topic"], "tight": ["input"]}
    started = httpx.post(f"{base}/review/kickoff", json={"inputs": {"topic": "bees"}})
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] in ("queued", "running") and run["job_id"].startswith("job")
    url = f"{base}/runs/{run['id']}"
    run = wait_for(url, lambda r: r["status"] == "paused")
    assert run["tasks"][0]["raw"] == "Bees Title" and run["tasks"][1]["status"] == "pending"
    revised = httpx.post(
        f"{url}/revise", json={"task": "draft", "feedback": "Make it punchier."}
    ).json()
    assert revised["status"] in ("queued", "running", "paused")
    run = wait_for(url, lambda r: r["status"] == "paused" and r["tasks"][0]["attempts"] == 2)
    assert "Make it punchier." in prompts(crews.fake)[1]
    assert httpx.post(f"{url}/approve", json={"task": "polish"}).status_code == 400
    assert httpx.post(f"{url}/approve", json={"task": "draft"}).status_code == 202
    run = wait_for(url, lambda r: r["status"] in ("completed", "failed"))
    assert run["status"] == "completed" and run["output"] == "Final Bees"
    again = httpx.post(f"{url}/approve", json={"task": "draft"})
    assert again.status_code == 409 and "completed" in again.json()["error"]["message"]
    tokens_in, tokens_out, cost = usage_rows(database_url, calls=3)
    assert run["usage"]["input_tokens"] == tokens_in == 30
    assert run["usage"]["output_tokens"] == tokens_out
    assert round(run["cost_usd"] * 1e6) == cost > 0
    assert sum(round(t["cost_usd"] * 1e6) for t in run["tasks"]) == cost
    assert [r["id"] for r in httpx.get(f"{base}/runs").json()["data"]] == [run["id"]]


def test_crew_api_errors_name_what_was_wrong(crews):
    base = f"{crews.url}/api/v1/crews"
    missing = httpx.post(f"{base}/nosuch/kickoff", json={})
    assert missing.status_code == 404 and "review" in missing.json()["error"]["message"]
    no_input = httpx.post(f"{base}/review/kickoff", json={"inputs": {}})
    assert no_input.status_code == 400 and "'topic'" in no_input.json()["error"]["message"]
    assert httpx.get(f"{base}/runs/crun_nosuch").status_code == 404
    assert httpx.post(f"{base}/runs/crun_nosuch/approve", json={"task": "x"}).status_code == 404
    assert httpx.get(f"{base}/runs").json()["data"] == []  # nothing was stored
