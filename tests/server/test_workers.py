"""Several server processes on one database: ``agentrig serve --workers N`` for real, and
two servers in this process for a cancel that reaches the process not running the task."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from agentrig.testing.fake_openai_server import Hang, Reply
from tests.conftest import stop_process_group
from tests.server.conftest import serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _requests_counted(metrics: str, route: str, method: str, status: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("agentrig_http_requests_total{") and all(
            f'{key}="{value}"' in line
            for key, value in (("route", route), ("method", method), ("status", status))
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_serve_with_two_workers(tmp_path: Path, database_url: str, fake_server) -> None:
    config = tmp_path / "agentrig.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
database_url = "{database_url}"
[llm.providers.fake]
kind = "openai"
base_url = "{fake_server.base_url}"
[llm.roles]
default = ["fake/m"]
"""
    )
    port = _free_port()
    command = [str(Path(sys.executable).parent / "agentrig"), "serve", "--workers", "2"]
    command += ["--port", str(port), "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTRIG_", "PROMETHEUS_"))}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read().decode()
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        workers = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) >= 2  # two workers (and multiprocessing's resource tracker)
        fake_server.script(*(Reply(text=f"answer {n}") for n in range(30)))
        ids = []
        for n in range(30):  # a new connection each: the kernel hands them to both workers
            created = httpx.post(
                f"{base}/v1/responses", json={"model": "default", "input": f"q{n}"}, timeout=30
            )
            assert created.status_code == 200, created.text
            ids.append(created.json()["id"])
        texts = set()
        for response_id in ids:  # read back through whichever worker answers
            stored = httpx.get(f"{base}/v1/responses/{response_id}", timeout=30).json()
            texts.add(stored["output"][0]["content"][0]["text"])
        assert texts == {f"answer {n}" for n in range(30)}
        for _ in range(4):  # each /metrics answer sums both workers' counts
            metrics = httpx.get(f"{base}/metrics", timeout=30).text
            assert _requests_counted(metrics, "/v1/responses", "POST", "200") == 30
    finally:
        stop_process_group(process)


def test_a_cancel_reaching_another_server_stops_the_background_response(
    tmp_path: Path, database_url: str, fake_server
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _, _ = serve(tmp_path / "a", database_url, fake_server)
    second, _, _ = serve(tmp_path / "b", database_url, fake_server)
    fake_server.script(Hang(1.5, then=Reply(text="finished anyway")))
    with first, second:
        queued = httpx.post(
            f"{first.url}/v1/responses",
            json={"model": "default", "input": "slow", "background": True},
            timeout=30,
        ).json()
        time.sleep(0.3)  # running on the first server, waiting for the model
        cancelled = httpx.post(f"{second.url}/v1/responses/{queued['id']}/cancel", timeout=30)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        time.sleep(2.0)  # past the model's answer: a task left running would have stored it
        for server in (first, second):
            stored = httpx.get(f"{server.url}/v1/responses/{queued['id']}", timeout=30).json()
            assert stored["status"] == "cancelled" and stored["output"] == []
        # The first server's task was cancelled, not merely overwritten: its model call was cut.
        metrics = httpx.get(f"{first.url}/metrics", timeout=30).text
        counted = [
            line
            for line in metrics.splitlines()
            if line.startswith("agentrig_tokens_total{") and 'model="default"' in line
        ]
        assert counted == []
