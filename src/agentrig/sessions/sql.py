"""Sessions in the SQL database: SQLite for one machine, PostgreSQL for several processes.

Two tables (``agent_sessions``: one row per conversation with its metadata;
``agent_session_items``: one row per item, ordered by ``id``) created by the Alembic
revision 0002. Every write locks the conversation's row first (the upsert of
``add_items``, the ``UPDATE`` of ``pop_item``, the ``DELETE`` of ``clear``), so concurrent
writers to one conversation take turns: the items of one ``add_items`` call stay adjacent
and two pops never return the same item, on PostgreSQL as on SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from agentrig.config import load_settings
from agentrig.errors import ConfigError
from agentrig.items import Item
from agentrig.sessions.base import SessionMeta
from agentrig.sessions.memory import dump_item, dump_meta, load_item, load_meta
from agentrig.store import Database
from agentrig.store.models import SessionItemRow, SessionRow
from agentrig.store.shared import shared_database

_ROWS_PER_INSERT = 1000  # well under the bind-parameter limits of SQLite and asyncpg


def _now() -> datetime:
    return datetime.now(UTC)


class SQLAlchemySession:
    """A session in the ``agent_sessions`` tables of a migrated :class:`Database`."""

    def __init__(self, session_id: str, database: Database) -> None:
        self.session_id = session_id
        self.database: Database | None = database

    @classmethod
    async def open(cls, session_id: str, url: str) -> SQLAlchemySession:
        """A session in the database at ``url``, migrated; one engine per URL per process."""
        return cls(session_id, await shared_database(url))

    async def _ready(self) -> Database:
        assert self.database is not None
        return self.database

    def _upsert(self, database: Database, meta: SessionMeta | None = None) -> Insert:
        """Create the conversation's row or touch it (and set ``meta`` when given)."""
        dialect = database.engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ConfigError(f"sessions support SQLite and PostgreSQL, not {dialect}")
        insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
        now = _now()
        statement = insert_(SessionRow).values(
            session_id=self.session_id,
            meta=dump_meta(meta or SessionMeta()),
            created_at=now,
            updated_at=now,
        )
        changes = {"updated_at": statement.excluded.updated_at}
        if meta is not None:
            changes["meta"] = statement.excluded.meta
        return statement.on_conflict_do_update(index_elements=["session_id"], set_=changes)

    async def get_items(self, limit: int | None = None) -> list[Item]:
        if limit is not None and limit <= 0:
            return []
        database = await self._ready()
        query = select(SessionItemRow.item).where(SessionItemRow.session_id == self.session_id)
        if limit is None:
            query = query.order_by(SessionItemRow.id)
        else:
            query = query.order_by(SessionItemRow.id.desc()).limit(limit)
        async with database.engine.connect() as connection:
            rows = list((await connection.scalars(query)).all())
        if limit is not None:
            rows.reverse()
        return [load_item(row) for row in rows]

    async def add_items(self, items: Sequence[Item]) -> None:
        rows = [dump_item(item) for item in items]
        if not rows:
            return
        database = await self._ready()
        now = _now()
        async with database.engine.begin() as connection:
            # The upsert locks the conversation's row until commit: appends take turns.
            await connection.execute(self._upsert(database))
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                values = [
                    {"session_id": self.session_id, "item": row, "created_at": now}
                    for row in rows[start : start + _ROWS_PER_INSERT]
                ]
                await connection.execute(insert(SessionItemRow).values(values))

    async def pop_item(self) -> Item | None:
        database = await self._ready()
        last_id = (
            select(func.max(SessionItemRow.id))
            .where(SessionItemRow.session_id == self.session_id)
            .scalar_subquery()
        )
        async with database.engine.begin() as connection:
            # Lock the conversation first; the DELETE then reads a snapshot taken after it.
            await connection.execute(
                update(SessionRow)
                .where(SessionRow.session_id == self.session_id)
                .values(updated_at=_now())
            )
            data = await connection.scalar(
                delete(SessionItemRow)
                .where(SessionItemRow.id == last_id)
                .returning(SessionItemRow.item)
            )
        return None if data is None else load_item(data)

    async def clear(self) -> None:
        database = await self._ready()
        async with database.engine.begin() as connection:
            await connection.execute(
                delete(SessionRow).where(SessionRow.session_id == self.session_id)
            )
            await connection.execute(
                delete(SessionItemRow).where(SessionItemRow.session_id == self.session_id)
            )

    async def get_meta(self) -> SessionMeta:
        database = await self._ready()
        async with database.engine.connect() as connection:
            data = await connection.scalar(
                select(SessionRow.meta).where(SessionRow.session_id == self.session_id)
            )
        return load_meta(data)

    async def set_meta(self, meta: SessionMeta) -> None:
        database = await self._ready()
        async with database.engine.begin() as connection:
            await connection.execute(self._upsert(database, meta))

    async def aclose(self) -> None:
        """Nothing to close: the database belongs to its opener (or to the shared cache)."""


class SQLiteSession(SQLAlchemySession):
    """A session in a SQLite file, by default ``sessions.db`` in the data directory.

    The file is created and migrated on first use; sessions on one file share an engine.
    """

    def __init__(self, session_id: str, path: str | Path | None = None) -> None:
        self.session_id = session_id
        if path is None:
            path = load_settings().data_dir / "sessions.db"
        self.path = Path(path).expanduser().resolve()
        self.database = None
        self._opening = asyncio.Lock()

    async def _ready(self) -> Database:
        if self.database is None:
            async with self._opening:
                if self.database is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self.database = await shared_database(f"sqlite:///{self.path}")
        return self.database
