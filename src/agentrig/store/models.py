"""The tables agentrig keeps. Every change here comes with an Alembic revision."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone (the same on SQLite and PostgreSQL), reads it back aware."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    pass


class UsageRow(Base):
    """One attempt of one model call: who asked (role), who answered, tokens, cost, outcome."""

    __tablename__ = "llm_usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    role: Mapped[str] = mapped_column(String(200), nullable=False)
    provider: Mapped[str] = mapped_column(String(200), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False, default="chat")
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    outcome: Mapped[str] = mapped_column(String(100), nullable=False)

    __table_args__ = (Index("ix_llm_usage_role_at", "role", "at"),)


# --- sessions (agentrig.sessions.sql) ------------------------------------------------

# A 64-bit id on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the autoincrementing rowid.
SessionItemId = BigInteger().with_variant(Integer(), "sqlite")


class SessionRow(Base):
    """One conversation: its id and metadata (``SessionMeta`` as JSON text)."""

    __tablename__ = "agent_sessions"

    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    meta: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class SessionItemRow(Base):
    """One item of a conversation, as ``json.dumps(item.to_json())``; ordered by ``id``."""

    __tablename__ = "agent_session_items"

    id: Mapped[int] = mapped_column(SessionItemId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    item: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
