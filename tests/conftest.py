"""Shared fixtures: an isolated data directory, a fake Chat Completions server,
databases (a SQLite file and a fresh PostgreSQL database on 127.0.0.1:5432), a knowledge
service with the bundled sample documents, stopping a server or worker subprocess, and
an agentrig.toml for the CLI tests."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

import agentrig
from agentrig.config import load_settings
from agentrig.knowledge.service import Knowledge
from agentrig.llm.router import ModelRouter
from agentrig.store import Database
from agentrig.testing.fake_openai_server import FakeOpenAIServer

SAMPLES = Path(agentrig.__file__).parent / "samples" / "kb"
POSTGRES_ADMIN_URL = os.environ.get("AGENTRIG_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch) -> None:
    """Every test gets its own data directory and no configuration from the outside."""
    for name in list(os.environ):
        if name.startswith("AGENTRIG_") and name != "AGENTRIG_TEST_POSTGRES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGENTRIG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped on exit."""
    name = f"agentrig_test_{secrets.token_hex(6)}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request, tmp_path) -> AsyncIterator[Database]:
    """A migrated database: a SQLite file, then a fresh PostgreSQL database."""
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'agentrig.db'}"
        else:
            url = await stack.enter_async_context(fresh_postgres_database())
        db = Database(url)
        stack.push_async_callback(db.aclose)
        await db.upgrade()
        yield db


@pytest.fixture
async def knowledge(tmp_path) -> AsyncIterator[Knowledge]:
    """An empty knowledge service on SQLite and embedded Qdrant, 200-token chunks."""
    settings = load_settings(data_dir=tmp_path, knowledge={"chunk_size": 200, "chunk_overlap": 40})
    database = Database(settings.effective_database_url)
    await database.upgrade()
    router = ModelRouter(settings.llm)
    service = Knowledge.open(settings, database, router)
    yield service
    await service.aclose()
    await router.aclose()
    await database.aclose()


async def add_samples(knowledge: Knowledge, tenant: str = "t1") -> dict[str, str]:
    """Index the sample documents into the knowledge base ``lumen``: ids by file name."""
    ids = {}
    for path in sorted(SAMPLES.iterdir()):
        document = await knowledge.add_document(tenant, path.read_bytes(), path.name, kb="lumen")
        report = await knowledge.index(tenant, document.id)
        assert report.status == "indexed" and report.chunks > 0, report
        ids[path.name] = document.id
    return ids


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM a subprocess started with ``start_new_session``, SIGKILL after 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def cli_config(tmp_path, fake_server) -> Path:
    """An agentrig.toml whose default role is the fake OpenAI server (priced), and a dead
    provider first in the ``fast`` role."""
    path = tmp_path / "agentrig.toml"
    path.write_text(
        f"""
[llm]
max_attempts = 1
[llm.providers.fake]
kind = "openai"
base_url = "{fake_server.base_url}"
[llm.providers.fake.models.m]
input_price = 1000
output_price = 2000
[llm.providers.dead]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[llm.roles]
default = ["fake/m"]
fast = ["dead/m", "fake/m"]
"""
    )
    return path
