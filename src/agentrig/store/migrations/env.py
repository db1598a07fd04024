"""Alembic environment: runs on the connection that :class:`agentrig.store.Database` gives."""

from alembic import context

from agentrig.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("agentrig migrations run through agentrig.store.Database.upgrade()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
