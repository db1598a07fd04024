"""Flows served: ``/api/v1/flows`` runs as jobs of the server's own queue (driven to a
pause, decided on, resumed, with totals equal to the usage rows), and ``model:
"flow:<name>"`` through the official ``openai`` SDK (plain, streamed, background, paused,
failed). The model is the scripted upstream (``fake_server``), so every call goes through
the router."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from sqlalchemy import text

from agentrig.store import Database
from agentrig.store.jobs import JobStore
from agentrig.testing.fake_openai_server import Hang, Reply
from tests.server.conftest import Served, serve
from tests.server.flow_steps import write_flows
from tests.server.openresponses import validate_event, validate_response
from tests.server.test_crews_api import prompts, usage_rows, wait_for, write_crews
from tests.server.test_tenants import _create_keys as create_keys

ENDED = ("completed", "failed")


@pytest.fixture
def flows(tmp_path, database_url, fake_server):
    folder = write_flows(write_crews(tmp_path / "crews"))
    live, settings, app = serve(tmp_path, database_url, fake_server, crews_dir=str(folder))
    with live:
        yield Served(live.url, fake_server, settings, app)


def start(flows: Served, name: str, inputs: dict) -> tuple[dict, str]:
    """Start a run of ``name``; the run as answered (202), and its URL."""
    started = httpx.post(f"{flows.url}/api/v1/flows/{name}/runs", json={"inputs": inputs})
    assert started.status_code == 202, started.text
    run = started.json()
    return run, f"{flows.url}/api/v1/flows/runs/{run['id']}"


def jobs_of(settings, kind: str) -> list[dict]:
    """The payloads and statuses of the jobs of type ``kind``, oldest first."""

    async def read():
        database = Database(settings.effective_database_url)
        try:
            async with database.engine.connect() as connection:
                query = text("SELECT id FROM jobs WHERE type = :kind ORDER BY created_at")
                ids = [i for (i,) in await connection.execute(query, {"kind": kind})]
            return [await JobStore(database).get(i) for i in ids]
        finally:
            await database.aclose()

    return asyncio.run(read())


def test_flows_are_listed_and_described(flows):
    base = f"{flows.url}/api/v1/flows"
    listed = {flow["name"]: flow for flow in httpx.get(base).json()["data"]}
    assert {name: flow["inputs"] for name, flow in listed.items()} == {
        "ask": ["topic"],
        "fragile": ["input", "times"],
        "notes": ["input"],
        "reviewed": ["topic"],
    }
    ask = httpx.get(f"{base}/ask").json()
    assert [(s["name"], s["kind"]) for s in ask["states"]] == [
        ("question", "human"),
        ("write", "agent"),
        ("done", "end"),
    ]
    assert ask["transitions"][1] == {
        "from": "write",
        "to": "done",
        "condition": "on success",
        "priority": 0,
    }
    assert "question" in ask["mermaid"] and "write" in ask["mermaid"]
    assert listed["notes"]["description"].startswith("Aim the note at beginners")
    models = [model.id for model in flows.openai().models.list().data]
    assert {"flow:ask", "flow:notes", "crew:brief"} <= set(models)
    unknown = httpx.get(f"{base}/nosuch")
    assert unknown.status_code == 404 and "'ask'" in unknown.json()["error"]["message"]


def test_a_run_started_through_the_api_completes_with_its_history(flows, database_url):
    flows.fake.script(Reply(text="- sun\n- panels"), Reply(text="Solar power, simply."))
    run, url = start(flows, "notes", {"input": "solar power"})
    assert run["status"] in ("queued", "running") and run["job_id"].startswith("job")
    assert run["object"] == "flow.run" and run["flow"] == "notes"
    run = wait_for(url, lambda r: r["status"] in ENDED)
    assert run["status"] == "completed", run
    assert run["output"] == "Solar power, simply." and run["current_state"] == "done"
    assert run["variables"] == {"input": "solar power for beginners"}
    assert run["inputs"] == {"input": "solar power"}
    assert "Outline a short note about solar power for beginners." in prompts(flows.fake)[0]
    prepare, write = run["history"]
    assert (prepare["state"], prepare["status"], prepare["next_state"]) == (
        "prepare",
        "completed",
        "write",
    )
    assert prepare["usage"]["input_tokens"] == 0 and prepare["cost_usd"] == 0
    assert (write["state"], write["next_state"], write["condition"]) == (
        "write",
        "done",
        "on success",
    )
    tokens_in, tokens_out, cost = usage_rows(database_url, calls=2)
    assert write["usage"]["input_tokens"] == run["usage"]["input_tokens"] == tokens_in == 20
    assert run["usage"]["output_tokens"] == tokens_out
    assert round(write["cost_usd"] * 1e6) == round(run["cost_usd"] * 1e6) == cost > 0
    assert run["steps"] == 2 and run["interruptions"] == [] and run["error"] is None
    base = f"{flows.url}/api/v1/flows/runs"
    listed = httpx.get(base, params={"status": "completed", "flow": "notes"}).json()["data"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert httpx.get(base, params={"status": "paused"}).json()["data"] == []
    assert httpx.get(base, params={"flow": "ask"}).json()["data"] == []
    (job,) = jobs_of(flows.settings, "run_flow")
    assert job.status == "succeeded" and job.result == {"run_id": run["id"], "status": "completed"}


def test_a_human_step_pauses_the_run_and_a_reply_resumes_it(flows):
    flows.fake.script(Reply(text="Bees matter to children."))
    _, url = start(flows, "ask", {"topic": "bees"})
    run = wait_for(url, lambda r: r["status"] == "paused")
    assert run["current_state"] == "question" and run["history"] == []
    (waiting,) = run["interruptions"]
    assert waiting["kind"] == "human" and waiting["output"] == "Which angle on bees?"
    assert flows.fake.requests == []
    refused = httpx.post(f"{url}/approve", json={})
    assert refused.status_code == 400 and "reply" in refused.json()["error"]["message"]
    assert httpx.get(url).json() == run  # a refused decision changes nothing
    replied = httpx.post(f"{url}/reply", json={"text": "for children"})
    assert replied.status_code == 202, replied.text
    assert replied.json()["status"] in ("queued", "running", "completed")
    run = wait_for(url, lambda r: r["status"] in ENDED)
    assert run["status"] == "completed", run
    assert run["output"] == "Bees matter to children."
    assert run["variables"] == {"topic": "bees", "angle": "for children"}
    assert [(s["state"], s["output"]) for s in run["history"]] == [
        ("question", "for children"),
        ("write", "Bees matter to children."),
    ]
    assert "Write about bees from the angle: for children" in prompts(flows.fake)[0]
    again = httpx.post(f"{url}/reply", json={"text": "again"})
    assert again.status_code == 409 and "completed" in again.json()["error"]["message"]
    assert len(jobs_of(flows.settings, "run_flow")) == 2  # the start and the resume


def test_a_crew_review_inside_a_flow_is_revised_then_approved(flows):
    flows.fake.script(Reply(text="A Title"), Reply(text="A Better Title"), Reply(text="Final"))
    _, url = start(flows, "reviewed", {"topic": "bees"})
    run = wait_for(url, lambda r: r["status"] == "paused")
    (waiting,) = run["interruptions"]
    assert (waiting["kind"], waiting["target"], waiting["state"]) == ("review", "draft", "title")
    assert waiting["output"] == "A Title" and waiting["agent"] == "writer"
    unknown = httpx.post(f"{url}/approve", json={"target": "polish"})
    assert unknown.status_code == 400 and "draft" in unknown.json()["error"]["message"]
    assert httpx.post(f"{url}/reply", json={"text": "x"}).status_code == 400
    assert httpx.get(url).json() == run  # nothing was written
    revised = httpx.post(f"{url}/revise", json={"target": "draft", "feedback": "Punchier."})
    assert revised.status_code == 202, revised.text
    run = wait_for(
        url, lambda r: r["status"] == "paused" and r["interruptions"][0]["output"] != "A Title"
    )
    assert run["interruptions"][0]["output"] == "A Better Title"
    assert "Punchier." in prompts(flows.fake)[1]
    assert httpx.post(f"{url}/approve", json={"target": "draft"}).status_code == 202
    run = wait_for(url, lambda r: r["status"] in ENDED)
    assert run["status"] == "completed" and run["output"] == "Final", run
    (title,) = run["history"]
    assert title["usage"]["input_tokens"] == 30  # the paused step's calls are counted
    assert run["usage"] == title["usage"] and len(flows.fake.requests) == 3


def test_two_reviewers_deciding_at_once_resume_the_run_once(flows):
    flows.fake.script(Reply(text="Bees, concisely."))
    _, url = start(flows, "ask", {"topic": "bees"})
    wait_for(url, lambda r: r["status"] == "paused")
    with ThreadPoolExecutor(4) as pool:
        texts = [f"angle {n}" for n in range(4)]
        answers = list(pool.map(lambda t: httpx.post(f"{url}/reply", json={"text": t}), texts))
    assert sorted(answer.status_code for answer in answers) == [202, 409, 409, 409]
    (winner,) = [t for t, a in zip(texts, answers, strict=True) if a.status_code == 202]
    run = wait_for(url, lambda r: r["status"] in ENDED)
    assert run["status"] == "completed" and len(flows.fake.requests) == 1
    assert run["history"][0]["output"] == run["variables"]["angle"] == winner
    assert len(jobs_of(flows.settings, "run_flow")) == 2  # queued once again, not four times


def test_bad_inputs_are_400s_that_name_them_and_store_nothing(flows):
    base = f"{flows.url}/api/v1/flows"
    for inputs, named in (
        ({}, "input"),
        ({"input": "x"}, "times"),
        ({"input": "x", "times": "many"}, "times"),
        ({"input": "x", "times": 2, "colour": "red"}, "colour"),
    ):
        refused = httpx.post(f"{base}/fragile/runs", json={"inputs": inputs})
        assert refused.status_code == 400, (inputs, refused.text)
        error = refused.json()["error"]
        assert named in error["message"] and error["code"] == "invalid_input", error
    missing = httpx.post(f"{base}/nosuch/runs", json={"inputs": {}})
    assert missing.status_code == 404 and "'notes'" in missing.json()["error"]["message"]
    assert httpx.post(f"{base}/notes/runs", json={"inputs": [1]}).status_code == 400
    assert httpx.get(f"{base}/runs").json()["data"] == []  # nothing was stored
    assert jobs_of(flows.settings, "run_flow") == []
    assert httpx.get(f"{base}/runs/frun_nosuch").status_code == 404
    assert httpx.post(f"{base}/runs/frun_nosuch/approve").status_code == 404
    assert httpx.post(f"{base}/runs/frun_nosuch/reply", json={"text": "x"}).status_code == 404
    for query in ("flow=a%00b", "status=bogus", "limit=0"):
        refused = httpx.get(f"{base}/runs?{query}")
        assert refused.status_code == 400 and refused.json()["error"]["message"], query
    assert httpx.get(f"{base}/a%00b").status_code == 400


def test_a_flow_answers_through_the_openai_sdk(flows):
    flows.fake.script(Reply(text="- sun\n- panels"), Reply(text="Solar power, simply."))
    client = flows.openai()
    response = client.responses.create(model="flow:notes", input="solar power")
    assert response.status == "completed", response
    assert response.output_text == "Solar power, simply."
    validate_response(response.model_dump(mode="json", exclude_unset=True))
    lines = [item.summary[0].text for item in response.output if item.type == "reasoning"]
    assert lines[0] == "◆ prepare"
    assert "prepare → write (always)" in lines
    assert any(line.startswith("write · ▶ outline: writer") for line in lines)
    assert any(line.startswith("◇ write: completed, 30 tokens") for line in lines)
    assert response.output[-1].type == "message"
    assert response.usage.input_tokens == 20 and response.usage.output_tokens == 10
    assert "solar power for beginners" in prompts(flows.fake)[0]
    runs = httpx.get(f"{flows.url}/api/v1/flows/runs").json()["data"]
    assert [(r["flow"], r["status"], r["output"]) for r in runs] == [
        ("notes", "completed", "Solar power, simply.")
    ]
    assert client.responses.retrieve(response.id).output_text == "Solar power, simply."


def test_a_flow_streams_its_progress_as_valid_events(flows):
    flows.fake.script(Reply(text="outline"), Reply(text="The note."))
    client = flows.openai()
    events = list(
        client.responses.create(model="flow:notes", input='{"input": "wind"}', stream=True)
    )
    for event in events:
        validate_event(event.model_dump(mode="json", exclude_unset=True))
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    done = [e.item for e in events if e.type == "response.output_item.done"]
    summaries = [item.summary[0].text for item in done if item.type == "reasoning"]
    assert summaries[0] == "◆ prepare" and summaries[-1] == "write → done (on success)"
    assert done[-1].type == "message" and events[-1].response.output_text == "The note."


def test_a_paused_flow_response_is_incomplete_and_names_its_run(flows):
    flows.fake.script(Reply(text="A note for children."))
    client = flows.openai()
    response = client.responses.create(model="flow:ask", input="bees")
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "flow_paused"
    assert "Which angle on bees?" in response.output_text
    validate_response(response.model_dump(mode="json", exclude_unset=True))
    run_id = response.output_text.split("/api/v1/flows/runs/")[1].split("/")[0]
    url = f"{flows.url}/api/v1/flows/runs/{run_id}"
    assert httpx.get(url).json()["status"] == "paused"
    assert httpx.post(f"{url}/reply", json={"text": "for children"}).status_code == 202
    run = wait_for(url, lambda r: r["status"] in ENDED)
    assert run["status"] == "completed" and run["output"] == "A note for children."


def test_flow_response_errors_before_and_after_the_run(flows):
    client = flows.openai()
    with pytest.raises(openai.BadRequestError) as plain:
        client.responses.create(model="flow:fragile", input="no times here")
    assert "['input', 'times']" in plain.value.message and plain.value.code == "invalid_input"
    with pytest.raises(openai.BadRequestError) as missing:
        client.responses.create(model="flow:fragile", input='{"input": "x"}')
    assert "times" in missing.value.message and missing.value.code == "invalid_input"
    with pytest.raises(openai.BadRequestError) as unknown:
        client.responses.create(model="flow:nosuch", input="x")
    assert "notes" in unknown.value.message and unknown.value.code == "model_not_found"
    assert httpx.get(f"{flows.url}/api/v1/flows/runs").json()["data"] == []
    failed = client.responses.create(model="flow:fragile", input='{"input": "x", "times": 3}')
    assert failed.status == "failed" and failed.error.code == "no_transition"
    assert "'x' cannot be checked 3x" in failed.error.message
    validate_response(failed.model_dump(mode="json", exclude_unset=True))
    lines = [item.summary[0].text for item in failed.output if item.type == "reasoning"]
    assert lines[-1].startswith("◇ check: failed")
    assert flows.fake.requests == []  # nothing reached a model


def test_background_flow_response_is_a_job(flows):
    flows.fake.script(Reply(text="o"), Reply(text="Done in the background."))
    client = flows.openai()
    queued = client.responses.create(model="flow:notes", input="tides", background=True)
    assert queued.status in ("queued", "in_progress")
    deadline = time.monotonic() + 30
    while (found := client.responses.retrieve(queued.id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert found.status == "completed" and found.output_text == "Done in the background."
    (job,) = jobs_of(flows.settings, "flow_response")
    assert job.payload["response_id"] == queued.id
    assert job.status == "succeeded" and job.result["status"] == "completed"
    (run,) = httpx.get(f"{flows.url}/api/v1/flows/runs").json()["data"]
    assert run["id"] == job.payload["flow_run"]["run_id"] and run["status"] == "completed"
    assert run["inputs"] == {"input": "tides"}


def test_text_with_a_nul_is_kept_in_the_record(flows):
    """PostgreSQL text cannot hold a NUL: inputs and answers are kept in the JSON record,
    where it is escaped, and a target with one is a 400 like any unknown target."""
    flows.fake.script(Reply(text="Done."))
    _, url = start(flows, "ask", {"topic": "b\x00ees"})
    run = wait_for(url, lambda r: r["status"] == "paused")
    assert run["interruptions"][0]["output"] == "Which angle on b\x00ees?"
    wrong = httpx.post(f"{url}/reply", json={"text": "x", "target": "a\x00b"})
    assert wrong.status_code == 400 and "question" in wrong.json()["error"]["message"]
    assert httpx.post(f"{url}/reply", json={"text": "for\x00kids"}).status_code == 202
    run = wait_for(url, lambda r: r["status"] in ENDED)
    assert run["status"] == "completed", run
    assert run["variables"] == {"topic": "b\x00ees", "angle": "for\x00kids"}


def test_a_cancelled_background_flow_response_stops_its_run(flows):
    flows.fake.script(Hang(4))
    client = flows.openai()
    queued = client.responses.create(model="flow:notes", input="slow", background=True)
    deadline = time.monotonic() + 10
    while not flows.fake.requests:  # the crew's first model call is on its way
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    assert client.responses.cancel(queued.id).status == "cancelled"
    runs = f"{flows.url}/api/v1/flows/runs"
    (run,) = wait_for(runs, lambda r: r["data"][0]["status"] != "running", timeout=5)["data"]
    assert time.monotonic() - started < 2.5  # not the 4 s the model would have taken
    assert (run["status"], run["reason"]) == ("failed", "cancelled"), run
    assert [step["state"] for step in run["history"]] == ["prepare"]  # kept, to resume
    assert client.responses.retrieve(queued.id).status == "cancelled"


def test_a_run_is_its_tenants_alone(tmp_path, database_url, fake_server):
    folder = write_flows(write_crews(tmp_path / "crews"))
    live, _, _ = serve(tmp_path, database_url, fake_server, crews_dir=str(folder))
    (key_a, _), (key_b, _) = asyncio.run(create_keys(database_url))
    a, b = ({"authorization": f"Bearer {key}"} for key in (key_a, key_b))
    with live:
        base = f"{live.url}/api/v1/flows"
        started = httpx.post(f"{base}/ask/runs", json={"inputs": {"topic": "x"}}, headers=a)
        assert started.status_code == 202, started.text
        url = f"{base}/runs/{started.json()['id']}"
        run = wait_for(url, lambda r: r["status"] == "paused", headers=a)
        assert httpx.get(url, headers=b).status_code == 404
        assert httpx.post(f"{url}/reply", json={"text": "y"}, headers=b).status_code == 404
        assert httpx.get(f"{base}/runs", headers=b).json()["data"] == []
        assert httpx.get(url, headers=a).json() == run  # untouched by the other tenant
        assert httpx.get(f"{base}/runs", headers={}).status_code == 401
