"""Indexing one document: the work of the ``index_document`` job.

Parse (in a thread), chunk (in a thread), embed (each new text once, see :mod:`.embedding`;
the keyword vectors meanwhile, see ``keywords.document_vectors``), upsert the chunks under
deterministic point ids, then drop the chunks past the new end (a document re-indexed
shorter). Every step moves the document's status (``parsing`` → ``chunking`` →
``embedding`` → ``indexed``), and a file that cannot be indexed ends ``failed`` with the
reason, its old chunks removed so that nothing stale is found. Running it twice gives the
same chunks: the job may be retried or taken over after a crash.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from agentrig.config import KnowledgeSettings
from agentrig.knowledge.blobs import BlobNotFound, BlobStore
from agentrig.knowledge.chunk import chunk_document
from agentrig.knowledge.embedding import CachedEmbedder
from agentrig.knowledge.keywords import document_vectors
from agentrig.knowledge.parse import MB, DocumentError, parse_document
from agentrig.knowledge.vectors import ChunkRecord, VectorStore
from agentrig.store.documents import Document, DocumentStore


class DocumentGone(LookupError):
    """The document was deleted before (or while) it was indexed."""


@dataclass(frozen=True)
class IndexReport:
    document_id: str
    status: str  # "indexed" or "failed"
    chunks: int
    embedded: int  # chunks sent to the embedding model
    reused: int  # chunks whose vectors came from the cache
    seconds: float
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Indexer:
    documents: DocumentStore
    blobs: BlobStore
    vectors: VectorStore
    embedder: CachedEmbedder
    settings: KnowledgeSettings

    async def index(self, tenant: str, document_id: str) -> IndexReport:
        """Index the document; raises :class:`DocumentGone` if it no longer exists."""
        started = time.perf_counter()
        document = await self.documents.start_indexing(tenant, document_id)  # → parsing
        if document is None:
            raise DocumentGone(f"no document {document_id!r}")
        try:
            data = await self.blobs.get(document.blob_key)
        except BlobNotFound:
            return await self._fail(document, "the uploaded file is missing from storage", started)
        try:
            parsed = await asyncio.to_thread(
                parse_document,
                data,
                document.filename,
                document.content_type,
                max_bytes=int(self.settings.max_file_mb * MB),
            )
        except DocumentError as exc:
            return await self._fail(document, exc.reason, started)
        await self._move(document, "chunking")
        chunks = await asyncio.to_thread(
            chunk_document,
            parsed,
            size=self.settings.chunk_size,
            overlap=self.settings.chunk_overlap,
        )
        if not chunks:
            return await self._fail(document, "the file has no text to index", started)
        await self._move(document, "embedding")
        texts = [chunk.text for chunk in chunks]
        (vectors, embedded), keywords = await asyncio.gather(
            self.embedder.embed_counting(texts),
            document_vectors(texts),
        )
        records = [
            ChunkRecord(
                tenant=tenant,
                document_id=document.id,
                chunk_index=chunk.index,
                text=chunk.text,
                vector=vector,
                keywords=keyword_vector,
                metadata={
                    **document.metadata,
                    "page": chunk.page,
                    "heading": chunk.heading,
                    "filename": document.filename,
                    "title": parsed.title,
                },
            )
            for chunk, vector, keyword_vector in zip(chunks, vectors, keywords, strict=True)
        ]
        await self.vectors.upsert(document.kb, records)
        if document.chunk_count > len(records):  # indexed longer before: drop the old tail
            await self.vectors.delete_chunks_from(document.kb, tenant, document.id, len(records))
        if not await self.documents.set_status(
            tenant, document.id, "indexed", chunk_count=len(records)
        ):  # deleted meanwhile: take its chunks back out
            await self.vectors.delete_document(document.kb, tenant, document.id)
            raise DocumentGone(f"document {document_id!r} was deleted while it was indexed")
        return IndexReport(
            document.id,
            "indexed",
            len(records),
            embedded,
            len(records) - embedded,
            time.perf_counter() - started,
        )

    async def _move(self, document: Document, status: str) -> None:
        if not await self.documents.set_status(document.tenant, document.id, status):
            raise DocumentGone(f"document {document.id!r} was deleted while it was indexed")

    async def _fail(self, document: Document, reason: str, started: float) -> IndexReport:
        if document.chunk_count:  # it was indexed before: nothing stale may be found
            await self.vectors.delete_document(document.kb, document.tenant, document.id)
        await self.documents.set_status(document.tenant, document.id, "failed", reason=reason)
        return IndexReport(
            document.id, "failed", 0, 0, 0, time.perf_counter() - started, reason=reason
        )
