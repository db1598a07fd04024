"""Shared fixtures: an isolated data directory, a fake Chat Completions server, and
databases (a SQLite file and a fresh PostgreSQL database on 127.0.0.1:5432)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
import pytest

from agentrig.store import Database
from agentrig.testing.fake_openai_server import FakeOpenAIServer

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
