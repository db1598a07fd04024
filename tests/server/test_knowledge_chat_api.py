"""/api/v1/chat against a live server: synchronous, asynchronous (a job), Server-Sent
Events and WebSocket, each answering from the uploaded documents with sources."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

import agentrig
from agentrig.testing.fake_openai_server import Reply
from tests.server.conftest import chat_outcomes, serve
from tests.server.test_documents_api import upload, wait_indexed

SAMPLES = Path(agentrig.__file__).parent / "samples" / "kb"


@pytest.fixture
def live(tmp_path, fake_server):
    server, _, _ = serve(tmp_path, f"sqlite:///{tmp_path / 'chat.db'}", fake_server)
    with server, httpx.Client(base_url=server.url, timeout=60) as client:
        for path in sorted(SAMPLES.iterdir()):
            created = upload(client, path, kb="lumen").json()
            assert wait_indexed(client, created["id"])["status"] == "indexed"
        yield client, server.url, fake_server


def test_chat_answers_with_sources_and_continues_the_conversation(live):
    client, _, fake = live
    fake.script(Reply(text="A full charge takes about 4 hours [1]."), Reply(text="Yes [1]."))
    question = {"message": "How long does a full battery charge take from empty?", "kb": "lumen"}
    answer = client.post("/api/v1/chat", json=question)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["response"] == "A full charge takes about 4 hours [1]."
    assert body["sources"][0]["filename"] == "lumen-e3-manual.md"
    assert body["sources"][0]["number"] == 1 and "4 hours" in body["sources"][0]["text"]
    system = fake.requests[-1]["messages"][0]
    assert system["role"] == "system" and "4 hours" in system["content"]
    follow = {
        "message": "Even in winter?",
        "kb": "lumen",
        "conversation_id": body["conversation_id"],
    }
    assert client.post("/api/v1/chat", json=follow).status_code == 200
    sent = [m.get("content") for m in fake.requests[-1]["messages"]]
    assert question["message"] in sent and body["response"] in sent


def test_async_chat_is_a_job_with_the_same_answer(live):
    client, _, fake = live
    fake.script(Reply(text="The excess is EUR 150 [1]."))
    queued = client.post(
        "/api/v1/chat/async", json={"message": "What if my bike is stolen?", "kb": "lumen"}
    )
    assert queued.status_code == 202
    job_id, conversation_id = queued.json()["job_id"], queued.json()["conversation_id"]
    deadline = time.monotonic() + 30
    while (job := client.get(f"/api/v1/chat/jobs/{job_id}").json())["status"] != "succeeded":
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.1)
    assert (
        job["response"] == "The excess is EUR 150 [1]."
        and job["conversation_id"] == conversation_id
    )
    assert job["sources"] and job["sources"][0]["number"] == 1
    assert client.get("/api/v1/chat/jobs/job_missing").status_code == 404


def test_streamed_chat_over_sse_and_websocket(live):
    client, url, fake = live
    fake.script(Reply(text="Let the motor cool for 15 minutes [1]."))
    with client.stream(
        "POST", "/api/v1/chat/stream", json={"message": "error E07", "kb": "lumen"}
    ) as response:
        assert response.status_code == 200
        events = [
            json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")
        ]
    kinds = [event["type"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "delta" in kinds
    text = "".join(event["text"] for event in events if event["type"] == "delta")
    assert text == events[-1]["response"] == "Let the motor cool for 15 minutes [1]."
    assert events[-1]["sources"][0]["filename"] == "lumen-e3-manual.md"
    fake.script(Reply(text="Within 30 days [1]."))
    with connect(url.replace("http", "ws") + "/api/v1/chat/ws") as socket:
        socket.send(json.dumps({"message": "return window for bikes", "kb": "lumen"}))
        received = []
        while not received or received[-1]["type"] not in ("done", "error"):
            received.append(json.loads(socket.recv(timeout=30)))
        assert received[-1]["type"] == "done", received
        assert received[-1]["response"] == "Within 30 days [1]."
        socket.send("not json")
        assert json.loads(socket.recv(timeout=30))["type"] == "error"  # and the socket stays
        socket.send(json.dumps({"message": "", "kb": "lumen"}))
        assert "message" in json.loads(socket.recv(timeout=30))["message"]


def test_an_abandoned_stream_stops_the_model_call(live, tmp_path):
    client, _, fake = live
    url = f"sqlite:///{tmp_path / 'chat.db'}"  # the live server's database
    fake.script(Reply(text="word " * 200, chunk_delay=0.02))  # about 4 s of streaming
    body = {"message": "tell me everything about the battery", "kb": "lumen"}
    with client.stream("POST", "/api/v1/chat/stream", json=body) as response:
        deltas = 0
        for line in response.iter_lines():
            deltas += line.startswith("data: ") and '"delta"' in line
            if deltas == 3:
                break  # leave: the connection closes with 197 words still to come
    left = time.monotonic()
    # The model call is cut (its usage row says so) long before the reply's 4 s end.
    while chat_outcomes(url) != ["cancelled"]:
        assert time.monotonic() - left < 2, chat_outcomes(url)
        time.sleep(0.05)
    fake.script(Reply(text="Still here [1]."))
    answer = client.post("/api/v1/chat", json={"message": "battery?", "kb": "lumen"})
    assert answer.json()["response"] == "Still here [1]."


def test_bad_chat_requests_are_400s(live):
    client, _, _ = live
    for body, param in (
        ({"message": ""}, "message"),
        ({"message": "hi", "agent_id": "nobody"}, "agent_id"),
        ({"message": "hi", "kb": "Bad Name!"}, "kb"),
        ({"message": "hi", "colour": "red"}, "colour"),
    ):
        response = client.post("/api/v1/chat", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["param"] == param, (body, response.json())
