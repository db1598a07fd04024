"""Embedding chunks through the router, in batches, each distinct text at most once.

Vectors are cached by (model, SHA-256 of the text) in the database
(:class:`~agentrig.store.documents.EmbeddingCache`): re-indexing a document, or indexing
a second copy of it, embeds only the chunks whose text is new. The cache is keyed by the
model the role names first; a role that falls back to another embedding model mixes
vectors of two models, so an ``embed`` role should name one model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from agentrig.llm.types import Embedder
from agentrig.store.documents import EmbeddingCache


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CachedEmbedder:
    """Embeds with ``embedder`` in batches of ``batch_size``; texts seen before are read
    from ``cache`` under ``model``."""

    embedder: Embedder
    cache: EmbeddingCache
    model: str
    batch_size: int = 64
    embedded: int = 0  # texts sent to the model, since creation
    reused: int = 0  # texts found in the cache

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        hashes = [text_hash(text) for text in texts]
        known = await self.cache.get_many(self.model, hashes)
        new: dict[str, str] = {}
        for digest, text in zip(hashes, texts, strict=True):
            if digest not in known:
                new.setdefault(digest, text)
        self.reused += len(texts) - len(new)
        pending = list(new.items())
        for start in range(0, len(pending), self.batch_size):
            batch = pending[start : start + self.batch_size]
            vectors = await self.embedder.embed([text for _, text in batch])
            fresh = {digest: vector for (digest, _), vector in zip(batch, vectors, strict=True)}
            await self.cache.put_many(self.model, fresh)
            known.update(fresh)
            self.embedded += len(batch)
        return [known[digest] for digest in hashes]
