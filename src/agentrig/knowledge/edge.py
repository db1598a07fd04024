"""The embedded vector store: Qdrant's own engine (Qdrant Edge), one process per knowledge base.

The default when no Qdrant server is configured. Each knowledge base is a Qdrant Edge
shard in ``vectors_path/agentrig_<kb>``, served by an engine process of its own
(``engine.py``; why a process: the engine holds the GIL while it works) and indexed in
the background (``edge_collection.py``). The dense and keyword vectors, the payload, the
filters and the scores are those of a Qdrant server: the server backend
(``qdrant.py``) and this one answer alike.

One process owns a folder: the first store to open it takes an exclusive lock on
``.lock`` (which records its pid) and keeps it while any store of the process uses the
folder. A second process that opens it fails with :class:`VectorStoreInUse`, naming the
owner; run the CLI against the server (``agentrig serve``) or use a Qdrant server
(``knowledge.qdrant_url``) for several workers.
"""

from __future__ import annotations

import asyncio
import atexit
import fcntl
import itertools
import os
import shutil
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from agentrig.config import Settings
from agentrig.knowledge.edge_collection import Collection, EngineTuning
from agentrig.knowledge.engine_process import EngineClosed
from agentrig.knowledge.foreground import searches
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

__all__ = ["EdgeVectorStore", "LegacyKnowledgeBase", "VectorStoreInUse"]

_SCROLL_PAGE = 1000


class VectorStoreInUse(RuntimeError):
    """Another process owns the embedded vector store's folder."""


class LegacyKnowledgeBase(RuntimeError):
    """A knowledge base still in the embedded store of agentrig before Qdrant Edge."""


class _Folder:
    """A folder's lock and open knowledge bases, shared by the stores of one process."""

    def __init__(self, path: Path, tuning: EngineTuning) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path, self.tuning = path, tuning
        self.lock = threading.Lock()
        self.collections: dict[str, Collection] = {}
        self.users = 0
        self._lockfile = open(path / ".lock", "a+")  # noqa: SIM115 - held while open
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lockfile.seek(0)
            owner = self._lockfile.read().strip() or "unknown"
            self._lockfile.close()
            raise VectorStoreInUse(
                f"the embedded vector store at {path} is in use by another process "
                f"(pid {owner}): one process owns it; send the work to that process "
                "(agentrig serve) or share vectors through a Qdrant server "
                "(knowledge.qdrant_url)"
            ) from None
        self._lockfile.truncate(0)
        self._lockfile.write(str(os.getpid()))
        self._lockfile.flush()

    def close(self) -> None:
        with self.lock:
            collections, self.collections = list(self.collections.values()), {}
        for collection in collections:
            collection.close()
        self._lockfile.close()  # and with it the lock


_folders: dict[Path, _Folder] = {}
_folders_lock = threading.Lock()


@atexit.register
def _close_all() -> None:  # flush every shard on the way out
    with _folders_lock:
        folders = list(_folders.values())
        _folders.clear()
    for folder in folders:
        folder.close()


class EdgeVectorStore:
    """The :class:`~agentrig.knowledge.vectors.VectorStore` embedded in ``path``.

    ``legacy_path`` is where agentrig kept embedded vectors before (qdrant-client's local
    mode): a knowledge base found only there raises :class:`LegacyKnowledgeBase`, naming
    ``agentrig knowledge migrate``. An upsert reaches the engine ``batch_size`` chunks a
    write: its engine answers one request at a time, so a search waits for at most one
    write (64 chunks of 450 words: about 20 ms, measured here) and not for the whole
    upsert."""

    embedded = True

    def __init__(
        self,
        path: str | Path,
        *,
        tuning: EngineTuning | None = None,
        legacy_path: str | Path | None = None,
        batch_size: int = 64,
    ) -> None:
        self.path = Path(path).resolve()
        self.tuning = tuning or EngineTuning()
        self.legacy_path = Path(legacy_path) if legacy_path is not None else None
        self._batch_size = batch_size
        self._folder: _Folder | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, check_legacy: bool = True) -> EdgeVectorStore:
        knowledge = settings.knowledge
        tuning = EngineTuning(optimize_after=knowledge.optimize_after, hnsw_ef=knowledge.hnsw_ef)
        legacy = settings.qdrant_path if check_legacy else None
        return cls(settings.vectors_path, tuning=tuning, legacy_path=legacy)

    # -- the folder and its knowledge bases ---------------------------------------------
    def _open_folder(self) -> _Folder:
        if self._folder is None:
            with _folders_lock:
                folder = _folders.get(self.path)
                if folder is None:
                    folder = _folders[self.path] = _Folder(self.path, self.tuning)
                folder.users += 1
            self._folder = folder
        return self._folder

    async def aclose(self) -> None:
        """Let the folder go; the last store of the process closes its engines."""
        folder, self._folder = self._folder, None
        if folder is None:
            return
        with _folders_lock:
            folder.users -= 1
            if folder.users > 0:
                return
            del _folders[self.path]
        await asyncio.to_thread(folder.close)

    async def _collection(self, kb: str, dims: int | None = None) -> Collection | None:
        """The open knowledge base (its vector size in ``.dims``); created for ``dims`` if
        given, else None when it does not exist."""
        name = collection_name(kb)
        folder = self._open_folder()
        with folder.lock:
            collection = folder.collections.get(name)
            if collection is not None and collection.failed():
                # its engine died (killed, out of memory): what it acknowledged is in its
                # write-ahead log, so a new engine on the same shard takes over
                threading.Thread(target=collection.close, daemon=True).start()
                collection = None
            if collection is None:
                self._check_not_legacy(kb, name)
                collection = Collection(folder.path / name, name, folder.tuning)
                if not collection.exists() and dims is None:
                    return None
                collection.open(dims)
                folder.collections[name] = collection
        opened = collection.opened
        assert opened is not None
        if opened.done() and opened.exception() is None:
            return collection  # every call after the first: no await, no lock held long
        try:
            await asyncio.wrap_future(opened)
        except Exception:
            with folder.lock:  # the next call tries again
                if folder.collections.get(name) is collection:
                    del folder.collections[name]
            await asyncio.to_thread(collection.close)
            raise
        return collection

    def _check_not_legacy(self, kb: str, name: str) -> None:
        if self.legacy_path is not None and (self.legacy_path / "collection" / name).is_dir():
            raise LegacyKnowledgeBase(
                f"knowledge base {kb!r} is in the embedded store of earlier agentrig "
                f"versions at {self.legacy_path}: run `agentrig knowledge migrate` to move "
                "it to the current engine (nothing is lost)"
            )

    # -- writes --------------------------------------------------------------------------
    async def upsert(self, kb: str, records: Sequence[ChunkRecord]) -> None:
        """Index ``records``, replacing chunks with the same tenant, document and index."""
        collection_name(kb)
        if not records:
            return
        dims = check_records(records)
        collection = await self._collection(kb, dims)
        assert collection is not None
        check_size(kb, collection.dims, dims)
        # the next batch is prepared while the engine writes this one; searches running in
        # the process go first (foreground.py), so a search meets one batch in flight
        writing: Future[Any] | None = None
        for start in range(0, len(records), self._batch_size):
            batch = records[start : start + self._batch_size]
            await searches.finished()
            points = await asyncio.to_thread(self._points, batch)  # keywords: a while
            if writing is not None:
                await asyncio.wrap_future(writing)
            writing = collection.write("upsert", len(batch), **points)
        assert writing is not None
        await asyncio.wrap_future(writing)

    def _points(self, records: Sequence[ChunkRecord]) -> dict[str, Any]:
        """The engine's ``upsert`` arguments; vectors packed in arrays, which cross the
        pipe at a tenth of the cost of lists of numbers."""
        sparse = [record.keywords or document_vector(record.text) for record in records]
        lengths = [len(indices) for indices, _ in sparse]
        total = sum(lengths)
        indices = itertools.chain.from_iterable(indices for indices, _ in sparse)
        values = itertools.chain.from_iterable(values for _, values in sparse)
        return {
            "ids": [point_id(r.tenant, r.document_id, r.chunk_index) for r in records],
            "dense": np.asarray([record.vector for record in records], dtype=np.float32),
            "sparse": (
                np.fromiter(indices, dtype=np.uint32, count=total),
                np.fromiter(values, dtype=np.float32, count=total),
                lengths,
            ),
            "payloads": [record.payload() for record in records],
        }

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
        collection = await self._collection(kb)
        if collection is None:
            return 0
        try:
            return await asyncio.wrap_future(collection.write("delete", where=where))
        except EngineClosed:
            return 0  # the knowledge base was dropped meanwhile

    async def delete_kb(self, kb: str) -> bool:
        """Drop the knowledge base of every tenant; False if it did not exist."""
        name = collection_name(kb)
        folder = self._open_folder()
        with folder.lock:
            collection = folder.collections.pop(name, None)
            if collection is None:
                collection = Collection(folder.path / name, name, folder.tuning)
                if not collection.exists():
                    shutil.rmtree(collection.folder, ignore_errors=True)
                    return False
        await asyncio.to_thread(collection.close, drop=True)
        return True

    # -- reads ---------------------------------------------------------------------------
    async def _read(self, kb: str | Collection, method: str, empty: Any, **kwargs: Any) -> Any:
        """``method`` on the knowledge base's engine; ``empty`` if it does not exist (or
        was dropped meanwhile). ``kb`` may be the collection already opened."""
        collection = await self._collection(kb) if isinstance(kb, str) else kb
        if collection is None:
            return empty
        try:
            return await asyncio.wrap_future(collection.read(method, **kwargs))
        except EngineClosed:
            return empty

    async def existing_hashes(self, kb: str, tenant: str, document_id: str) -> dict[int, str]:
        """chunk_index -> text_hash of a document's indexed chunks, to skip unchanged ones."""
        hashes: dict[int, str] = {}
        offset: Any = None
        where = conditions(tenant, document_id)
        while True:
            page = await self._read(
                kb,
                "scroll",
                None,
                where=where,
                fields=["chunk_index", "text_hash"],
                limit=_SCROLL_PAGE,
                offset=offset,
            )
            if page is None:
                return hashes
            payloads, offset = page
            hashes.update((p["chunk_index"], p["text_hash"]) for p in payloads)
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
        check_top_k(top_k)
        where = conditions(tenant, filters=filters)
        collection = await self._collection(kb)
        if collection is None:
            return []
        check_size(kb, collection.dims, len(vector))
        ef = max(self.tuning.hnsw_ef, top_k)
        return await self._search(
            collection, kb, DENSE, list(vector), where, top_k, min_score, ef, payload
        )

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
        check_top_k(top_k)
        where = conditions(tenant, filters=filters)
        sparse = query_vector(query_text)
        if not sparse.indices:
            return []  # a query of stopwords only
        vector = (sparse.indices, sparse.values)
        return await self._search(kb, kb, KEYWORDS, vector, where, top_k, None, None, payload)

    async def _search(
        self,
        opened: str | Collection,
        kb: str,
        using: str,
        vector: Any,
        where: list[Condition],
        top_k: int,
        threshold: float | None,
        ef: int | None,
        payload: bool,
    ) -> list[Hit]:
        """One ranking's hits; ``opened`` is ``kb`` or its collection, already opened."""
        found = await self._read(
            opened,
            "search",
            [],
            using=using,
            vector=vector,
            where=where,
            limit=top_k,
            threshold=threshold,
            ef=ef,
            payload=payload,
        )
        if not payload:
            return [Hit.from_point(kb, score, point) for score, point, _ in found]
        return [Hit.from_payload(kb, score, data, point) for score, point, data in found]

    async def with_payloads(self, kb: str, tenant: str, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` with their text and metadata, fetched by point id in one request."""
        if not hits:
            return []
        ids = hit_points(tenant, hits)
        payloads = await self._read(kb, "retrieve", [None] * len(ids), ids=ids)
        return filled(kb, tenant, hits, ids, payloads)

    async def status(self, kb: str) -> dict[str, Any] | None:
        """Where ``kb``'s shard stands: its ``generation``, whether its index is being
        rebuilt (``indexing``), the chunks written since it was last built
        (``unindexed``), its ``points`` and ``segments``; None if it does not exist."""
        collection = await self._collection(kb)
        if collection is None:
            return None
        info = await self._read(collection, "info", None)
        if info is None:
            return None
        return {
            "generation": collection.generation,
            "indexing": collection.building(),
            "unindexed": collection.pending,
            "points": info["points"],
            "segments": info["segments"],
        }

    async def count(self, kb: str, tenant: str | None = None) -> int:
        """How many chunks ``kb`` holds, of one tenant or of all."""
        where = conditions(tenant) if tenant is not None else None
        return await self._read(kb, "count", 0, where=where)
