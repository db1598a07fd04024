"""BM25 keyword vectors: the terms, the term-frequency half computed here, and the IDF
half that Qdrant applies at query time, on both backends (checked against the BM25 formula)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from agentrig.knowledge import keywords
from agentrig.knowledge.keywords import (
    HEADING_WEIGHT,
    HELPER_MIN_TEXTS,
    K1,
    B,
    document_vector,
    document_vectors,
    query_vector,
    term_id,
)
from agentrig.knowledge.vectors import ChunkRecord
from tests.knowledge.conftest import make_store


def idf(document_frequency: int, documents: int) -> float:
    """The IDF Qdrant applies (the BM25 / Lucene form)."""
    return math.log((documents - document_frequency + 0.5) / (document_frequency + 0.5) + 1)


def terms(text: str) -> list[int]:
    return query_vector(text).indices


def ids(*words: str) -> list[int]:
    return sorted({term_id(word) for word in words})


def test_terms_are_lowercased_stemmed_words_without_stopwords():
    assert terms("The Runners were RUNNING to the runs, and it ran!") == ids("runner", "run", "ran")
    # question words carry no topic: "how long" must not find every FAQ question
    assert terms("How long does my battery last? What do you say?") == ids(
        "long", "battery", "last", "say"
    )
    assert terms("type I diabetes") == ids("type", "i", "diabetes")  # "i" is kept
    assert terms("connection connected connecting") == ids("connect")
    assert terms("the and of") == terms("") == []
    with pytest.raises(ValueError, match="not one term"):
        term_id("the")


def test_terms_handle_unicode_words():
    assert terms("Café STRASSE Straße ﬁle 東京 42") == ids("café", "strasse", "file", "東京", "42")
    assert term_id("STRASSE") == term_id("straße")  # case-folded, NFKC-normalised
    assert term_id("cafe") != term_id("café")
    assert terms("x" * 65 + " kept") == ids("kept")  # blobs are not words


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


def test_document_vector_is_bm25_term_frequency_saturation():
    vector = document_vector("apple apple banana", avg_len=3)
    norm = K1 * (1 - B + B * 3 / 3)
    expected = {
        term_id("apple"): 2 * (K1 + 1) / (2 + norm),
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


def test_a_leading_markdown_heading_counts_heading_weight_times():
    assert HEADING_WEIGHT == 3
    text = "# Zebra care\n\nZebras eat grass."
    weights = dict(zip(*document_vector(text, avg_len=4), strict=True))
    # the heading's "zebra" and "care" 3 times each, then "zebra", "eat", "grass": 9 terms
    norm = K1 * (1 - B + B * 9 / 4)
    assert weights == pytest.approx(
        {
            term_id("zebra"): 4 * (K1 + 1) / (4 + norm),
            term_id("care"): 3 * (K1 + 1) / (3 + norm),
            term_id("eat"): 1 * (K1 + 1) / (1 + norm),
            term_id("grass"): 1 * (K1 + 1) / (1 + norm),
        }
    )
    plain = document_vector("Zebra care\n\nZebras eat grass.", avg_len=4)
    assert document_vector(text, avg_len=4, heading_weight=1) == plain  # as if no heading
    for unweighted in ("#zebra care\nzebra", "text\n# Zebra care", "####### deep\nzebra"):
        assert document_vector(unweighted) == document_vector(unweighted, heading_weight=1)
    assert document_vector("### Zebra\nx") != document_vector("### Zebra\nx", heading_weight=1)
    with pytest.raises(ValueError, match="heading_weight"):
        document_vector(text, heading_weight=0)


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


async def test_the_store_applies_the_idf_modifier(store, backend, tmp_path):
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
    reopened = make_store(backend, tmp_path)
    try:
        [again] = await reopened.search_keywords("kb", "zebra", tenant="acme", top_k=5)
        assert again.score == pytest.approx(zebra.score)
    finally:
        await reopened.aclose()


async def test_idf_after_deletes_and_overwrites(store, backend):
    await store.upsert("kb", [chunk("a", "zebra"), chunk("b", "zebra"), chunk("c", "lion")])
    [first, _] = await store.search_keywords("kb", "zebra", tenant="acme", top_k=5)
    weight = document_vector("zebra").values[0]
    assert first.score == pytest.approx(idf(2, 3) * weight, rel=1e-5)
    await store.delete_document("kb", "acme", "b")
    await store.upsert("kb", [chunk("c", "tiger")])  # overwritten: "lion" is gone
    [after] = await store.search_keywords("kb", "zebra", tenant="acme", top_k=5)
    assert after.document_id == "a"
    assert await store.search_keywords("kb", "lion", tenant="acme", top_k=5) == []
    if backend == "qdrant":  # qdrant-client's local backend counts the live chunks per query
        assert after.score == pytest.approx(idf(1, 2) * weight, rel=1e-5)
    else:  # Qdrant's engine counts a deleted chunk until its segment is vacuumed
        assert after.score == pytest.approx(idf(2, 3) * weight, rel=1e-5)


async def test_keyword_vectors_given_with_the_chunks_are_the_ones_indexed(store):
    # the indexer computes them while it embeds; the store computes only what is missing
    given = chunk("given", "lion")
    given.keywords = document_vector("zebra zebra")
    empty = chunk("empty", "zebra")
    empty.keywords = ([], [])  # as a chunk of stopwords only
    await store.upsert("kb", [given, empty, chunk("computed", "lion")])
    [zebra] = await store.search_keywords("kb", "zebra", tenant="acme", top_k=5)
    assert (zebra.document_id, zebra.text) == ("given", "lion")
    [lion] = await store.search_keywords("kb", "lion", tenant="acme", top_k=5)
    assert lion.document_id == "computed"
    assert await store.count("kb") == 3


async def test_batches_of_keyword_vectors_are_made_in_a_helper_process_that_comes_back():
    texts = [f"# Part {n}\nzebras graze on grass number {n} and stripes" for n in range(40)]
    assert len(texts) >= HELPER_MIN_TEXTS
    expected = [document_vector(text) for text in texts]
    assert await document_vectors(texts) == expected
    helper = keywords._helper
    assert helper is not None  # a batch this large went to the helper process
    [pid] = [process.pid for process in helper._processes.values()]
    assert os.getpriority(os.PRIO_PROCESS, pid) >= os.getpriority(os.PRIO_PROCESS, 0) + 1
    os.kill(pid, 9)  # a killed helper: the batch is made in a thread, the next helper starts
    assert await document_vectors(texts) == expected
    assert await document_vectors(texts) == expected
    assert keywords._helper is not None and keywords._helper is not helper
    assert await document_vectors(texts[:3]) == expected[:3]  # a small batch: in a thread
