"""The knowledge layer wired from settings: what the server, the workers and the CLI use.

``Knowledge.open(settings, database, router)`` builds the blob store, the vector store,
the document rows, the cached embedder (the router's ``embed`` role), the indexer and
the retriever. ``add_document`` stores an upload and its row (indexing is the caller's
next step: a job, or :meth:`Knowledge.index` at once); ``delete_document`` removes the
file, the vectors and the row.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from agentrig.config import Settings
from agentrig.knowledge.blobs import BlobStore, blob_store
from agentrig.knowledge.edge import EdgeVectorStore
from agentrig.knowledge.embedding import CachedEmbedder
from agentrig.knowledge.indexer import Indexer, IndexReport
from agentrig.knowledge.qdrant import QdrantVectorStore
from agentrig.knowledge.retrieval import Retriever
from agentrig.knowledge.vectors import VectorStore, collection_name
from agentrig.llm.router import ModelRouter
from agentrig.store.db import Database
from agentrig.store.documents import Document, DocumentStore, EmbeddingCache

EMBED_ROLE = "embed"


def embedding_model(router: ModelRouter) -> str:
    """The name the embedding cache files vectors under: the ``embed`` role's first entry."""
    chain = router.settings.roles.get(EMBED_ROLE) or [EMBED_ROLE]
    return chain[0]


def open_vector_store(settings: Settings) -> VectorStore:
    """A Qdrant server if ``knowledge.qdrant_url`` is set, else the embedded engine."""
    if settings.knowledge.qdrant_url:
        return QdrantVectorStore.from_settings(settings)
    return EdgeVectorStore.from_settings(settings)


def safe_filename(filename: str) -> str:
    """The last path component, without NUL or control characters; never empty."""
    name = PurePath(filename.replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or "upload"


@dataclass
class Knowledge:
    settings: Settings
    documents: DocumentStore
    blobs: BlobStore
    vectors: VectorStore
    embedder: CachedEmbedder
    indexer: Indexer
    retriever: Retriever
    database: Database
    router: ModelRouter

    @classmethod
    def open(cls, settings: Settings, database: Database, router: ModelRouter) -> Knowledge:
        knowledge = settings.knowledge
        documents = DocumentStore(database)
        blobs = blob_store(settings)
        vectors = open_vector_store(settings)
        embedder = CachedEmbedder(
            router.embedder(EMBED_ROLE),
            EmbeddingCache(database),
            embedding_model(router),
            batch_size=knowledge.embed_batch_size,
        )
        indexer = Indexer(documents, blobs, vectors, embedder, knowledge)
        retriever = Retriever(vectors, router.embedder(EMBED_ROLE), knowledge)
        return cls(
            settings, documents, blobs, vectors, embedder, indexer, retriever, database, router
        )

    async def add_document(
        self,
        tenant: str,
        data: bytes,
        filename: str,
        *,
        kb: str | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Document:
        """Store the file and a ``pending`` document row for it."""
        kb = kb or self.settings.knowledge.default_kb
        collection_name(kb)  # an invalid knowledge base name is refused before anything is kept
        name = safe_filename(filename)
        content_type = content_type or mimetypes.guess_type(name)[0]
        document = await self.documents.create(
            tenant,
            kb,
            name,
            content_type=content_type,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            metadata=metadata,
        )
        try:
            await self.blobs.put(document.blob_key, data, content_type)
        except BaseException:
            await self.documents.delete(tenant, document.id)
            raise
        return document

    async def index(self, tenant: str, document_id: str) -> IndexReport:
        return await self.indexer.index(tenant, document_id)

    async def delete_document(self, tenant: str, document_id: str) -> Document | None:
        """Delete the file, the chunks and the row; the deleted document, if there was one."""
        document = await self.documents.get(tenant, document_id)
        if document is None:
            return None
        await self.vectors.delete_document(document.kb, tenant, document.id)
        await self.blobs.delete(document.blob_key)
        return await self.documents.delete(tenant, document.id)

    async def aclose(self) -> None:
        await self.vectors.aclose()
        await self.blobs.aclose()
