"""A crew kicked off through the server as a job on the real Redis: the server only queues
it (``[jobs] backend = "redis"``), an ``agentrig worker`` runs it to its review, and after
the approval another worker finishes it without running the reviewed task again. A
background ``crew:<name>`` response is a job for the workers too."""

from __future__ import annotations

import httpx
from openai import OpenAI
from typer.testing import CliRunner

from agentrig.cli import app
from agentrig.config import load_settings
from agentrig.server.app import create_app
from agentrig.testing.fake_openai_server import Reply
from agentrig.testing.live_server import LiveServer
from tests.server.test_crews_api import write_crews


def test_a_crew_run_on_redis_workers(tmp_path, fake_server):
    crews = write_crews(tmp_path / "crews")
    config = tmp_path / "agentrig.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[llm]
max_attempts = 1
[llm.providers.fake]
kind = "openai"
base_url = "{fake_server.base_url}"
models = {{ m = {{ input_price = 1, output_price = 2 }} }}
[llm.roles]
default = ["fake/m"]
[server]
crews_dir = "{crews}"
[jobs]
backend = "redis"
"""
    )
    settings = load_settings(config)
    fake_server.script(Reply(text="Bee Title"), Reply(text="The Bee Title"))

    def worker() -> None:
        result = CliRunner().invoke(app, ["worker", "--burst", "--config", str(config)])
        assert result.exit_code == 0, result.output

    with LiveServer(create_app(settings)) as live:
        base = f"{live.url}/api/v1/crews"
        started = httpx.post(f"{base}/review/kickoff", json={"inputs": {"topic": "bees"}})
        assert started.status_code == 202, started.text
        url = f"{base}/runs/{started.json()['id']}"
        assert httpx.get(url).json()["status"] == "queued"  # the server runs no jobs itself
        assert fake_server.requests == []
        worker()
        run = httpx.get(url).json()
        assert run["status"] == "paused", run
        assert run["interruptions"][0]["output"] == "Bee Title"
        assert httpx.post(f"{url}/approve", json={"task": "draft"}).status_code == 202
        worker()
        run = httpx.get(url).json()
        fake_server.script(Reply(text="o"), Reply(text="Written by a worker."))
        client = OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
        queued = client.responses.create(model="crew:brief", input="bees", background=True)
        assert client.responses.retrieve(queued.id).status == "queued"
        worker()
        answered = client.responses.retrieve(queued.id)
    assert answered.status == "completed" and answered.output_text == "Written by a worker."
    assert run["status"] == "completed", run
    assert run["output"] == "The Bee Title"
    assert [task["attempts"] for task in run["tasks"]] == [1, 1]
    assert len(fake_server.requests) == 4
    assert run["usage"]["input_tokens"] == 20 and run["cost_usd"] > 0
