"""Chunks are embedded in batches, and a text already embedded is never embedded again."""

from __future__ import annotations

from agentrig.knowledge.embedding import CachedEmbedder
from agentrig.store import Database
from agentrig.store.documents import EmbeddingCache


class CountingEmbedder:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def embed(self, texts):
        self.batches.append(list(texts))
        return [[float(len(text)), float(sum(map(ord, text)) % 97)] for text in texts]


async def test_each_distinct_text_is_embedded_once_across_calls(database: Database):
    model = CountingEmbedder()
    embedder = CachedEmbedder(model, EmbeddingCache(database), "test/model", batch_size=3)
    texts = ["alpha", "beta", "alpha", "gamma", "delta", "epsilon", "beta"]
    first = await embedder.embed(texts)
    assert first == [[float(len(t)), float(sum(map(ord, t)) % 97)] for t in texts]
    assert [len(batch) for batch in model.batches] == [3, 2]  # 5 distinct texts, batches of 3
    assert (embedder.embedded, embedder.reused) == (5, 2)
    again = await CachedEmbedder(model, EmbeddingCache(database), "test/model").embed(
        ["gamma", "zeta", "alpha"]
    )
    assert model.batches[-1] == ["zeta"]  # only the new text went to the model
    assert again[0] == first[3] and again[2] == first[0]
    other = CachedEmbedder(model, EmbeddingCache(database), "other/model")
    await other.embed(["alpha"])
    assert model.batches[-1] == ["alpha"]  # another model's vectors are its own


async def test_concurrent_calls_share_the_models_batches(database: Database):
    import asyncio

    looked_up = asyncio.Event()  # all 20 calls have read the cache and queued their texts

    class Cache(EmbeddingCache):
        reads = 0

        async def get_many(self, model, hashes):
            found = await super().get_many(model, hashes)
            Cache.reads += 1
            if Cache.reads == 20:
                looked_up.set()
            return found

    class Held(CountingEmbedder):
        async def embed(self, texts):  # the first model call lasts until all have queued
            await looked_up.wait()
            return await super().embed(texts)

    model = Held()
    embedder = CachedEmbedder(model, Cache(database), "test/model", batch_size=16)
    calls = [embedder.embed([f"document {n} chunk {c}" for c in range(2)]) for n in range(20)]
    results = await asyncio.gather(*calls)
    assert [len(r) for r in results] == [2] * 20
    assert sum(len(batch) for batch in model.batches) == 40
    # the calls queued behind the first model call share batches of 16: at most 2 + 2
    # model calls, not one per document
    assert len(model.batches) <= 4
    assert results[7][1] == (await embedder.embed(["document 7 chunk 1"]))[0]
