"""A live agentrig server on 127.0.0.1 for the server tests, on SQLite and on PostgreSQL,
with its models served by the fake Chat Completions server (real HTTP end to end)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from agentrig.config import load_settings
from agentrig.server.app import create_app
from agentrig.store import Database
from agentrig.testing.fake_openai_server import FakeOpenAIServer
from agentrig.testing.live_server import LiveServer
from tests.conftest import POSTGRES_ADMIN_URL

AGENTS_YAML = """
agents:
  - name: maths
    description: Does arithmetic with the calculator.
    instructions: Use the calculator for arithmetic.
    model: fake/m
    tools: [calculator]
"""


@dataclass
class Served:
    url: str
    fake: FakeOpenAIServer
    settings: object
    app: object

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def openai(self, api_key: str = "unused"):
        from openai import OpenAI

        return OpenAI(base_url=self.v1, api_key=api_key, max_retries=0)


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.db'}"
        return
    name = f"agentrig_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def serve(tmp_path: Path, database_url: str, fake: FakeOpenAIServer, **server) -> LiveServer:
    agents = tmp_path / "agents.yaml"
    agents.write_text(AGENTS_YAML)
    settings = load_settings(
        database_url=database_url,
        llm={
            "providers": {
                "fake": {
                    "kind": "openai",
                    "base_url": fake.base_url,
                    "models": {"m": {"input_price": 1, "output_price": 2}},
                }
            },
            "roles": {"default": ["fake/m"]},
            "max_attempts": 1,
        },
        server={"agents_file": str(agents), **server},
    )
    app = create_app(settings)
    return LiveServer(app), settings, app


@pytest.fixture
def served(tmp_path, database_url, fake_server) -> Iterator[Served]:
    live, settings, app = serve(tmp_path, database_url, fake_server)
    with live:
        yield Served(live.url, fake_server, settings, app)


def chat_outcomes(database_url: str) -> list[str]:
    """The outcomes of the chat model calls in a server's usage rows, oldest first."""

    async def read() -> list[str]:
        database = Database(database_url)
        try:
            async with database.engine.connect() as connection:
                query = text("SELECT outcome FROM llm_usage WHERE kind = 'chat' ORDER BY id")
                return [outcome for (outcome,) in await connection.execute(query)]
        finally:
            await database.aclose()

    return asyncio.run(read())
