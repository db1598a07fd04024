"""``agentrig worker`` runs every job type the server enqueues on Redis: an asynchronous
chat (``POST /api/v1/chat/async``) included, not only document indexing."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from agentrig.cli import app
from agentrig.config import load_settings
from agentrig.jobs.handlers import PROCESS_CHAT
from agentrig.jobs.redis import RedisJobQueue
from agentrig.store import Database
from agentrig.store.jobs import SUCCEEDED, JobStore


def test_the_worker_answers_an_asynchronous_chat(tmp_path):
    config = tmp_path / "agentrig.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[llm.roles]
default = ["local/smollm2"]
[jobs]
backend = "redis"
"""
    )
    settings = load_settings(config)

    async def enqueue() -> str:
        database = await Database.open(settings)
        queue = RedisJobQueue(JobStore(database), settings.jobs)
        try:
            job = await queue.enqueue(PROCESS_CHAT, "t1", {"message": "Say hello.", "kb": "none"})
            return job.id
        finally:
            await queue.aclose()
            await database.aclose()

    async def job_row(job_id: str):
        database = Database(settings.effective_database_url)
        try:
            return await JobStore(database).get(job_id)
        finally:
            await database.aclose()

    job_id = asyncio.run(enqueue())
    result = CliRunner().invoke(app, ["worker", "--burst", "--config", str(config)])
    assert result.exit_code == 0, result.output
    job = asyncio.run(job_row(job_id))
    assert job.status == SUCCEEDED, job.error
    assert job.result["conversation_id"].startswith("conv") and job.result["sources"] == []
    assert isinstance(job.result["response"], str)
