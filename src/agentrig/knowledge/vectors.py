"""The vector store's contract: chunks in, hits out, whichever Qdrant runs underneath.

Two backends implement :class:`VectorStore` with the same engine and the same query
semantics: :class:`~agentrig.knowledge.edge.EdgeVectorStore`, Qdrant's engine embedded in
a child process (the default), and :class:`~agentrig.knowledge.qdrant.QdrantVectorStore`,
a Qdrant server or cluster through qdrant-client (``knowledge.qdrant_url``). What they
share lives here: the records, the hits, the point ids, the payload and the filters.

One collection per knowledge base (``agentrig_<kb>``), created on the first upsert with a
named dense vector (``dense``: cosine, sized by the first vectors) and a named sparse one
(``keywords``: BM25 term frequencies that Qdrant weighs by IDF, see ``keywords.py``).
Tenants share collections, never chunks: every chunk carries its tenant and every read and
delete filters on it. Point ids derive from (tenant, document, chunk index), so indexing a
document again overwrites its chunks instead of duplicating them.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

__all__ = [
    "ChunkRecord",
    "Condition",
    "Filters",
    "Hit",
    "VectorStore",
    "collection_name",
    "conditions",
    "point_id",
]

DENSE = "dense"
KEYWORDS = "keywords"
COLLECTION_PREFIX = "agentrig_"
POINT_NAMESPACE = uuid.UUID("5b0f3c56-8d3e-4c8e-9a51-6a7c1e2f9d40")
PAYLOAD_FIELDS = ("tenant", "document_id", "chunk_index", "text", "text_hash", "metadata")
_KB_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_FIELD = re.compile(r"\w+(?:\.\w+)*")  # a metadata key, dots reaching into nested dicts

Filters = Mapping[str, Any]
# One condition of a filter, every one of which must hold: ("match", key, value),
# ("any", key, values) or ("range", key, gte, lte) with None for an open end.
Condition = tuple[Any, ...]


def collection_name(kb: str) -> str:
    """The Qdrant collection of knowledge base ``kb``; ValueError if the name is invalid."""
    if not isinstance(kb, str) or not _KB_NAME.fullmatch(kb):
        raise ValueError(
            f"invalid knowledge base name {kb!r}: use 1 to 64 lowercase letters, digits, "
            "'-' or '_', starting with a letter or a digit"
        )
    return COLLECTION_PREFIX + kb


def point_id(tenant: str, document_id: str, chunk_index: int) -> str:
    """uuid5 of ``tenant/document_id/chunk_index``, the tenant percent-encoded so that a
    tenant containing '/' cannot produce another tenant's ids."""
    name = f"{quote(tenant, safe='')}/{document_id}/{chunk_index}"
    return str(uuid.uuid5(POINT_NAMESPACE, name))


@dataclass(slots=True)
class ChunkRecord:
    """One chunk to index. ``metadata`` holds ``page``, ``heading``, ``filename`` and any
    user keys (JSON values); ``text_hash`` defaults to the SHA-256 of ``text``.
    ``keywords`` is the text's BM25 vector (``keywords.document_vector(text)``: term ids,
    weights); left None, the store computes it. The indexer computes it while the chunks
    are embedded, so that the store's write path (one per knowledge base) does not."""

    tenant: str
    document_id: str
    chunk_index: int
    text: str
    vector: Sequence[float]
    metadata: dict[str, Any] = field(default_factory=dict)
    text_hash: str = ""
    keywords: tuple[Sequence[int], Sequence[float]] | None = None

    def __post_init__(self) -> None:
        if not self.text_hash:
            self.text_hash = hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def payload(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in PAYLOAD_FIELDS}


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk; ``score`` is a cosine similarity, a BM25 score or a fused one."""

    document_id: str
    chunk_index: int
    text: str
    score: float
    page: int | None
    heading: str | None
    metadata: dict[str, Any]
    kb: str
    point: str = ""  # the store's id of the chunk, when the store gave it

    @classmethod
    def from_payload(
        cls, kb: str, score: float, payload: Mapping[str, Any], point: str = ""
    ) -> Hit:
        metadata = payload.get("metadata") or {}
        return cls(
            document_id=payload["document_id"],
            chunk_index=payload["chunk_index"],
            text=payload.get("text", ""),
            score=score,
            page=metadata.get("page"),
            heading=metadata.get("heading"),
            metadata=metadata,
            kb=kb,
            point=point,
        )

    @classmethod
    def from_point(cls, kb: str, score: float, point: str) -> Hit:
        """A hit known by its point id and score alone (a search without payloads): its
        document is ``""`` and its chunk -1 until :meth:`VectorStore.with_payloads`."""
        return cls("", -1, "", score, None, None, {}, kb, point)

    @property
    def key(self) -> tuple[str, int, str]:
        """What makes two hits the same chunk, for fusion: document, chunk, point id."""
        return (self.document_id, self.chunk_index, self.point)


@runtime_checkable
class VectorStore(Protocol):
    """Where chunks are indexed and searched. ``filters`` maps a metadata key to a value,
    or to a list of values of which any may match; all keys must match. A search with
    ``payload=False`` returns hits with their point id and score alone (no document, text
    or metadata: :meth:`Hit.from_point`), and :meth:`with_payloads` fills in those of
    the hits kept: fusion looks at a hundred candidates a ranking and keeps five, and
    reading a chunk's payload can mean reading its text from disk."""

    async def upsert(self, kb: str, records: Sequence[ChunkRecord]) -> None: ...
    async def delete_document(self, kb: str, tenant: str, document_id: str) -> int: ...
    async def delete_chunks_from(
        self, kb: str, tenant: str, document_id: str, first_index: int
    ) -> int: ...
    async def existing_hashes(self, kb: str, tenant: str, document_id: str) -> dict[int, str]: ...
    async def search_dense(
        self,
        kb: str,
        vector: Sequence[float],
        *,
        tenant: str,
        top_k: int,
        filters: Filters | None = None,
        min_score: float | None = None,
        payload: bool = True,
    ) -> list[Hit]: ...
    async def search_keywords(
        self,
        kb: str,
        query_text: str,
        *,
        tenant: str,
        top_k: int,
        filters: Filters | None = None,
        payload: bool = True,
    ) -> list[Hit]: ...
    async def with_payloads(self, kb: str, tenant: str, hits: Sequence[Hit]) -> list[Hit]: ...
    async def count(self, kb: str, tenant: str | None = None) -> int: ...
    async def delete_kb(self, kb: str) -> bool: ...
    async def aclose(self) -> None: ...


def check_records(records: Sequence[ChunkRecord]) -> int:
    """The vectors' common size; ValueError if the records disagree."""
    sizes = {len(record.vector) for record in records}
    if len(sizes) > 1:
        raise ValueError(f"vectors of one upsert differ in size: {sorted(sizes)}")
    return sizes.pop()


def check_size(kb: str, expected: int, got: int) -> None:
    if expected != got:
        raise ValueError(f"knowledge base {kb!r} holds {expected}-dim vectors, got {got}")


def check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")


def conditions(
    tenant: str | None,
    document_id: str | None = None,
    *,
    filters: Filters | None = None,
    from_index: int | None = None,
) -> list[Condition]:
    """The conditions that select the chunks of a tenant (and of one document, from one
    chunk index on), each metadata filter validated: a clear ValueError names a bad one.

    The document comes first, as it rules out nearly every point where a backend checks
    conditions one after another."""
    where: list[Condition] = []
    if document_id is not None:
        where.append(("match", "document_id", document_id))
    if tenant is not None:
        where.append(("match", "tenant", tenant))
    for key, value in (filters or {}).items():
        if not isinstance(key, str) or not _FIELD.fullmatch(key):
            raise ValueError(f"invalid filter field {key!r}: use a metadata key like 'page'")
        where.append(_condition(f"metadata.{key}", value))
    if from_index is not None:
        where.append(("range", "chunk_index", from_index, None))
    return where


def _condition(key: str, value: Any) -> Condition:
    if isinstance(value, bool | int | str):
        return ("match", key, value)
    if isinstance(value, float):
        return ("range", key, value, value)
    if isinstance(value, list | tuple | set | frozenset):
        values = list(value)
        if values and (
            all(isinstance(v, str) for v in values)
            or all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        ):
            return ("any", key, values)
    raise ValueError(
        f"filter {key.removeprefix('metadata.')!r}: expected a string, a number, a boolean "
        f"or a non-empty list of strings or of integers, got {value!r}"
    )


def hit_points(tenant: str, hits: Sequence[Hit]) -> list[str]:
    """The point ids of ``hits``: those the store gave, else made from their keys."""
    return [hit.point or point_id(tenant, hit.document_id, hit.chunk_index) for hit in hits]


def filled(
    kb: str,
    tenant: str,
    hits: Sequence[Hit],
    points: Sequence[str],
    payloads: Sequence[Mapping[str, Any] | None],
) -> list[Hit]:
    """``hits`` with their ``payloads`` (fetched by ``points``, in order), scores kept; a
    hit whose chunk was deleted meanwhile, or is not ``tenant``'s, is left out."""
    return [
        Hit.from_payload(kb, hit.score, payload, point)
        for hit, point, payload in zip(hits, points, payloads, strict=True)
        if payload is not None and payload.get("tenant") == tenant
    ]
