"""Opening the database: an async SQLAlchemy engine, migrated to the newest schema.

:meth:`Database.write` runs a function in a transaction. On a SQLite file it runs in a
thread of its own over a synchronous connection (``BEGIN IMMEDIATE``), so that a whole
transaction costs one thread hop: aiosqlite makes one per statement, cursor and commit,
which cost more than a millisecond for a transaction of four statements. The writes that
arrive while one transaction runs share the next (group commit), each in a savepoint of
its own, so that one that fails is rolled back alone: the hop, not SQLite, was most of
a write's cost (a status update: 0.31-0.34 ms of CPU, 0.09-0.13 run inline). Elsewhere
(PostgreSQL, in-memory SQLite) it runs through the async engine.

:meth:`Database.write_now` is for the one small statement a caller makes often and waits
for, a flow's write at every step: on a SQLite file it runs at once in the caller's
thread on a connection of its own (a thread hop cost 79 µs here, the write and its commit
27-45 µs), and when another writer holds the lock it does not wait: the caller goes
through :meth:`write` instead.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from agentrig.config import Settings, async_database_url
from agentrig.errors import ConfigError
from agentrig.store.group_commit import GroupCommit

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x6167656E74726967  # "agentrig": one migrator at a time on PostgreSQL
T = TypeVar("T")
_LOCK_TIMEOUT = 30.0  # seconds a SQLite writer waits for the write lock


class Database:
    """An engine and a session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = async_database_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        options: dict = {}
        if self.is_sqlite:
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        try:
            self.engine: AsyncEngine = create_async_engine(self.url, **options)
        except ImportError as exc:
            raise ConfigError(
                f"database_url {url!r} needs the driver {exc.name}: "
                "pip install 'agentrig[postgres]'"
            ) from exc
        except ArgumentError as exc:
            raise ConfigError(f"database_url {url!r} is not a database URL: {exc}") from exc
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._now: sqlite3.Connection | None = None  # write_now's connection
        database = self.engine.url.database
        if self.is_sqlite and database and database != ":memory:" and "memory" not in self.url:
            self._writer = create_engine(
                make_url(self.url).set(drivername="sqlite+pysqlite"),
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            event.listen(self._writer, "connect", _sqlite_writer_connection)
            event.listen(self._writer, "begin", _begin_immediate)
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="agentrig-sqlite")
            self._writes: GroupCommit[Callable[[Connection], Any], Any] = GroupCommit(
                self._write_together
            )

    @classmethod
    async def open(cls, settings: Settings) -> Database:
        """Open the configured database (creating the SQLite file's folder) and migrate it."""
        url = settings.effective_database_url
        if url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = cls(url)
        await database.upgrade()
        return database

    def session(self) -> AsyncSession:
        return self.sessions()

    async def write(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in one transaction, committed unless it raises."""
        if self._writer is None:
            async with self.engine.begin() as connection:
                return await connection.run_sync(work)
        return await self._writes.submit(work)

    def write_now(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> int | None:
        """Run the SQLite ``statements`` (SQL, parameters) in a transaction of their own,
        here and now, on a SQLite file; the last one's row count, or ``None`` when this
        database is not a SQLite file or another writer holds the lock (then
        :meth:`write` them)."""
        if self._writer is None:
            return None
        connection = self._now or self._connect_now()
        if len(statements) == 1:  # a statement alone is a transaction (autocommit)
            try:
                return connection.execute(*statements[0]).rowcount
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc):
                    return None
                raise
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                return None
            raise
        count = 0
        try:
            for sql, parameters in statements:
                count = connection.execute(sql, parameters).rowcount
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return count

    def _connect_now(self) -> sqlite3.Connection:
        path = make_url(self.url).database
        assert path
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=0")  # never wait here: write() waits
        self._now = connection
        return connection

    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` for a hot read: on a SQLite file it joins the writer's next
        transaction (one thread hop, where aiosqlite makes several), elsewhere it runs on
        a connection of the async engine."""
        if self._writer is None:
            async with self.engine.connect() as connection:
                return await connection.run_sync(work)
        return await self._writes.submit(work)

    async def _write_together(self, works: Sequence[Callable[[Connection], Any]]) -> list[Any]:
        """``works`` in one transaction on the writer thread; an exception in the list
        fails that work alone."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_thread, self._transaction, works)

    def _transaction(self, works: Sequence[Callable[[Connection], Any]]) -> list[Any]:
        assert self._writer is not None
        try:
            with self._writer.begin() as connection:
                if len(works) == 1:  # its exception rolls the transaction back
                    return [works[0](connection)]
                outcomes = []
                for work in works:
                    try:
                        with connection.begin_nested():  # a savepoint
                            outcomes.append(work(connection))
                    except Exception as exc:
                        outcomes.append(exc)
                return outcomes
        except Exception as exc:  # the work alone, or the transaction's begin or commit
            return [exc] * len(works)

    async def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to ``revision``."""
        async with self.engine.begin() as connection:
            if not self.is_sqlite:
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            await connection.run_sync(_run_migrations, revision)

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as connection:
            return await connection.run_sync(_current_revision)

    async def aclose(self) -> None:
        if self._now is not None:
            self._now.close()
            self._now = None
        if self._writer_thread is not None and self._writer is not None:
            await self._writes.aclose()
            writer = self._writer
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, writer.dispose)
            self._writer_thread.shutdown()
            self._writer = self._writer_thread = None
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _run_migrations(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_writer_connection(dbapi_connection: object, record: object) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    # pysqlite's own BEGIN is deferred: a transaction that reads first would then fail to
    # take the write lock if another connection wrote meanwhile. ``_begin_immediate`` begins.
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]


def _begin_immediate(connection: Connection) -> None:
    """``BEGIN IMMEDIATE``, retried every 0.2-5 ms while another process writes.

    SQLite's own busy handler sleeps 1, 2, 5, 10, ... up to 100 ms between tries: with
    several server processes writing all the time, those sleeps (not the writes) were the
    wait. Once begun, the transaction holds the write lock and nothing else waits.
    """
    raw = connection.connection.dbapi_connection
    assert raw is not None
    deadline, pause = time.monotonic() + _LOCK_TIMEOUT, 0.0002
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.005)
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(_LOCK_TIMEOUT * 1000)}")
