"""The vector store: document chunks in Qdrant, dense and keyword vectors in one point.

One collection per knowledge base (``agentrig_<kb>``), created on the first upsert with a
named dense vector (``dense``: cosine, sized by the first vectors) and a named sparse one
(``keywords``: BM25 term frequencies that Qdrant weighs by IDF, see ``keywords.py``).
Tenants share collections, never chunks: every chunk carries its tenant and every read and
delete filters on it. Point ids derive from (tenant, document, chunk index), so indexing a
document again overwrites its chunks instead of duplicating them.

Qdrant runs embedded by default (``path``: points in memory, saved to SQLite in the folder)
or as a server (``url``). Embedded Qdrant locks its folder: one client per folder per
process, and no second process may open it meanwhile. Stores of one process therefore
share one client per folder (opened on first use, closed with the last store), and several
worker processes need a server. Embedded Qdrant is pure Python and synchronous, even behind
``AsyncQdrantClient``, so it works in a thread of its own, one call at a time, and leaves
the event loop free. Its search is exact (brute force, filters checked point by point in
Python): at 10,000 chunks a dense query took 130 ms and a keyword one 890 ms (p50,
``bench/search.py``). It commits each upserted point to SQLite on its own, whatever the
batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from qdrant_client import AsyncQdrantClient, QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from agentrig.config import Settings
from agentrig.knowledge.keywords import DEFAULT_AVG_LEN, document_vector, query_vector

__all__ = [
    "ChunkRecord",
    "Hit",
    "QdrantVectorStore",
    "VectorStore",
    "collection_name",
    "point_id",
]

DENSE = "dense"
KEYWORDS = "keywords"
COLLECTION_PREFIX = "agentrig_"
POINT_NAMESPACE = uuid.UUID("5b0f3c56-8d3e-4c8e-9a51-6a7c1e2f9d40")
_KB_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_FIELD = re.compile(r"\w+(?:\.\w+)*")  # a metadata key, dots reaching into nested dicts
_SCROLL_PAGE = 1000
_PAYLOAD = ("tenant", "document_id", "chunk_index", "text", "text_hash", "metadata")

Filters = Mapping[str, Any]


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
    user keys (JSON values); ``text_hash`` defaults to the SHA-256 of ``text``."""

    tenant: str
    document_id: str
    chunk_index: int
    text: str
    vector: Sequence[float]
    metadata: dict[str, Any] = field(default_factory=dict)
    text_hash: str = ""

    def __post_init__(self) -> None:
        if not self.text_hash:
            self.text_hash = hashlib.sha256(self.text.encode("utf-8")).hexdigest()


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


@runtime_checkable
class VectorStore(Protocol):
    """Where chunks are indexed and searched. ``filters`` maps a metadata key to a value,
    or to a list of values of which any may match; all keys must match."""

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
    ) -> list[Hit]: ...
    async def search_keywords(
        self, kb: str, query_text: str, *, tenant: str, top_k: int, filters: Filters | None = None
    ) -> list[Hit]: ...
    async def count(self, kb: str, tenant: str | None = None) -> int: ...
    async def delete_kb(self, kb: str) -> bool: ...
    async def aclose(self) -> None: ...


_worker = ThreadPoolExecutor(1, "qdrant")  # embedded Qdrant's thread, for every folder


class _Client:
    """A Qdrant client whose methods :meth:`call` awaits alike on a server and embedded.

    A server's ``AsyncQdrantClient`` is awaited as it is. An embedded ``QdrantClient`` is
    opened, called and closed in one worker thread, which runs the calls one at a time, in
    order: embedded Qdrant is not thread-safe, and SQLite may insist on one thread."""

    def __init__(self, server: AsyncQdrantClient | None = None, path: Path | None = None) -> None:
        self.dims: dict[str, int] = {}  # collections known to exist -> dense size
        self.users = 0  # stores sharing an embedded client
        self._server, self._path = server, path
        self._local: QdrantClient | None = None  # opened by the first call

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        if self._server is not None:
            return await getattr(self._server, method)(*args, **kwargs)
        job = partial(self._run, method, *args, **kwargs)
        done = asyncio.get_running_loop().run_in_executor(_worker, job)
        return await (asyncio.shield(done) if method == "close" else done)

    def _run(self, method: str, /, *args: Any, **kwargs: Any) -> Any:  # in the worker
        if method == "close":  # shielded above: a cancelled close would keep the folder locked
            return self._local and self._local.close()  # later calls: "instance is closed"
        if self._local is None:
            try:
                self._local = QdrantClient(path=str(self._path))
            except RuntimeError as exc:  # the folder's lock is held elsewhere
                raise RuntimeError(
                    f"embedded Qdrant at {self._path} is in use by another process; "
                    "share vectors between processes with a Qdrant server "
                    "(knowledge.qdrant_url)"
                ) from exc
        return getattr(self._local, method)(*args, **kwargs)


_embedded: dict[Path, _Client] = {}  # one client per folder per process
_embedded_lock = threading.Lock()


class QdrantVectorStore:
    """The :class:`VectorStore` on Qdrant, embedded at ``path`` or a server at ``url``."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 256,
        avg_len: float = DEFAULT_AVG_LEN,
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("QdrantVectorStore needs either a path (embedded) or a url")
        self._path = Path(path).resolve() if path is not None else None
        self._url = url
        self._api_key = api_key
        self._batch_size = batch_size
        self._avg_len = avg_len
        self._client: _Client | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> QdrantVectorStore:
        """A server if ``knowledge.qdrant_url`` is set, else embedded at ``qdrant_path``."""
        knowledge = settings.knowledge
        if knowledge.qdrant_url:
            env = knowledge.qdrant_api_key_env
            return cls(url=knowledge.qdrant_url, api_key=os.environ.get(env) if env else None)
        return cls(settings.qdrant_path)

    @property
    def embedded(self) -> bool:
        return self._url is None

    def _open(self) -> _Client:
        if self._client is not None:
            return self._client
        if self._path is None:
            self._client = _Client(AsyncQdrantClient(url=self._url, api_key=self._api_key))
            return self._client
        with _embedded_lock:
            client = _embedded.get(self._path)
            if client is None:
                client = _embedded[self._path] = _Client(path=self._path)
            client.users += 1
        self._client = client
        return client

    async def aclose(self) -> None:
        """Release the client; an embedded one closes when its last store lets it go."""
        client, self._client = self._client, None
        if client is None:
            return
        if self._path is not None:
            with _embedded_lock:
                client.users -= 1
                if client.users > 0:
                    return
                del _embedded[self._path]
        await client.call("close")

    async def _collection(self, kb: str) -> tuple[_Client, str, int | None]:
        """The client, the collection of ``kb`` and its dense size (None: no collection).

        Embedded, this client is the folder's only one, so its cache is the truth; a server
        is asked whether the collection still exists, as other processes may drop it."""
        name = collection_name(kb)
        client = self._open()
        if name in client.dims and (self.embedded or await client.call("collection_exists", name)):
            return client, name, client.dims[name]
        client.dims.pop(name, None)
        if not await client.call("collection_exists", name):
            return client, name, None
        info = await client.call("get_collection", name)
        vectors = info.config.params.vectors
        if not isinstance(vectors, dict) or DENSE not in vectors:
            raise ValueError(f"collection {name} was not made by agentrig: no {DENSE!r}")
        client.dims[name] = vectors[DENSE].size
        return client, name, client.dims[name]

    async def _create(self, kb: str, client: _Client, name: str, size: int) -> int:
        try:
            await client.call(
                "create_collection",
                name,
                vectors_config={DENSE: models.VectorParams(size=size, distance="Cosine")},
                sparse_vectors_config={KEYWORDS: models.SparseVectorParams(modifier="idf")},
            )
        except (UnexpectedResponse, ValueError):  # server 409, embedded ValueError: a race
            if not await client.call("collection_exists", name):
                raise
            return (await self._collection(kb))[2] or size  # the winner's size counts
        if not self.embedded:  # embedded Qdrant has no payload indexes and warns about them
            tenant = models.KeywordIndexParams(type="keyword", is_tenant=True)
            await client.call("create_payload_index", name, "tenant", tenant)
            await client.call("create_payload_index", name, "document_id", "keyword")
        client.dims[name] = size
        return size

    async def upsert(self, kb: str, records: Sequence[ChunkRecord]) -> None:
        """Index ``records``, replacing chunks with the same tenant, document and index."""
        collection_name(kb)
        if not records:
            return
        sizes = {len(record.vector) for record in records}
        if len(sizes) > 1:
            raise ValueError(f"vectors of one upsert differ in size: {sorted(sizes)}")
        client, name, size = await self._collection(kb)
        if size is None:
            size = await self._create(kb, client, name, len(records[0].vector))
        _check_size(kb, size, len(records[0].vector))
        for start in range(0, len(records), self._batch_size):
            batch = records[start : start + self._batch_size]
            points = await asyncio.to_thread(self._points, batch)  # tokenizing takes a while
            await client.call("upsert", name, points)

    def _points(self, records: Sequence[ChunkRecord]) -> list[models.PointStruct]:
        return [self._point(record) for record in records]

    def _point(self, record: ChunkRecord) -> models.PointStruct:
        vectors: dict[str, Any] = {DENSE: list(record.vector)}
        sparse = document_vector(record.text, avg_len=self._avg_len)
        if sparse.indices:  # a chunk of stopwords only has no keywords
            vectors[KEYWORDS] = models.SparseVector(indices=sparse.indices, values=sparse.values)
        payload = {key: getattr(record, key) for key in _PAYLOAD}
        id_ = point_id(record.tenant, record.document_id, record.chunk_index)
        return models.PointStruct(id=id_, vector=vectors, payload=payload)

    async def delete_document(self, kb: str, tenant: str, document_id: str) -> int:
        """Delete every chunk of a document; returns how many there were."""
        return await self._delete(kb, _filter(tenant, document_id))

    async def delete_chunks_from(
        self, kb: str, tenant: str, document_id: str, first_index: int
    ) -> int:
        """Delete a document's chunks from ``first_index`` on: the tail left behind when a
        document is indexed again with fewer chunks. Returns how many there were."""
        tail = models.FieldCondition(key="chunk_index", range=models.Range(gte=first_index))
        return await self._delete(kb, _filter(tenant, document_id, extra=[tail]))

    async def _delete(self, kb: str, selector: models.Filter) -> int:
        client, name, size = await self._collection(kb)
        if size is None:
            return 0
        found = (await client.call("count", name, count_filter=selector, exact=True)).count
        if found:
            await client.call("delete", name, models.FilterSelector(filter=selector))
        return found

    async def existing_hashes(self, kb: str, tenant: str, document_id: str) -> dict[int, str]:
        """chunk_index -> text_hash of a document's indexed chunks, to skip unchanged ones."""
        client, name, size = await self._collection(kb)
        if size is None:
            return {}
        hashes: dict[int, str] = {}
        offset: Any = None
        while True:
            points, offset = await client.call(
                "scroll",
                name,
                scroll_filter=_filter(tenant, document_id),
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
    ) -> list[Hit]:
        """The ``top_k`` chunks nearest ``vector`` by cosine, at least ``min_score``."""
        selector = _filter(tenant, filters=filters)
        return await self._query(kb, list(vector), DENSE, selector, top_k, min_score)

    async def search_keywords(
        self, kb: str, query_text: str, *, tenant: str, top_k: int, filters: Filters | None = None
    ) -> list[Hit]:
        """The ``top_k`` chunks best matching ``query_text``'s terms by BM25."""
        selector = _filter(tenant, filters=filters)
        sparse = query_vector(query_text)
        query = models.SparseVector(indices=sparse.indices, values=sparse.values)
        return await self._query(kb, query, KEYWORDS, selector, top_k, None)

    async def _query(
        self,
        kb: str,
        query: list[float] | models.SparseVector,
        using: str,
        selector: models.Filter,
        top_k: int,
        min_score: float | None,
    ) -> list[Hit]:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        client, name, size = await self._collection(kb)
        if size is None or (isinstance(query, models.SparseVector) and not query.indices):
            return []  # no collection, or a query of stopwords only
        if isinstance(query, list):
            _check_size(kb, size, len(query))
        try:
            response = await client.call(
                "query_points",
                name,
                query=query,
                using=using,
                query_filter=selector,
                limit=top_k,
                score_threshold=min_score,
                with_payload=True,
            )
        except UnexpectedResponse as exc:
            if exc.status_code != 404:
                raise
            client.dims.pop(name, None)  # deleted by another process meanwhile
            return []
        return [_hit(kb, point) for point in response.points]

    async def count(self, kb: str, tenant: str | None = None) -> int:
        """How many chunks ``kb`` holds, of one tenant or of all."""
        client, name, size = await self._collection(kb)
        if size is None:
            return 0
        selector = _filter(tenant) if tenant is not None else None
        return (await client.call("count", name, count_filter=selector, exact=True)).count

    async def delete_kb(self, kb: str) -> bool:
        """Drop the knowledge base of every tenant; False if it did not exist."""
        name = collection_name(kb)
        client = self._open()
        client.dims.pop(name, None)
        if not await client.call("collection_exists", name):
            return False
        return await client.call("delete_collection", name)


def _check_size(kb: str, expected: int, got: int) -> None:
    if expected != got:
        raise ValueError(f"knowledge base {kb!r} holds {expected}-dim vectors, got {got}")


def _filter(
    tenant: str,
    document_id: str | None = None,
    *,
    filters: Filters | None = None,
    extra: Sequence[models.FieldCondition] = (),
) -> models.Filter:
    """Must-conditions: the document if given, the tenant, then each metadata filter.

    Embedded Qdrant checks them point by point, in order, up to the first that fails: the
    document comes first, as it rules out nearly every point."""
    must = [models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))]
    if document_id is not None:
        must.insert(
            0, models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))
        )
    for key, value in (filters or {}).items():
        if not isinstance(key, str) or not _FIELD.fullmatch(key):
            raise ValueError(f"invalid filter field {key!r}: use a metadata key like 'page'")
        must.append(_condition(f"metadata.{key}", value))
    return models.Filter(must=[*must, *extra])


def _condition(key: str, value: Any) -> models.FieldCondition:
    if isinstance(value, bool | int | str):
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))
    if isinstance(value, float):
        return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
    if isinstance(value, list | tuple | set | frozenset):
        values = list(value)
        if values and (
            all(isinstance(v, str) for v in values)
            or all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        ):
            return models.FieldCondition(key=key, match=models.MatchAny(any=values))
    raise ValueError(
        f"filter {key.removeprefix('metadata.')!r}: expected a string, a number, a boolean "
        f"or a non-empty list of strings or of integers, got {value!r}"
    )


def _hit(kb: str, point: models.ScoredPoint) -> Hit:
    payload = point.payload or {}
    metadata = payload.get("metadata") or {}
    return Hit(
        document_id=payload["document_id"],
        chunk_index=payload["chunk_index"],
        text=payload["text"],
        score=point.score,
        page=metadata.get("page"),
        heading=metadata.get("heading"),
        metadata=metadata,
        kb=kb,
    )
