"""The vector store contract, on both backends (tests/knowledge/conftest.py): dense
search, tenants, re-indexing, deletes, hashes, metadata filters, knowledge base names."""

from __future__ import annotations

import math

import pytest

from agentrig.knowledge.vectors import (
    ChunkRecord,
    Hit,
    VectorStore,
    collection_name,
    point_id,
)


def record(
    document_id: str,
    index: int,
    vector: list[float],
    text: str = "some text",
    *,
    tenant: str = "acme",
    **metadata,
) -> ChunkRecord:
    return ChunkRecord(tenant, document_id, index, text, vector, metadata)


async def test_dense_search_finds_the_nearest_by_cosine(store):
    assert isinstance(store, VectorStore)
    await store.upsert(
        "kb",
        [
            record("east", 0, [1.0, 0.0, 0.0], page=3, heading="East"),
            record("north", 0, [0.0, 10.0, 0.0]),  # length does not matter for cosine
            record("north-east", 0, [1.0, 1.0, 0.0]),
        ],
    )
    hits = await store.search_dense("kb", [0.2, 1.0, 0.0], tenant="acme", top_k=2)
    assert [hit.document_id for hit in hits] == ["north", "north-east"]
    assert hits[0].score == pytest.approx(1 / math.hypot(0.2, 1.0), rel=1e-5)
    [east] = await store.search_dense("kb", [1.0, 0.0, 0.0], tenant="acme", top_k=1)
    assert (east.kb, east.chunk_index, east.text, east.page, east.heading) == (
        "kb",
        0,
        "some text",
        3,
        "East",
    )
    assert east.metadata == {"page": 3, "heading": "East"}


async def test_min_score_drops_weak_matches(store):
    await store.upsert("kb", [record("x", 0, [1.0, 0.0]), record("y", 0, [0.0, 1.0])])
    hits = await store.search_dense("kb", [1.0, 0.1], tenant="acme", top_k=5, min_score=0.5)
    assert [hit.document_id for hit in hits] == ["x"]
    assert await store.search_dense("kb", [-1.0, 0.0], tenant="acme", top_k=5, min_score=0.1) == []


async def test_a_tenant_never_sees_another_tenants_chunks(store):
    await store.upsert(
        "kb",
        [
            record("doc", 0, [1.0, 0.0], "zebra secrets", tenant="acme"),
            record("doc", 0, [1.0, 0.0], "zebra notes", tenant="globex"),
        ],
    )
    for tenant, text in (("acme", "zebra secrets"), ("globex", "zebra notes")):
        dense = await store.search_dense("kb", [1.0, 0.0], tenant=tenant, top_k=10)
        keywords = await store.search_keywords("kb", "zebra", tenant=tenant, top_k=10)
        assert [hit.text for hit in dense] == [hit.text for hit in keywords] == [text]
    assert await store.search_dense("kb", [1.0, 0.0], tenant="initech", top_k=10) == []
    # a metadata filter cannot reach the tenant field
    hits = await store.search_dense(
        "kb", [1.0, 0.0], tenant="initech", top_k=10, filters={"tenant": "acme"}
    )
    assert hits == []
    assert (await store.count("kb"), await store.count("kb", "acme")) == (2, 1)
    assert await store.delete_document("kb", "globex", "doc") == 1
    assert await store.count("kb", "acme") == 1
    assert await store.existing_hashes("kb", "globex", "doc") == {}


def test_point_ids_are_deterministic_and_tenants_cannot_forge_them():
    assert point_id("acme", "doc", 3) == point_id("acme", "doc", 3)
    assert point_id("acme", "doc", 3) != point_id("acme", "doc", 4)
    assert point_id("a/b", "c", 0) != point_id("a", "b/c", 0)


async def test_indexing_again_overwrites_and_the_tail_can_be_cut(store):
    await store.upsert("kb", [record("doc", i, [1.0, float(i)], f"v1 {i}") for i in range(5)])
    await store.upsert("kb", [record("doc", i, [1.0, float(i)], f"v2 {i}") for i in range(5)])
    assert await store.count("kb") == 5
    await store.upsert("kb", [record("doc", i, [1.0, float(i)], f"v3 {i}") for i in range(3)])
    assert await store.delete_chunks_from("kb", "acme", "doc", 3) == 2
    assert await store.delete_chunks_from("kb", "acme", "doc", 3) == 0
    hits = await store.search_dense("kb", [1.0, 0.0], tenant="acme", top_k=10)
    assert sorted(hit.text for hit in hits) == ["v3 0", "v3 1", "v3 2"]


async def test_delete_document_removes_only_that_document(store):
    await store.upsert(
        "kb", [record("a", 0, [1.0, 0.0]), record("a", 1, [1.0, 0.0]), record("b", 0, [0.0, 1.0])]
    )
    assert await store.delete_document("kb", "acme", "a") == 2
    assert await store.delete_document("kb", "acme", "a") == 0
    hits = await store.search_dense("kb", [1.0, 0.0], tenant="acme", top_k=10)
    assert [hit.document_id for hit in hits] == ["b"]


async def test_existing_hashes_map_chunk_indexes_to_text_hashes(store):
    records = [record("doc", i, [1.0, 0.0], f"chunk {i}") for i in range(3)]
    records.append(ChunkRecord("acme", "doc", 3, "custom", [1.0, 0.0], text_hash="h3"))
    await store.upsert("kb", [*records, record("other", 0, [1.0, 0.0])])
    hashes = await store.existing_hashes("kb", "acme", "doc")
    assert hashes == {r.chunk_index: r.text_hash for r in records}
    assert hashes[0] == ChunkRecord("x", "y", 0, "chunk 0", []).text_hash != hashes[1]
    assert len(hashes[0]) == 64  # SHA-256 of the text by default


async def test_filters_match_metadata_values_and_lists(store):
    await store.upsert(
        "kb",
        [
            record("a", 0, [1.0, 0.0], page=1, lang="en", filename="a.pdf"),
            record("a", 1, [1.0, 0.1], page=2, lang="fr", filename="a.pdf"),
            record("b", 0, [1.0, 0.2], page=2, lang="en", tags=["hr", "policy"]),
        ],
    )

    async def found(filters) -> set[tuple[str, int]]:
        hits = await store.search_dense("kb", [1.0, 0.0], tenant="acme", top_k=10, filters=filters)
        keyword_hits = await store.search_keywords(
            "kb", "some", tenant="acme", top_k=10, filters=filters
        )
        assert {(h.document_id, h.chunk_index) for h in keyword_hits} == {
            (h.document_id, h.chunk_index) for h in hits
        }
        return {(hit.document_id, hit.chunk_index) for hit in hits}

    assert await found({"page": 2}) == {("a", 1), ("b", 0)}
    assert await found({"page": 2, "lang": "en"}) == {("b", 0)}
    assert await found({"lang": ["fr", "de"]}) == {("a", 1)}
    assert await found({"page": [1, 2], "filename": "a.pdf"}) == {("a", 0), ("a", 1)}
    assert await found({"tags": "policy"}) == {("b", 0)}  # a list payload matches any element
    assert await found({"page": 2.0}) == {("a", 1), ("b", 0)}
    assert await found({"missing": "x"}) == set()
    for bad in ({"page": []}, {"page": [1, "x"]}, {"page": None}, {"bad key": 1}, {"a[0]": 1}):
        with pytest.raises(ValueError):
            await found(bad)


@pytest.mark.parametrize("name", ["", "Docs", "my kb", "../x", "a/b", "_x", "x" * 65, "é"])
async def test_invalid_knowledge_base_names_are_refused(store, name):
    with pytest.raises(ValueError, match="invalid knowledge base name") as error:
        await store.upsert(name, [record("a", 0, [1.0])])
    assert repr(name) in str(error.value)
    with pytest.raises(ValueError, match="invalid knowledge base name"):
        await store.search_dense(name, [1.0], tenant="acme", top_k=1)


def test_collection_names_are_prefixed():
    assert collection_name("default") == "agentrig_default"
    assert collection_name("hr-docs_2") == "agentrig_hr-docs_2"


async def test_a_missing_knowledge_base_is_empty_not_an_error(store):
    assert await store.search_dense("nothing", [1.0, 0.0], tenant="acme", top_k=3) == []
    assert await store.search_keywords("nothing", "zebra", tenant="acme", top_k=3) == []
    assert await store.count("nothing") == 0
    assert await store.existing_hashes("nothing", "acme", "doc") == {}
    assert await store.delete_document("nothing", "acme", "doc") == 0
    assert await store.delete_chunks_from("nothing", "acme", "doc", 0) == 0
    assert await store.delete_kb("nothing") is False


async def test_delete_kb_and_vector_sizes(store):
    await store.upsert("kb", [record("a", 0, [1.0, 0.0])])
    with pytest.raises(ValueError, match="holds 2-dim vectors, got 3"):
        await store.upsert("kb", [record("b", 0, [1.0, 0.0, 0.0])])
    with pytest.raises(ValueError, match="holds 2-dim vectors, got 3"):
        await store.search_dense("kb", [1.0, 0.0, 0.0], tenant="acme", top_k=1)
    with pytest.raises(ValueError, match="differ in size"):
        await store.upsert("other", [record("a", 0, [1.0]), record("b", 0, [1.0, 0.0])])
    assert await store.delete_kb("kb") is True
    assert await store.count("kb") == 0
    await store.upsert("kb", [record("a", 0, [1.0, 0.0, 0.0])])  # created anew, any size
    assert await store.count("kb") == 1


async def test_searches_without_payloads_and_payloads_filled_in_later(store):
    await store.upsert(
        "kb",
        [record("a", 0, [1.0, 0.0], "zebra one", page=1), record("b", 0, [0.9, 0.1], "zebra two")],
    )
    light = await store.search_dense("kb", [1.0, 0.0], tenant="acme", top_k=5, payload=False)
    ids = [point_id("acme", "a", 0), point_id("acme", "b", 0)]
    assert [(h.point, h.document_id, h.chunk_index, h.text, h.metadata) for h in light] == [
        (ids[0], "", -1, "", {}),
        (ids[1], "", -1, "", {}),
    ]
    keywords = await store.search_keywords("kb", "zebra", tenant="acme", top_k=5, payload=False)
    assert {h.point for h in keywords} == set(ids) and keywords[0].text == ""
    await store.delete_document("kb", "acme", "b")  # gone between search and fetch
    full = await store.with_payloads("kb", "acme", light)
    assert [(h.document_id, h.text, h.page, h.score, h.point) for h in full] == [
        ("a", "zebra one", 1, light[0].score, ids[0])
    ]
    by_key = [Hit("a", 0, "", 0.5, None, None, {}, "kb")]  # no point id: made from the key
    assert [h.text for h in await store.with_payloads("kb", "acme", by_key)] == ["zebra one"]
    assert await store.with_payloads("kb", "globex", light) == []  # another tenant's ids
    assert await store.with_payloads("nothing", "acme", light) == []
