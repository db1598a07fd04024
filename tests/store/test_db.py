import pytest

from agentrig.config import load_settings
from agentrig.errors import ConfigError
from agentrig.store import Database


def test_a_bad_database_url_is_a_configuration_error():
    with pytest.raises(ConfigError, match="'nonsense' is not a database URL"):
        Database("nonsense")


async def test_opening_creates_the_data_directory_and_migrates(tmp_path):
    settings = load_settings(data_dir=tmp_path / "fresh" / "dir")
    database = await Database.open(settings)
    try:
        assert (tmp_path / "fresh" / "dir" / "agentrig.db").exists()
        assert await database.current_revision() == "0006"
        await database.upgrade()  # idempotent
        assert await database.current_revision() == "0006"
    finally:
        await database.aclose()


async def test_postgres_migrates_once_even_when_opened_concurrently(postgres_url):
    import asyncio

    databases = [Database(postgres_url) for _ in range(4)]
    try:
        await asyncio.gather(*(database.upgrade() for database in databases))
        assert {await database.current_revision() for database in databases} == {"0006"}
    finally:
        for database in databases:
            await database.aclose()


async def test_write_commits_or_rolls_back_and_takes_turns_with_the_async_engine(database):
    """``Database.write`` (on SQLite: its own thread and connection) and the async engine
    write the same tables concurrently without lost rows or 'database is locked'."""
    import asyncio

    from sqlalchemy import text

    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE counts (source TEXT, n INTEGER)"))

    def insert(n: int):
        def work(connection):
            connection.execute(text("INSERT INTO counts VALUES ('write', :n)"), {"n": n})
            return n

        return work

    async def through_engine(n: int) -> None:
        async with database.engine.begin() as connection:
            await connection.execute(text("INSERT INTO counts VALUES ('engine', :n)"), {"n": n})

    def failing(connection):
        connection.execute(text("INSERT INTO counts VALUES ('write', -1)"))
        raise RuntimeError("rolled back")

    results = await asyncio.gather(
        *(database.write(insert(n)) for n in range(30)), *(through_engine(n) for n in range(30))
    )
    assert results[:30] == list(range(30))
    with pytest.raises(RuntimeError, match="rolled back"):
        await database.write(failing)
    async with database.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT source, n FROM counts"))).all()
    assert sorted(rows) == sorted(
        [("engine", n) for n in range(30)] + [("write", n) for n in range(30)]
    )


async def test_a_failing_write_among_concurrent_ones_fails_alone(database):
    """On SQLite concurrent writes share a transaction (group commit): the one that fails
    is rolled back to its savepoint, the others commit."""
    import asyncio

    from sqlalchemy import text

    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (n INTEGER)"))

    def insert(n: int):
        def work(connection):
            connection.execute(text("INSERT INTO notes VALUES (:n)"), {"n": n})
            if n == 7:
                raise ValueError("seven is refused")
            return n

        return work

    results = await asyncio.gather(
        *(database.write(insert(n)) for n in range(15)), return_exceptions=True
    )
    assert isinstance(results[7], ValueError) and "seven" in str(results[7])
    assert results[:7] + results[8:] == [n for n in range(15) if n != 7]
    async with database.engine.connect() as connection:
        stored = (await connection.execute(text("SELECT n FROM notes ORDER BY n"))).scalars()
        assert list(stored) == [n for n in range(15) if n != 7]
