"""The vector store on a Qdrant server or cluster (also Qdrant Cloud), through qdrant-client.

Set ``knowledge.qdrant_url`` (and ``qdrant_api_key_env``, the variable holding its key):
every process of a deployment (server, workers, CLI) then shares one store, which the
embedded engine cannot do. The collections, payloads, indexes and queries are those of
the embedded store (:mod:`agentrig.knowledge.edge`), so a knowledge base behaves the same
on both; the payload indexes (``tenant`` as Qdrant's tenant index, ``document_id``,
``chunk_index``) are created with the collection.

No Qdrant server runs where agentrig is tested: the tests run this class against
qdrant-client's own in-process backend (``AsyncQdrantClient(":memory:")``) through the
same client API, so what is untested is the transport (HTTP or gRPC) alone.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from agentrig.config import Settings
from agentrig.knowledge.keywords import document_vector, query_vector
from agentrig.knowledge.vectors import (
    DENSE,
    KEYWORDS,
    ChunkRecord,
    Condition,
    Filters,
    Hit,
    check_records,
    check_size,
    check_top_k,
    collection_name,
    conditions,
    filled,
    hit_points,
    point_id,
)

__all__ = ["QdrantVectorStore", "qdrant_filter"]

_SCROLL_PAGE = 1000


class QdrantVectorStore:
    """The :class:`~agentrig.knowledge.vectors.VectorStore` on a Qdrant server at ``url``,
    or on a given ``client`` (any ``AsyncQdrantClient``, its in-memory backend included)."""

    embedded = False

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        client: AsyncQdrantClient | None = None,
        batch_size: int = 256,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("QdrantVectorStore needs either a url or a client")
        self._given = client
        self._url, self._api_key = url, api_key
        self._connected: AsyncQdrantClient | None = None
        self._batch_size = batch_size
        self._dims: dict[str, int] = {}  # collections seen -> dense size

    @classmethod
    def from_settings(cls, settings: Settings) -> QdrantVectorStore:
        knowledge = settings.knowledge
        if not knowledge.qdrant_url:
            raise ValueError("knowledge.qdrant_url is not set: no Qdrant server to use")
        env = knowledge.qdrant_api_key_env
        return cls(knowledge.qdrant_url, api_key=os.environ.get(env) if env else None)

    @property
    def _client(self) -> AsyncQdrantClient:
        """The client, connected on first use (constructing it asks the server's version)."""
        if self._given is not None:
            return self._given
        if self._connected is None:
            self._connected = AsyncQdrantClient(url=self._url, api_key=self._api_key)
        return self._connected

    async def aclose(self) -> None:
        client = self._given or self._connected
        if client is not None:
            await client.close()

    async def _size(self, kb: str) -> tuple[str, int | None]:
        """The collection of ``kb`` and its dense size (None: no collection). Other
        processes may drop a collection, so the server is asked every time."""
        name = collection_name(kb)
        if not await self._client.collection_exists(name):
            self._dims.pop(name, None)
            return name, None
        if name not in self._dims:
            info = await self._client.get_collection(name)
            vectors = info.config.params.vectors
            if not isinstance(vectors, dict) or DENSE not in vectors:
                raise ValueError(f"collection {name} was not made by agentrig: no {DENSE!r}")
            self._dims[name] = vectors[DENSE].size
        return name, self._dims[name]

    async def _create(self, kb: str, name: str, size: int) -> int:
        client = self._client
        try:
            await client.create_collection(
                name,
                vectors_config={DENSE: models.VectorParams(size=size, distance="Cosine")},
                sparse_vectors_config={KEYWORDS: models.SparseVectorParams(modifier="idf")},
            )
        except (UnexpectedResponse, ValueError):  # 409 (or ValueError in memory): a race
            if not await client.collection_exists(name):
                raise
            return (await self._size(kb))[1] or size  # the winner's size counts
        tenant = models.KeywordIndexParams(type="keyword", is_tenant=True)
        await client.create_payload_index(name, "tenant", tenant)
        await client.create_payload_index(name, "document_id", "keyword")
        await client.create_payload_index(name, "chunk_index", "integer")
        self._dims[name] = size
        return size

    async def upsert(self, kb: str, records: Sequence[ChunkRecord]) -> None:
        """Index ``records``, replacing chunks with the same tenant, document and index."""
        collection_name(kb)
        if not records:
            return
        dims = check_records(records)
        name, size = await self._size(kb)
        if size is None:
            size = await self._create(kb, name, dims)
        check_size(kb, size, dims)
        for start in range(0, len(records), self._batch_size):
            batch = records[start : start + self._batch_size]
            points = await asyncio.to_thread(self._points, batch)  # tokenizing takes a while
            await self._client.upsert(name, points)

    def _points(self, records: Sequence[ChunkRecord]) -> list[models.PointStruct]:
        points = []
        for record in records:
            vectors: dict[str, Any] = {DENSE: list(record.vector)}
            indices, values = record.keywords or document_vector(record.text)
            if indices:  # a chunk of stopwords only has no keywords
                vectors[KEYWORDS] = models.SparseVector(indices=list(indices), values=list(values))
            id_ = point_id(record.tenant, record.document_id, record.chunk_index)
            points.append(models.PointStruct(id=id_, vector=vectors, payload=record.payload()))
        return points

    async def delete_document(self, kb: str, tenant: str, document_id: str) -> int:
        """Delete every chunk of a document; returns how many there were."""
        return await self._delete(kb, conditions(tenant, document_id))

    async def delete_chunks_from(
        self, kb: str, tenant: str, document_id: str, first_index: int
    ) -> int:
        """Delete a document's chunks from ``first_index`` on: the tail left behind when a
        document is indexed again with fewer chunks. Returns how many there were."""
        return await self._delete(kb, conditions(tenant, document_id, from_index=first_index))

    async def _delete(self, kb: str, where: list[Condition]) -> int:
        name, size = await self._size(kb)
        if size is None:
            return 0
        selector = qdrant_filter(where)
        found = (await self._client.count(name, count_filter=selector, exact=True)).count
        if found:
            await self._client.delete(name, models.FilterSelector(filter=selector))
        return found

    async def existing_hashes(self, kb: str, tenant: str, document_id: str) -> dict[int, str]:
        """chunk_index -> text_hash of a document's indexed chunks, to skip unchanged ones."""
        name, size = await self._size(kb)
        if size is None:
            return {}
        hashes: dict[int, str] = {}
        offset: Any = None
        while True:
            points, offset = await self._client.scroll(
                name,
                scroll_filter=qdrant_filter(conditions(tenant, document_id)),
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=["chunk_index", "text_hash"],
            )
            for point in points:
                payload = point.payload or {}
                hashes[payload["chunk_index"]] = payload["text_hash"]
            if offset is None:
                return hashes

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
    ) -> list[Hit]:
        """The ``top_k`` chunks nearest ``vector`` by cosine, at least ``min_score``."""
        where = conditions(tenant, filters=filters)
        return await self._query(kb, list(vector), DENSE, where, top_k, min_score, payload)

    async def search_keywords(
        self,
        kb: str,
        query_text: str,
        *,
        tenant: str,
        top_k: int,
        filters: Filters | None = None,
        payload: bool = True,
    ) -> list[Hit]:
        """The ``top_k`` chunks best matching ``query_text``'s terms by BM25."""
        where = conditions(tenant, filters=filters)
        sparse = query_vector(query_text)
        query = models.SparseVector(indices=sparse.indices, values=sparse.values)
        return await self._query(kb, query, KEYWORDS, where, top_k, None, payload)

    async def with_payloads(self, kb: str, tenant: str, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` with their text and metadata, fetched by point id in one request."""
        if not hits:
            return []
        ids = hit_points(tenant, hits)
        try:  # the search just found the collection: no need to ask whether it exists
            points = await self._client.retrieve(collection_name(kb), ids)
        except (UnexpectedResponse, ValueError):  # dropped meanwhile (404, or in memory)
            if await self._client.collection_exists(collection_name(kb)):
                raise
            return []
        found = {str(p.id): p.payload for p in points}
        return filled(kb, tenant, hits, ids, [found.get(id_) for id_ in ids])

    async def _query(
        self,
        kb: str,
        query: list[float] | models.SparseVector,
        using: str,
        where: list[Condition],
        top_k: int,
        min_score: float | None,
        payload: bool,
    ) -> list[Hit]:
        check_top_k(top_k)
        name, size = await self._size(kb)
        if size is None or (isinstance(query, models.SparseVector) and not query.indices):
            return []  # no collection, or a query of stopwords only
        if isinstance(query, list):
            check_size(kb, size, len(query))
        try:
            response = await self._client.query_points(
                name,
                query=query,
                using=using,
                query_filter=qdrant_filter(where),
                limit=top_k,
                score_threshold=min_score,
                with_payload=payload,
            )
        except UnexpectedResponse as exc:
            if exc.status_code != 404:
                raise
            self._dims.pop(name, None)  # deleted by another process meanwhile
            return []
        points = response.points
        if not payload:
            return [Hit.from_point(kb, point.score, str(point.id)) for point in points]
        return [Hit.from_payload(kb, p.score, p.payload or {}, str(p.id)) for p in points]

    async def count(self, kb: str, tenant: str | None = None) -> int:
        """How many chunks ``kb`` holds, of one tenant or of all."""
        name, size = await self._size(kb)
        if size is None:
            return 0
        selector = qdrant_filter(conditions(tenant)) if tenant is not None else None
        return (await self._client.count(name, count_filter=selector, exact=True)).count

    async def delete_kb(self, kb: str) -> bool:
        """Drop the knowledge base of every tenant; False if it did not exist."""
        name = collection_name(kb)
        self._dims.pop(name, None)
        if not await self._client.collection_exists(name):
            return False
        return await self._client.delete_collection(name)


def qdrant_filter(where: list[Condition]) -> models.Filter:
    """qdrant-client's filter for plain conditions (see ``vectors.conditions``)."""
    must: list[models.FieldCondition] = []
    for kind, key, *rest in where:
        if kind == "match":
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=rest[0])))
        elif kind == "any":
            must.append(models.FieldCondition(key=key, match=models.MatchAny(any=rest[0])))
        else:
            bounds = models.Range(gte=rest[0], lte=rest[1])
            must.append(models.FieldCondition(key=key, range=bounds))
    return models.Filter(must=must)
