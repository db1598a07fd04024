"""Document rows and the embedding cache on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from agentrig.store import Database
from agentrig.store.documents import DocumentStore, EmbeddingCache


async def test_documents_lifecycle_and_tenant_isolation(database: Database):
    documents = DocumentStore(database)
    doc = await documents.create(
        "t1",
        "manuals",
        "guide.pdf",
        content_type="application/pdf",
        size_bytes=10,
        sha256="ab" * 32,
        metadata={"team": "ops"},
    )
    assert doc.status == "pending" and doc.blob_key == f"t1/{doc.id}/guide.pdf"
    assert doc.metadata == {"team": "ops"} and doc.to_json()["object"] == "document"
    other = await documents.create(
        "t1", "other", "b.txt", content_type=None, size_bytes=1, sha256="c" * 64
    )
    assert await documents.get("t2", doc.id) is None
    assert await documents.set_status("t1", doc.id, "embedding")
    assert await documents.set_status("t1", doc.id, "indexed", chunk_count=7)
    indexed = await documents.get("t1", doc.id)
    assert (indexed.status, indexed.chunk_count, indexed.indexed_at is not None) == (
        "indexed",
        7,
        True,
    )
    assert await documents.set_status("t1", other.id, "failed", reason="empty file")
    assert (await documents.get("t1", other.id)).reason == "empty file"
    with pytest.raises(ValueError, match="status must be one of"):
        await documents.set_status("t1", doc.id, "done")
    assert [d.id for d in await documents.list("t1")] == [other.id, doc.id]
    assert [d.id for d in await documents.list("t1", kb="manuals")] == [doc.id]
    assert await documents.list("t2") == []
    assert await documents.delete("t2", doc.id) is None
    assert (await documents.delete("t1", doc.id)).id == doc.id
    assert await documents.get("t1", doc.id) is None
    assert not await documents.set_status("t1", doc.id, "indexed")


async def test_embedding_cache_round_trip_per_model(database: Database):
    cache = EmbeddingCache(database)
    await cache.put_many("m1", {"h1": [0.5, -1.25, 3.0], "h2": [1.0, 2.0, 3.0]})
    await cache.put_many("m1", {"h1": [9.0, 9.0, 9.0]})  # cached already: kept as it was
    assert await cache.get_many("m1", ["h1", "h2", "h3"]) == {
        "h1": [0.5, -1.25, 3.0],
        "h2": [1.0, 2.0, 3.0],
    }
    assert await cache.get_many("m2", ["h1"]) == {}
    many = {f"x{n}": [float(n)] * 4 for n in range(1200)}
    await cache.put_many("m1", many)
    assert len(await cache.get_many("m1", many)) == 1200
