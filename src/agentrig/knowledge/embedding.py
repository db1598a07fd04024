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
from dataclasses import dataclass, field

from agentrig.llm.types import Embedder
from agentrig.store.documents import EmbeddingCache
from agentrig.store.group_commit import GroupCommit


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
    _batches: GroupCommit[list[str], list[list[float]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._batches = GroupCommit(self._embed_together, max_batch=1024)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors, _ = await self.embed_counting(texts)
        return vectors

    async def embed_counting(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """The vectors of ``texts``, and how many texts this call sent to the model."""
        hashes = [text_hash(text) for text in texts]
        known = await self.cache.get_many(self.model, hashes)
        new: dict[str, str] = {}
        for digest, text in zip(hashes, texts, strict=True):
            if digest not in known:
                new.setdefault(digest, text)
        self.reused += len(texts) - len(new)
        if new:
            vectors = await self._batches.submit(list(new.values()))
            fresh = dict(zip(new, vectors, strict=True))
            await self.cache.put_many(self.model, fresh)
            known.update(fresh)
            self.embedded += len(new)
        return [known[digest] for digest in hashes], len(new)

    async def _embed_together(self, calls: Sequence[list[str]]) -> list[list[list[float]]]:
        """The texts of concurrent calls, embedded in batches of ``batch_size``."""
        texts = [text for call in calls for text in call]
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors += await self.embedder.embed(texts[start : start + self.batch_size])
        results, start = [], 0
        for call in calls:
            results.append(vectors[start : start + len(call)])
            start += len(call)
        return results
