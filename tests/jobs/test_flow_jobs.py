"""A flow run started through the server as a job on the real Redis: the server only queues
it (``[jobs] backend = "redis"``), an ``agentrig worker`` drives it to its human step, and
after the reply another worker finishes it without running the answered step again. A
background ``flow:<name>`` response is a job for the workers too."""

from __future__ import annotations

import httpx
from openai import OpenAI
from typer.testing import CliRunner

from agentrig.cli import app
from agentrig.config import load_settings
from agentrig.server.app import create_app
from agentrig.testing.fake_openai_server import Reply
from agentrig.testing.live_server import LiveServer
from tests.server.flow_steps import write_flows
from tests.server.test_crews_api import write_crews


def test_a_flow_run_on_redis_workers(tmp_path, fake_server):
    crews = write_flows(write_crews(tmp_path / "crews"))
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
    fake_server.script(Reply(text="Bees, for children."))

    def worker() -> None:
        result = CliRunner().invoke(app, ["worker", "--burst", "--config", str(config)])
        assert result.exit_code == 0, result.output

    with LiveServer(create_app(settings)) as live:
        base = f"{live.url}/api/v1/flows"
        started = httpx.post(f"{base}/ask/runs", json={"inputs": {"topic": "bees"}})
        assert started.status_code == 202, started.text
        url = f"{base}/runs/{started.json()['id']}"
        assert httpx.get(url).json()["status"] == "queued"  # the server runs no jobs itself
        worker()
        run = httpx.get(url).json()
        assert run["status"] == "paused", run
        assert run["interruptions"][0]["output"] == "Which angle on bees?"
        assert httpx.post(f"{url}/reply", json={"text": "for children"}).status_code == 202
        assert httpx.get(url).json()["status"] == "queued"
        worker()
        run = httpx.get(url).json()
        fake_server.script(Reply(text="o"), Reply(text="Written by a worker."))
        client = OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
        queued = client.responses.create(model="flow:notes", input="bees", background=True)
        assert client.responses.retrieve(queued.id).status == "queued"
        worker()
        answered = client.responses.retrieve(queued.id)
    assert answered.status == "completed" and answered.output_text == "Written by a worker."
    assert run["status"] == "completed", run
    assert run["output"] == "Bees, for children."
    assert [(step["state"], step["visit"]) for step in run["history"]] == [
        ("question", 1),
        ("write", 1),
    ]
    assert len(fake_server.requests) == 3
    assert run["usage"]["input_tokens"] == 10 and run["cost_usd"] > 0
