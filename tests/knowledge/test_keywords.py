"""BM25 keyword vectors: tokenizing, the term-frequency half computed here, and the IDF
half that embedded Qdrant applies at query time (checked against the BM25 formula)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zlib

import pytest

from agentrig.knowledge.keywords import (
    K1,
    B,
    document_vector,
    query_vector,
    term_id,
    tokenize,
)
from agentrig.knowledge.vectors import ChunkRecord, QdrantVectorStore


def idf(document_frequency: int, documents: int) -> float:
    """The IDF Qdrant applies (the BM25 / Lucene form)."""
    return math.log((documents - document_frequency + 0.5) / (document_frequency + 0.5) + 1)


def test_tokenize_lowercases_drops_stopwords_and_stems():
    assert tokenize("The Runners were RUNNING to the runs, and it ran!") == [
        "runner",
        "were",
        "run",
        "run",
        "ran",
    ]
    assert tokenize("connection connected connecting") == ["connect"] * 3
    assert tokenize("the and of") == []
    assert tokenize("") == []


def test_tokenize_handles_unicode_words():
    assert tokenize("Café STRASSE Straße ﬁle 東京 42") == [
        "café",
        "strass",
        "strass",
        "file",
        "東京",
        "42",
    ]
    assert tokenize("x" * 65 + " kept") == ["kept"]  # blobs are not words


def test_term_ids_are_stable_across_processes():
    code = "from agentrig.knowledge.keywords import term_id; print(term_id('run'), term_id('東京'))"
    outputs = {
        tuple(
            subprocess.run(
                [sys.executable, "-c", code],
                env={**os.environ, "PYTHONHASHSEED": seed},
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        )
        for seed in ("1", "2")
    }
    assert outputs == {(str(term_id("run")), str(term_id("東京")))}
    assert term_id("run") == zlib.crc32(b"run")


def test_document_vector_is_bm25_term_frequency_saturation():
    vector = document_vector("apple apple banana", avg_len=3)
    norm = K1 * (1 - B + B * 3 / 3)
    expected = {
        term_id("appl"): 2 * (K1 + 1) / (2 + norm),
        term_id("banana"): 1 * (K1 + 1) / (1 + norm),
    }
    assert vector.indices == sorted(expected)
    assert dict(zip(vector.indices, vector.values, strict=True)) == pytest.approx(expected)


def test_longer_documents_and_repeats_weigh_less_per_occurrence():
    short = document_vector("zebra", avg_len=10)
    long = document_vector("zebra " + " ".join(f"filler{i}" for i in range(30)), avg_len=10)
    zebra = term_id("zebra")
    assert short.values[short.indices.index(zebra)] > long.values[long.indices.index(zebra)]
    weights = [document_vector("zebra " * tf, avg_len=tf).values[0] for tf in (1, 2, 4, 100)]
    assert weights == sorted(weights)  # more occurrences weigh more...
    assert weights[-1] < K1 + 1  # ...but saturate below k1 + 1
    with pytest.raises(ValueError, match="avg_len"):
        document_vector("zebra", avg_len=0)


def test_query_vector_is_each_distinct_term_once():
    vector = query_vector("Running runs and the RUNNER")
    assert vector.indices == sorted({term_id("run"), term_id("runner")})
    assert vector.values == [1.0, 1.0]
    assert query_vector("the and of") == ([], [])


@pytest.fixture
async def store(tmp_path):
    store = QdrantVectorStore(tmp_path / "qdrant")
    yield store
    await store.aclose()


def chunk(document_id: str, text: str) -> ChunkRecord:
    return ChunkRecord("acme", document_id, 0, text, [1.0, 0.0])


async def test_rare_terms_and_their_stems_outrank_common_terms(store):
    await store.upsert(
        "kb",
        [
            chunk("common", "the system manual describes the system and its system settings"),
            chunk("rare", "the service runs nightly"),
            *(chunk(f"filler{i}", f"system overview part {i}") for i in range(6)),
        ],
    )
    hits = await store.search_keywords("kb", "running system", tenant="acme", top_k=3)
    assert hits[0].document_id == "rare"  # "running" matched "runs", the rare term
    assert {hit.document_id for hit in hits[1:]} <= {"common", *(f"filler{i}" for i in range(6))}
    assert await store.search_keywords("kb", "the of and", tenant="acme", top_k=3) == []


async def test_embedded_qdrant_applies_the_idf_modifier(store, tmp_path):
    texts = ["alpha zebra", "alpha", "alpha", "alpha"]
    await store.upsert("kb", [chunk(f"d{i}", text) for i, text in enumerate(texts)])

    def tf_weight(text: str, term: str) -> float:
        vector = document_vector(text)
        return vector.values[vector.indices.index(term_id(term))]

    [zebra] = await store.search_keywords("kb", "zebra", tenant="acme", top_k=5)
    assert zebra.score == pytest.approx(idf(1, 4) * tf_weight("alpha zebra", "zebra"), rel=1e-5)
    alpha = await store.search_keywords("kb", "alpha", tenant="acme", top_k=5)
    assert alpha[0].score == pytest.approx(idf(4, 4) * tf_weight("alpha", "alpha"), rel=1e-5)
    assert alpha[0].score < zebra.score / 5  # a term in every chunk contributes little

    await store.aclose()  # the statistics are rebuilt when the folder is opened again
    reopened = QdrantVectorStore(tmp_path / "qdrant")
    try:
        [again] = await reopened.search_keywords("kb", "zebra", tenant="acme", top_k=5)
        assert again.score == pytest.approx(zebra.score)
    finally:
        await reopened.aclose()


async def test_idf_follows_deletes_and_overwrites(store):
    await store.upsert("kb", [chunk("a", "zebra"), chunk("b", "zebra"), chunk("c", "lion")])
    [first, _] = await store.search_keywords("kb", "zebra", tenant="acme", top_k=5)
    await store.delete_document("kb", "acme", "b")
    await store.upsert("kb", [chunk("c", "tiger")])  # overwritten: "lion" is gone
    [after] = await store.search_keywords("kb", "zebra", tenant="acme", top_k=5)
    assert after.score == pytest.approx(idf(1, 2) * document_vector("zebra").values[0], rel=1e-5)
    assert after.score > first.score
    assert await store.search_keywords("kb", "lion", tenant="acme", top_k=5) == []
