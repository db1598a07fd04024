"""``agentrig worker`` processes on the real Redis: a worker killed with SIGKILL in the
middle of indexing loses nothing; another worker finishes the job and the index holds
each chunk once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentrig.config import load_settings
from agentrig.jobs.redis import RedisJobQueue
from agentrig.knowledge.service import Knowledge
from agentrig.llm.router import ModelRouter
from agentrig.store import Database
from agentrig.store.jobs import JobStore
from tests.conftest import stop_process_group

WORDS = [
    "battery",
    "motor",
    "frame",
    "brake",
    "chain",
    "wheel",
    "display",
    "sensor",
    "charger",
    "tyre",
]


def long_document() -> bytes:
    """About 120 chunks of 100 tokens: long enough to kill a worker in the middle."""
    sections = []
    for n in range(120):
        words = " ".join(WORDS[(n + i) % len(WORDS)] + str(n * 7 + i) for i in range(70))
        sections.append(f"## Part {n}\n\nSection {n} says {words}.\n")
    return "\n".join(sections).encode()


def start_worker(config: Path, log: Path) -> subprocess.Popen:
    executable = Path(sys.executable).parent / "agentrig"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTRIG_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(executable), "worker", "--config", str(config)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_killed_worker_loses_nothing_and_leaves_no_duplicates(tmp_path, postgres_url):
    config = tmp_path / "agentrig.toml"
    config.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
database_url = "{postgres_url.replace("+asyncpg", "")}"
[knowledge]
chunk_size = 100
chunk_overlap = 10
embed_batch_size = 8
[jobs]
backend = "redis"
lease_seconds = 2
retry_delay_seconds = 0.2
"""
    )
    settings = load_settings(config)

    async def enqueue() -> tuple[str, str]:
        database = await Database.open(settings)
        router = ModelRouter(settings.llm)
        knowledge = Knowledge.open(settings, database, router)
        queue = RedisJobQueue(JobStore(database), settings.jobs)
        try:
            document = await knowledge.add_document("t1", long_document(), "long.md", kb="kill")
            job = await queue.enqueue("index_document", "t1", {"document_id": document.id})
            return document.id, job.id
        finally:
            await queue.aclose()
            await knowledge.aclose()
            await router.aclose()
            await database.aclose()

    document_id, job_id = asyncio.run(enqueue())

    async def row(table: str, key: str) -> tuple:
        database = Database(settings.effective_database_url)
        try:
            async with database.engine.connect() as connection:
                from sqlalchemy import text

                query = text(f"SELECT status, attempts, worker FROM {table} WHERE id = :id")
                if table == "documents":
                    query = text("SELECT status, chunk_count, reason FROM documents WHERE id = :id")
                return tuple((await connection.execute(query, {"id": key})).first())
        finally:
            await database.aclose()

    first = start_worker(config, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 120
        while asyncio.run(row("documents", document_id))[0] != "embedding":
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "the first worker never started embedding"
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)  # in the middle of embedding
        first.wait()
        assert asyncio.run(row("jobs", job_id))[0] == "running"  # orphaned, not finished
        second = start_worker(config, tmp_path / "second.log")
        try:
            deadline = time.monotonic() + 180
            while (job := asyncio.run(row("jobs", job_id)))[0] != "succeeded":
                assert job[0] != "failed", (tmp_path / "second.log").read_text()
                assert second.poll() is None, (tmp_path / "second.log").read_text()
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
        finally:
            stop_process_group(second)
    finally:
        stop_process_group(first)
    _, attempts, worker = asyncio.run(row("jobs", job_id))
    assert attempts == 2 and worker.endswith(f":{second.pid}")
    document = asyncio.run(row("documents", document_id))
    assert document[0] == "indexed" and document[1] >= 100

    async def count() -> int:
        router = ModelRouter(settings.llm)
        database = Database(settings.effective_database_url)
        knowledge = Knowledge.open(settings, database, router)
        try:
            return await knowledge.vectors.count("kill", "t1")
        finally:
            await knowledge.aclose()
            await router.aclose()
            await database.aclose()

    assert asyncio.run(count()) == document[1]  # every chunk once: no duplicates
