"""The whole ingestion path on the sample knowledge base, with the real local embedder
(all-MiniLM-L6-v2 on the CPU) and embedded Qdrant: store, parse, chunk, embed, index,
retrieve with sources; re-indexing reuses vectors; bad files fail with a reason."""

from __future__ import annotations

import pytest

from tests.conftest import SAMPLES, add_samples


async def test_sample_documents_are_indexed_and_answer_questions_with_sources(knowledge):
    ids = await add_samples(knowledge)
    for name, document_id in ids.items():
        document = await knowledge.documents.get("t1", document_id)
        assert (document.status, document.filename) == ("indexed", name)
        assert document.chunk_count >= 1 and document.indexed_at is not None
    hits = await knowledge.retriever.search("How long does charging take?", tenant="t1", kb="lumen")
    top = hits[0]
    assert top.document_id == ids["lumen-e3-manual.md"]
    assert "4 hours" in top.text and top.heading.endswith("Battery and charging")
    assert top.metadata["filename"] == "lumen-e3-manual.md"
    stolen = await knowledge.retriever.search(
        "my bike was stolen", tenant="t1", kb="lumen", top_k=2
    )
    assert ids["service-plans.html"] in {hit.document_id for hit in stolen}
    part = await knowledge.retriever.search("LB-MAG-SS", tenant="t1", kb="lumen", mode="keywords")
    assert part[0].document_id == ids["spare-parts.csv"]
    assert await knowledge.retriever.search("battery", tenant="t2", kb="lumen") == []


async def test_reindexing_reuses_every_vector_and_keeps_the_chunk_count(knowledge):
    ids = await add_samples(knowledge)
    manual = ids["lumen-e3-manual.md"]
    before = await knowledge.vectors.count("lumen", "t1")
    report = await knowledge.index("t1", manual)
    assert report.status == "indexed" and report.embedded == 0 and report.reused == report.chunks
    assert await knowledge.vectors.count("lumen", "t1") == before
    copy = await knowledge.add_document(
        "t1", (SAMPLES / "warranty-policy.md").read_bytes(), "copy.md", kb="lumen"
    )
    assert (await knowledge.index("t1", copy.id)).embedded == 0  # same texts: cached


async def test_bad_files_fail_with_a_reason_and_leave_the_rest(knowledge):
    ids = await add_samples(knowledge)
    before = await knowledge.vectors.count("lumen", "t1")
    broken = await knowledge.add_document("t1", b"%PDF-1.7\n1 0 obj <<", "broken.pdf", kb="lumen")
    empty = await knowledge.add_document("t1", b"   \n", "empty.txt", kb="lumen")
    for document in (broken, empty):
        report = await knowledge.index("t1", document.id)
        stored = await knowledge.documents.get("t1", document.id)
        assert report.status == stored.status == "failed" and stored.reason, stored
    assert "PDF" in (await knowledge.documents.get("t1", broken.id)).reason
    assert await knowledge.vectors.count("lumen", "t1") == before
    assert (await knowledge.documents.get("t1", ids["returns-faq.txt"])).status == "indexed"


async def test_deleting_a_document_removes_file_vectors_and_row(knowledge):
    ids = await add_samples(knowledge)
    faq = ids["returns-faq.txt"]
    document = await knowledge.documents.get("t1", faq)
    before = await knowledge.vectors.count("lumen", "t1")
    assert (await knowledge.delete_document("t1", faq)).id == faq
    assert await knowledge.documents.get("t1", faq) is None
    assert not await knowledge.blobs.exists(document.blob_key)
    assert await knowledge.vectors.count("lumen", "t1") == before - document.chunk_count
    hits = await knowledge.retriever.search("return a bike within 30 days", tenant="t1", kb="lumen")
    assert faq not in {hit.document_id for hit in hits}
    assert await knowledge.delete_document("t1", faq) is None


async def test_an_invalid_knowledge_base_name_is_refused_before_anything_is_kept(knowledge):
    with pytest.raises(ValueError, match="knowledge base"):
        await knowledge.add_document("t1", b"hello", "a.txt", kb="no spaces/or slashes!")
    assert await knowledge.documents.list("t1") == []
