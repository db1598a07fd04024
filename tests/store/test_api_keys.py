"""API keys on SQLite and PostgreSQL: created once, stored as hashes only, verified with a
small cache, last use written at most once a minute, revoked."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select, update

from agentrig.store import Database
from agentrig.store.api_keys import KEY_PREFIX, ApiKeyStore
from agentrig.store.models import ApiKeyRow


async def stored_rows(database: Database) -> list[dict]:
    async with database.engine.connect() as connection:
        return [dict(row._mapping) for row in await connection.execute(select(ApiKeyRow))]


async def last_used(database: Database, key_id: str) -> datetime | None:
    async with database.engine.connect() as connection:
        return await connection.scalar(select(ApiKeyRow.last_used_at).where(ApiKeyRow.id == key_id))


async def test_a_key_is_shown_once_and_stored_only_as_its_hash(database):
    keys = ApiKeyStore(database)
    key, record = await keys.create("ci")
    assert key.startswith(KEY_PREFIX) and len(key) == len(KEY_PREFIX) + 43
    assert record.tenant.startswith("tnt_") and record.id.startswith("key_")
    assert record.name == "ci" and not record.revoked and record.last_used_at is None
    assert record.prefix == key[: len(KEY_PREFIX) + 8]

    [row] = await stored_rows(database)
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    secret = key[len(record.prefix) :]
    assert not any(secret in str(value) or key in str(value) for value in row.values()), (
        "the raw key is nowhere in the table"
    )
    assert key not in repr(record)

    other, other_record = await keys.create("ci", tenant=record.tenant)
    assert other != key and other_record.tenant == record.tenant


async def test_verify_accepts_the_key_and_nothing_else(database):
    keys = ApiKeyStore(database)
    key, record = await keys.create("app", tenant="tnt_acme")
    verified = await keys.verify(key)
    assert verified is not None
    assert (verified.id, verified.tenant, verified.name) == (record.id, "tnt_acme", "app")
    assert await keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert await keys.verify(KEY_PREFIX + "x" * 43) is None
    assert await keys.verify("Bearer " + key) is None
    assert await keys.verify("") is None
    # Another process (another store, no cache) accepts it too.
    assert (await ApiKeyStore(database).verify(key)).id == record.id


async def test_last_used_at_is_written_at_most_once_a_minute(database):
    keys = ApiKeyStore(database, cache_ttl=0)
    key, record = await keys.create("app")
    first = await keys.verify(key)
    stamped = await last_used(database, record.id)
    assert stamped is not None and first.last_used_at == stamped
    assert abs(stamped - datetime.now(UTC)) < timedelta(seconds=30)

    await keys.verify(key)
    assert await last_used(database, record.id) == stamped  # not rewritten within a minute

    earlier = stamped - timedelta(minutes=2)
    async with database.engine.begin() as connection:
        await connection.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == record.id).values(last_used_at=earlier)
        )
    await keys.verify(key)
    assert await last_used(database, record.id) > earlier


async def test_a_verified_key_is_cached_for_a_few_seconds(database):
    keys = ApiKeyStore(database, cache_ttl=0.3)
    key, record = await keys.create("app")
    statements: list[str] = []

    def count(*args) -> None:
        statements.append(args[2])

    await keys.verify(key)
    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert (await keys.verify(key)).id == record.id
        assert statements == []  # answered from the cache, no database round trip
        await asyncio.sleep(0.4)
        assert (await keys.verify(key)).id == record.id
        assert len(statements) == 1  # expired: read again (last use is recent, not rewritten)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)


async def test_revoke(database):
    keys = ApiKeyStore(database)
    elsewhere = ApiKeyStore(database, cache_ttl=0.3)  # another process, with a warm cache
    key, record = await keys.create("app")
    assert await keys.verify(key) is not None
    assert await elsewhere.verify(key) is not None

    assert await keys.revoke(record.id)
    assert not await keys.revoke(record.id)
    assert not await keys.revoke("key_missing")
    assert await keys.verify(key) is None  # at once in this process
    assert await ApiKeyStore(database).verify(key) is None
    assert await elsewhere.verify(key) is not None  # until its cache entry expires
    await asyncio.sleep(0.4)
    assert await elsewhere.verify(key) is None
    [row] = await stored_rows(database)
    assert row["revoked"] is True


async def test_list_and_count(database):
    keys = ApiKeyStore(database)
    assert await keys.count() == 0 and await keys.list() == []
    _, first = await keys.create("one", tenant="tnt_a")
    _, second = await keys.create("two", tenant="tnt_a")
    _, third = await keys.create("three")
    await keys.revoke(second.id)

    assert await keys.count() == 2
    assert await keys.count(include_revoked=True) == 3
    listed = await keys.list()
    assert [record.name for record in listed] == ["one", "two", "three"]
    assert [record.revoked for record in listed] == [False, True, False]
    assert [record.id for record in await keys.list("tnt_a")] == [first.id, second.id]
    assert [record.id for record in await keys.list(third.tenant)] == [third.id]
