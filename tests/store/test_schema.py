"""The Alembic migrations build exactly the tables the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from agentrig.store import Database
from agentrig.store.models import Base


async def test_migrations_match_the_models(database: Database):
    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return [
            diff
            for diff in compare_metadata(context, Base.metadata)
            if not (diff[0] == "remove_table" and diff[1].name == "alembic_version")
        ]

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
