"""Documents of the knowledge bases and the embedding cache.

A document row holds what was uploaded (file name, type, size, SHA-256, where the file
is kept) and where its indexing stands: ``pending`` → ``parsing`` → ``chunking`` →
``embedding`` → ``indexed``, or ``failed`` with a reason a person understands. Every
read filters on the tenant: another tenant's document reads as missing.

The embedding cache maps (model, SHA-256 of a chunk's text) to its vector, so that a
chunk whose text did not change is never embedded twice, by any document or worker.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from agentrig.items import new_id
from agentrig.store.db import Database
from agentrig.store.models import DocumentRow, EmbeddingCacheRow

STATUSES = ("pending", "parsing", "chunking", "embedding", "indexed", "failed")


@dataclass(frozen=True)
class Document:
    id: str
    tenant: str
    kb: str
    filename: str
    content_type: str | None
    size_bytes: int
    sha256: str
    blob_key: str
    status: str
    reason: str | None
    metadata: dict[str, Any]
    chunk_count: int
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The document as the HTTP API shows it."""
        return {
            "id": self.id,
            "object": "document",
            "kb": self.kb,
            "filename": self.filename,
            "content_type": self.content_type,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "status": self.status,
            "reason": self.reason,
            "metadata": self.metadata,
            "chunk_count": self.chunk_count,
            "created_at": int(self.created_at.timestamp()),
            "updated_at": int(self.updated_at.timestamp()),
            "indexed_at": None if self.indexed_at is None else int(self.indexed_at.timestamp()),
        }


def _document(row: Any) -> Document:
    values = row._asdict()
    values["metadata"] = json.loads(values.pop("meta"))
    return Document(**values)


# The indexer's statements are built once, with bound parameters: building and compiling
# an UPDATE per call cost more CPU than SQLite's work. An UPDATE without ``.values()`` sets
# the columns its parameters name.
_CHANGE = update(DocumentRow).where(
    DocumentRow.id == bindparam("document_id"), DocumentRow.tenant == bindparam("owner")
)
_START_INDEXING = _CHANGE.returning(*DocumentRow.__table__.columns)
_CACHED = select(EmbeddingCacheRow.text_hash, EmbeddingCacheRow.vector).where(
    EmbeddingCacheRow.model == bindparam("model"),
    EmbeddingCacheRow.text_hash.in_(bindparam("hashes", expanding=True)),
)
_CACHE_SQLITE = sqlite_insert(EmbeddingCacheRow).on_conflict_do_nothing()
_CACHE_POSTGRES = postgresql_insert(EmbeddingCacheRow).on_conflict_do_nothing()


class DocumentStore:
    """Document rows in a migrated :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self,
        tenant: str,
        kb: str,
        filename: str,
        *,
        content_type: str | None,
        size_bytes: int,
        sha256: str,
        blob_key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        document_id: str | None = None,
    ) -> Document:
        """A new ``pending`` document; ``blob_key`` defaults to ``tenant/id/filename``."""
        now, document_id = datetime.now(UTC), document_id or new_id("doc")
        row = {
            "id": document_id,
            "tenant": tenant,
            "kb": kb,
            "filename": filename,
            "content_type": content_type,
            "size_bytes": size_bytes,
            "sha256": sha256,
            "blob_key": blob_key or f"{tenant}/{document_id}/{filename}",
            "status": "pending",
            "reason": None,
            "meta": json.dumps(dict(metadata or {})),
            "chunk_count": 0,
            "created_at": now,
            "updated_at": now,
            "indexed_at": None,
        }
        async with self.database.engine.begin() as connection:
            await connection.execute(insert(DocumentRow).values(row))
        return await self.get(tenant, document_id)  # type: ignore[return-value]

    async def get(self, tenant: str, document_id: str) -> Document | None:
        query = select(DocumentRow).where(
            DocumentRow.id == document_id, DocumentRow.tenant == tenant
        )
        async with self.database.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _document(row)

    async def list(
        self, tenant: str, *, kb: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Document]:
        """The tenant's documents, newest first."""
        query = select(DocumentRow).where(DocumentRow.tenant == tenant)
        if kb is not None:
            query = query.where(DocumentRow.kb == kb)
        query = query.order_by(DocumentRow.created_at.desc(), DocumentRow.id)
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(query.limit(limit).offset(offset))).all()
        return [_document(row) for row in rows]

    async def set_status(
        self,
        tenant: str,
        document_id: str,
        status: str,
        *,
        reason: str | None = None,
        chunk_count: int | None = None,
    ) -> bool:
        """Move the document to ``status``; ``False`` if it does not exist (deleted)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        now = datetime.now(UTC)
        values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": now}
        if chunk_count is not None:
            values["chunk_count"] = chunk_count
        if status == "indexed":
            values["indexed_at"] = now
        values |= {"document_id": document_id, "owner": tenant}
        changed = await self.database.write(
            lambda connection: connection.execute(_CHANGE, values).rowcount
        )
        return changed == 1

    async def start_indexing(self, tenant: str, document_id: str) -> Document | None:
        """Move the document to ``parsing`` and return it; ``None`` if it does not exist.

        One statement where a read and a status update would take two transactions: the
        indexer does this for every document."""
        values = {
            "status": "parsing",
            "reason": None,
            "updated_at": datetime.now(UTC),
            "document_id": document_id,
            "owner": tenant,
        }
        row = await self.database.write(
            lambda connection: connection.execute(_START_INDEXING, values).first()
        )
        return None if row is None else _document(row)

    async def delete(self, tenant: str, document_id: str) -> Document | None:
        """Delete the row; the deleted document, ``None`` if there was none."""
        found = await self.get(tenant, document_id)
        if found is None:
            return None
        mine = (DocumentRow.id == document_id, DocumentRow.tenant == tenant)
        async with self.database.engine.begin() as connection:
            await connection.execute(delete(DocumentRow).where(*mine))
        return found


class EmbeddingCache:
    """Vectors by (model, text hash), stored as float32."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def get_many(self, model: str, hashes: Iterable[str]) -> dict[str, list[float]]:
        wanted = sorted(set(hashes))

        def read(connection: Connection) -> dict[str, list[float]]:
            found: dict[str, list[float]] = {}
            for start in range(0, len(wanted), 500):
                parameters = {"model": model, "hashes": wanted[start : start + 500]}
                for text_hash, blob in connection.execute(_CACHED, parameters):
                    found[text_hash] = array("f", blob).tolist()
            return found

        return await self.database.read(read)

    async def put_many(self, model: str, vectors: Mapping[str, Sequence[float]]) -> None:
        """Store new vectors; a hash already cached keeps its vector."""
        if not vectors:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "model": model,
                "text_hash": text_hash,
                "dimensions": len(vector),
                "vector": array("f", vector).tobytes(),
                "created_at": now,
            }
            for text_hash, vector in sorted(vectors.items())  # sorted: no lock-order deadlock
        ]
        statement = _CACHE_SQLITE if self.database.is_sqlite else _CACHE_POSTGRES
        await self.database.write(lambda connection: connection.execute(statement, rows))
