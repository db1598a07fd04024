"""The tables agentrig keeps. Every change here comes with an Alembic revision."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
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


# --- the OpenAI-compatible server (agentrig.store.responses, agentrig.store.api_keys) ------
#
# An item is stored once, keyed by (tenant, wire id); a response and a conversation hold
# ordered lists of item ids (item_lists), so a long conversation is not copied at every
# turn. Every row carries the tenant of the API key that made it; reads filter on it.


class StoredItemRow(Base):
    """One item (``msg_…``, ``fc_…``, ``fco_…``, ``rs_…``) as ``json.dumps(item.to_json())``."""

    __tablename__ = "items"

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(50), nullable=False)
    json: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class ResponseRow(Base):
    """One response: the response object without ``output`` (JSON text) and its links."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), nullable=False)
    status: Mapped[str] = mapped_column(String(50), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    previous_response_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resource: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (Index("ix_responses_tenant_created_at", "tenant", "created_at"),)


class ItemListRow(Base):
    """The item at ``position`` of a list: the ``input`` or ``output`` (``kind``) of the
    response ``owner_id``, or the items of the conversation ``owner_id`` (``conversation``)."""

    __tablename__ = "item_lists"

    owner_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), nullable=False)
    item_id: Mapped[str] = mapped_column(String(200), nullable=False)

    __table_args__ = (
        Index("ix_item_lists_owner_item", "owner_id", "kind", "item_id"),
        Index("ix_item_lists_tenant_item", "tenant", "item_id"),
    )


class ConversationRow(Base):
    """One conversation; ``next_position`` is the position its next item gets."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), nullable=False)
    meta: Mapped[str] = mapped_column(Text, nullable=False)
    next_position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class ApiKeyRow(Base):
    """An API key of the server: only its SHA-256 hash and a display prefix are kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    prefix: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    __table_args__ = (Index("ix_api_keys_key_hash", "key_hash", unique=True),)


class DocumentRow(Base):
    """An uploaded document of a knowledge base: its file (``blob_key``) and indexing state."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), nullable=False)
    kb: Mapped[str] = mapped_column(String(100), nullable=False)
    filename: Mapped[str] = mapped_column(String(500), nullable=False)
    content_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    blob_key: Mapped[str] = mapped_column(String(1000), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[str] = mapped_column(Text, nullable=False)
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_documents_tenant_kb_created_at", "tenant", "kb", "created_at"),)


class JobRow(Base):
    """A background job; the record of truth whichever queue carries it. A ``running`` job
    whose ``lease_until`` has passed is taken over by another worker."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    tenant: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (Index("ix_jobs_status_run_after", "status", "run_after"),)


class EmbeddingCacheRow(Base):
    """An embedding already computed: a chunk whose text did not change is not embedded
    again. ``vector`` is little-endian float32."""

    __tablename__ = "embedding_cache"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dimensions: Mapped[int] = mapped_column(Integer, nullable=False)
    vector: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class CrewRunRow(Base):
    """A crew run started through the API: its ``CrewState`` (JSON, the record to resume
    from), where it stands (``queued``, ``running``, ``paused``, ``completed``, ``failed``)
    and, once it has ended or paused, its result and totals."""

    __tablename__ = "crew_runs"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), nullable=False)
    crew: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_crew_runs_tenant_created_at", "tenant", "created_at"),)


class FlowRunRow(Base):
    """A flow run's head: its ``FlowRun`` record without the history (JSON: the state to
    run next, the variables, a paused step), with its status, current state and totals as
    columns to list and filter on; written when the run starts, pauses or ends."""

    __tablename__ = "flow_runs"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), nullable=False)
    flow: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    current_state: Mapped[str | None] = mapped_column(String(200), nullable=True)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    steps: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_flow_runs_tenant_created_at", "tenant", "created_at"),
        Index("ix_flow_runs_tenant_status", "tenant", "status"),
    )


class FlowRunStepRow(Base):
    """One finished step of a flow run (its ``StepRecord`` JSON, and where the run stood
    after it), written at the step's boundary; ``position`` counts from 0."""

    __tablename__ = "flow_run_steps"

    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[str] = mapped_column(Text, nullable=False)
