"""One behavioural suite run on every session backend: in memory, a SQLite file, a fresh
PostgreSQL database and the Redis server on 127.0.0.1:6379 (under a per-test key prefix)."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import insert, select

from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    InputText,
    Item,
    Message,
    OutputText,
    Reasoning,
    ReasoningText,
    Refusal,
    SummaryText,
    assistant_message,
    user_message,
)
from agentrig.sessions import (
    InMemorySession,
    RedisSession,
    Session,
    SessionMeta,
    SQLAlchemySession,
    SQLiteSession,
)
from agentrig.store import Database
from agentrig.store.models import SessionItemRow, SessionRow
from agentrig.store.shared import close_shared_databases, shared_database
from tests.conftest import fresh_postgres_database

REDIS_URL = "redis://127.0.0.1:6379/0"
MakeSession = Callable[[str], Awaitable[Session]]


@dataclass
class Backend:
    name: str
    make: MakeSession
    url: str | None = None  # the SQL database or Redis server behind it
    key_prefix: str | None = None  # Redis only


@asynccontextmanager
async def open_backend(name: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """A factory of sessions on one backend; closes them and removes their data afterwards."""
    async with AsyncExitStack() as stack:
        made: list[Session] = []
        backend = Backend(name, make=None)  # type: ignore[arg-type]
        if name == "memory":

            async def create(session_id: str) -> Session:
                return InMemorySession(session_id)

        elif name == "sqlite":
            path = tmp_path / "sessions.db"
            backend.url = f"sqlite:///{path}"
            stack.push_async_callback(close_shared_databases)

            async def create(session_id: str) -> Session:
                return SQLiteSession(session_id, path)

        elif name == "postgres":
            backend.url = url = await stack.enter_async_context(fresh_postgres_database())
            stack.push_async_callback(close_shared_databases)

            async def create(session_id: str) -> Session:
                return await SQLAlchemySession.open(session_id, url)

        else:
            backend.url = REDIS_URL
            backend.key_prefix = prefix = f"agentrig:test:{secrets.token_hex(6)}:"
            stack.push_async_callback(_delete_redis_keys, prefix)

            async def create(session_id: str) -> Session:
                return RedisSession(session_id, REDIS_URL, key_prefix=prefix)

        async def make(session_id: str) -> Session:
            session = await create(session_id)
            made.append(session)
            return session

        async def close_made() -> None:
            for session in made:
                await session.aclose()

        backend.make = make
        stack.push_async_callback(close_made)
        yield backend


async def _delete_redis_keys(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
async def backend(request, tmp_path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def persistent(request, tmp_path) -> AsyncIterator[Backend]:
    async with open_backend(request.param, tmp_path) as opened:
        yield opened


def every_kind_of_item() -> list[Item]:
    return [
        Message(
            role="user",
            content=[
                InputText(text="What is in this picture and this file?"),
                InputImage(image_url="https://example.com/cat.png", detail="high"),
                InputFile(file_id="file_1", filename="notes.pdf"),
            ],
        ),
        Reasoning(
            id="rs_1",
            summary=[SummaryText(text="Look first"), SummaryText(text="then answer")],
            content=[ReasoningText(text="The image shows…")],
            encrypted_content="gAAAAB==",
            status="completed",
            agent="triage",
        ),
        FunctionCall(
            id="fc_1",
            call_id="call_1",
            name="read_file",
            arguments='{"file_id": "file_1", "pages": [1, 2]}',
            status="completed",
            agent="triage",
        ),
        FunctionCallOutput(call_id="call_1", output='{"text": "café 猫\\n"}', agent="reader"),
        Message(
            id="msg_1",
            role="assistant",
            content=[
                OutputText(
                    text="A cat.",
                    annotations=[{"type": "url_citation", "url": "https://example.com"}],
                ),
                Refusal(refusal="I will not read page 3."),
            ],
            status="completed",
            agent="reader",
        ),
        Message(role="developer", content='Answer "briefly".'),
    ]


def texts(items: list[Item]) -> list[str]:
    return [item.text for item in items]  # type: ignore[union-attr]


async def test_every_backend_is_a_session_with_its_id(backend):
    session = await backend.make("conversation-1")
    assert isinstance(session, Session)
    assert session.session_id == "conversation-1"


async def test_items_come_back_in_the_order_they_were_added(backend):
    session = await backend.make("s")
    assert await session.get_items() == []
    await session.add_items([user_message("one"), assistant_message("two")])
    await session.add_items([])
    await session.add_items([user_message("three")])
    assert texts(await session.get_items()) == ["one", "two", "three"]


async def test_a_limit_returns_the_last_items_in_order(backend):
    session = await backend.make("s")
    await session.add_items([user_message(str(n)) for n in range(5)])
    assert texts(await session.get_items(2)) == ["3", "4"]
    assert texts(await session.get_items(1)) == ["4"]
    assert texts(await session.get_items(50)) == ["0", "1", "2", "3", "4"]
    assert await session.get_items(0) == []


async def test_pop_returns_the_last_item_and_removes_it(backend):
    session = await backend.make("s")
    await session.add_items([user_message("first"), assistant_message("last", agent="a")])
    popped = await session.pop_item()
    assert isinstance(popped, Message) and popped.text == "last" and popped.agent == "a"
    assert texts(await session.get_items()) == ["first"]
    assert texts([await session.pop_item()]) == ["first"]
    assert await session.get_items() == []


async def test_pop_on_an_empty_session_returns_none(backend):
    session = await backend.make("s")
    assert await session.pop_item() is None
    await session.add_items([user_message("x")])
    await session.pop_item()
    assert await session.pop_item() is None


async def test_clear_removes_the_items_and_the_meta(backend):
    session = await backend.make("s")
    await session.add_items([user_message("a"), user_message("b")])
    await session.set_meta(SessionMeta(current_agent="writer", tool_state={"t": {"n": 1}}))
    await session.clear()
    assert await session.get_items() == []
    assert await session.get_meta() == SessionMeta()
    await session.add_items([user_message("again")])
    assert texts(await session.get_items()) == ["again"]
    assert await session.get_meta() == SessionMeta()


async def test_meta_round_trips(backend):
    session = await backend.make("s")
    assert await session.get_meta() == SessionMeta(current_agent=None, tool_state={})
    meta = SessionMeta(
        current_agent="researcher",
        tool_state={
            "search": {"seen": ["a", "b"], "page": {"n": 2, "cursor": None}},
            "memory": {"notes": {"user": {"name": "Ada", "langs": ["fr", "日本語"]}}},
        },
    )
    await session.set_meta(meta)
    await session.add_items([user_message("items do not touch the meta")])
    assert await session.get_meta() == meta
    await session.set_meta(SessionMeta(current_agent="writer"))
    assert await session.get_meta() == SessionMeta(current_agent="writer", tool_state={})


async def test_every_item_type_round_trips_exactly(backend):
    session = await backend.make("s")
    items = every_kind_of_item()
    await session.add_items(items)
    back = await session.get_items()
    assert [type(item) for item in back] == [type(item) for item in items]
    assert [item.to_json() for item in back] == [item.to_json() for item in items]
    assert (await session.pop_item()).to_json() == items[-1].to_json()


async def test_returned_items_are_copies(backend):
    session = await backend.make("s")
    item = user_message("original")
    await session.add_items([item])
    item.content[0].text = "changed after adding"  # type: ignore[union-attr]
    (back,) = await session.get_items()
    back.content[0].text = "changed after reading"  # type: ignore[union-attr]
    assert texts(await session.get_items()) == ["original"]


async def test_sessions_with_different_ids_never_see_each_others_items(backend):
    first, second = await backend.make("first"), await backend.make("second")
    await first.add_items([user_message("for first")])
    await second.add_items([user_message("for second"), user_message("also second")])
    await first.set_meta(SessionMeta(current_agent="first agent"))
    assert texts(await first.get_items()) == ["for first"]
    assert texts([await first.pop_item()]) == ["for first"]
    assert await first.pop_item() is None
    await first.clear()
    assert texts(await second.get_items()) == ["for second", "also second"]
    assert await second.get_meta() == SessionMeta()


async def test_concurrent_appends_stay_adjacent_and_none_is_lost(backend):
    session = await backend.make("busy")
    calls = 50

    async def append(call: int) -> None:
        await session.add_items([user_message(f"{call}:{part}") for part in range(3)])

    await asyncio.gather(*(append(call) for call in range(calls)))
    stored = texts(await session.get_items())
    assert len(stored) == calls * 3
    seen = []
    for start in range(0, len(stored), 3):
        call = stored[start].split(":")[0]
        assert stored[start : start + 3] == [f"{call}:0", f"{call}:1", f"{call}:2"]
        seen.append(int(call))
    assert sorted(seen) == list(range(calls))


async def test_concurrent_pops_return_each_item_once(backend):
    session = await backend.make("popping")
    await session.add_items([user_message(str(n)) for n in range(20)])
    popped = await asyncio.gather(*(session.pop_item() for _ in range(25)))
    found = [item.text for item in popped if item is not None]  # type: ignore[union-attr]
    assert sorted(found, key=int) == [str(n) for n in range(20)]
    assert popped.count(None) == 5
    assert await session.get_items() == []


async def test_a_new_object_with_the_same_id_sees_the_same_conversation(persistent):
    meta = SessionMeta(current_agent="a", tool_state={"t": {"k": [1]}})
    writer = await persistent.make("shared")
    await writer.add_items(every_kind_of_item())
    await writer.set_meta(meta)
    reader = await persistent.make("shared")
    expected = [item.to_json() for item in every_kind_of_item()]
    assert [item.to_json() for item in await reader.get_items()] == expected
    assert await reader.get_meta() == meta


async def test_a_sqlite_session_survives_reopening(tmp_path):
    path = tmp_path / "kept" / "sessions.db"
    session = SQLiteSession("kept", path)
    await session.add_items([user_message("remember me"), assistant_message("I will")])
    await session.set_meta(SessionMeta(current_agent="memory keeper"))
    await session.aclose()
    await close_shared_databases()  # no engine survives: the file alone must hold the data

    reopened = SQLiteSession("kept", str(path))
    try:
        assert texts(await reopened.get_items()) == ["remember me", "I will"]
        assert (await reopened.get_meta()).current_agent == "memory keeper"
    finally:
        await reopened.aclose()
        await close_shared_databases()


async def test_sqlite_defaults_to_sessions_db_in_the_data_directory(tmp_path):
    session = SQLiteSession("default")
    assert session.path == tmp_path / "data" / "sessions.db"  # AGENTRIG_DATA_DIR in conftest
    assert not session.path.exists()  # nothing happens before the first use
    try:
        await session.add_items([user_message("hello")])
        assert session.path.is_file()
        database = Database(f"sqlite:///{session.path}")
        try:
            assert await database.current_revision() == "0006"
        finally:
            await database.aclose()
    finally:
        await close_shared_databases()


async def _raw_sql(url: str, session_id: str) -> tuple[list[str], str | None]:
    database = await shared_database(url)
    async with database.engine.connect() as connection:
        items = await connection.scalars(
            select(SessionItemRow.item)
            .where(SessionItemRow.session_id == session_id)
            .order_by(SessionItemRow.id)
        )
        rows = list(items.all())
        meta = await connection.scalar(
            select(SessionRow.meta).where(SessionRow.session_id == session_id)
        )
    return rows, meta


async def test_every_persistent_backend_stores_the_same_text(tmp_path):
    items = every_kind_of_item()
    meta = SessionMeta(current_agent="reader", tool_state={"t": {"nested": {"x": [1, "é"]}}})
    expected_items = [json.dumps(item.to_json()) for item in items]
    expected_meta = json.dumps(meta.model_dump(mode="json"))
    stored = {}
    async with AsyncExitStack() as stack:
        for name in ("sqlite", "postgres", "redis"):
            backend = await stack.enter_async_context(open_backend(name, tmp_path))
            session = await backend.make("same")
            await session.add_items(items)
            await session.set_meta(meta)
            if name == "redis":
                client = Redis.from_url(REDIS_URL, decode_responses=True)
                stack.push_async_callback(client.aclose)
                stored[name] = (
                    await client.lrange(f"{backend.key_prefix}same:items", 0, -1),
                    await client.get(f"{backend.key_prefix}same:meta"),
                )
            else:
                stored[name] = await _raw_sql(backend.url, "same")
        assert stored["sqlite"] == stored["postgres"] == stored["redis"]
        assert stored["redis"] == (expected_items, expected_meta)

        # What Redis stored, copied row by row into the SQL table, reads back as the items.
        sqlite_database = await shared_database(f"sqlite:///{tmp_path / 'sessions.db'}")
        async with sqlite_database.engine.begin() as connection:
            await connection.execute(
                insert(SessionItemRow).values(
                    [
                        {"session_id": "copied", "item": text, "created_at": datetime.now(UTC)}
                        for text in stored["redis"][0]
                    ]
                )
            )
        copied = await SQLiteSession("copied", tmp_path / "sessions.db").get_items()
        assert [item.to_json() for item in copied] == [item.to_json() for item in items]


async def test_redis_refreshes_the_ttl_on_every_write_and_keeps_a_given_client():
    prefix = f"agentrig:test:{secrets.token_hex(6)}:"
    client = Redis.from_url(REDIS_URL)
    try:
        session = RedisSession("ttl", client=client, key_prefix=prefix, ttl_seconds=100)
        await session.add_items([user_message("a"), user_message("b")])
        await session.set_meta(SessionMeta(current_agent="x"))
        await client.expire(f"{prefix}ttl:items", 5)
        await client.expire(f"{prefix}ttl:meta", 5)
        await session.pop_item()
        assert 90 < await client.ttl(f"{prefix}ttl:items") <= 100
        assert 90 < await client.ttl(f"{prefix}ttl:meta") <= 100
        await session.aclose()
        assert await client.ping()  # the caller's client stays open
        untimed = RedisSession("untimed", client=client, key_prefix=prefix)
        await untimed.add_items([user_message("c")])
        assert await client.ttl(f"{prefix}untimed:items") == -1  # no expiry
    finally:
        await _delete_redis_keys(prefix)
        await client.aclose()


def test_the_package_imports_without_redis_and_names_the_extra_on_use():
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "import agentrig.sessions as s\n"
        "try:\n"
        "    s.RedisSession('x')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.startswith("ConfigError")
    assert "pip install 'agentrig[redis]'" in result.stdout
