"""BM25 keyword vectors, stored as Qdrant sparse vectors next to the dense ones.

Keyword search lives in the same points as the dense vectors, so there is no second index
(a Tantivy or SQLite FTS table) to keep in sync across worker processes, and deleting a
point deletes its keywords. BM25 splits in two: the term-frequency half is computed here,
once per chunk, from the chunk alone; the IDF half needs corpus statistics, which Qdrant
keeps per collection and applies at query time (``SparseVectorParams(modifier=IDF)``,
which the embedded engine applies too). A query vector is each distinct term with weight 1, so
a chunk's score is the sum over shared terms of ``idf(term) * saturated_tf(term)``.

Terms are Qdrant's BM25 (``qdrant_edge.Bm25``, Rust, the ``Bm25Config`` of a Qdrant
server's own BM25): Unicode words, lowercased, minus a short English stopword list
(Lucene's, and the words questions are made of: "how", "does", "my"), Snowball English
stems, each hashed to a 32-bit id that is the same in every process; the text is
NFKC-normalised and case-folded first. It is Qdrant's, not a Python tokenizer, for speed
(0.3 ms a 450-word chunk of made-up words against 1.5 ms for the same terms with
PyStemmer, measured here; ingestion spends its CPU here once the embeddings are cached),
and so that the embedded store and a Qdrant server make the same vectors. On SciFact the
two score alike: keyword nDCG@10 at the chosen settings 0.7053 on train, 0.6847 on test,
either way.

A chunk that starts with a Markdown heading line (``# Title``: a section's first chunk,
see ``parse.py``) counts that line's terms ``HEADING_WEIGHT`` times, as BM25F weighs a
title field above the body: a heading names what its section is about. The constants
(``K1``, ``B``, ``HEADING_WEIGHT``) were chosen on BEIR SciFact's train queries with
``bench/tune_retrieval.py`` (docs/knowledge.md, "Retrieval quality"); changing them
changes the vectors of chunks indexed from then on, so re-index a knowledge base after.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import re
import threading
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

import numpy as np
import qdrant_edge

__all__ = [
    "DEFAULT_AVG_LEN",
    "HEADING_WEIGHT",
    "K1",
    "LUCENE_STOPWORDS",
    "QUESTION_WORDS",
    "STOPWORDS",
    "B",
    "SparseVector",
    "document_vector",
    "document_vectors",
    "query_vector",
    "term_id",
]

# Chosen on SciFact's train queries (bench/tune_retrieval.py) at DEFAULT_AVG_LEN: before,
# the textbook k1 = 1.2, b = 0.75, no heading weight and Lucene's stopwords alone (train
# keyword nDCG@10 0.695 -> 0.705).
K1 = 2.0
B = 0.75
HEADING_WEIGHT = 3  # times a chunk's leading Markdown heading line counts
# BM25 normalises a chunk's length by the corpus's average length, which Qdrant does not
# track, so it is fixed at indexing time. Chunks are cut to about the same size (1000
# tokens by default, some 750 words of which about 500 survive the stopword list), so only
# short chunks (a document's last one, small documents) move away from the average: a
# wrong guess changes how much they are favoured, never which terms match. Pass the
# average your chunking produces if it differs much; keep it fixed within a knowledge base.
DEFAULT_AVG_LEN = 500.0
MAX_TERM_CHARS = 64  # longer "words" are hashes, base64 or minified code: noise

# Lucene's English stop set: short, well known, and it keeps meaningful words.
LUCENE_STOPWORDS = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into"),
        *("is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then"),
        *("there", "these", "they", "this", "to", "was", "will", "with"),
    }
)
# The words questions are made of, not what they ask about: interrogatives, auxiliaries,
# pronouns ("i" stays: "type I", "phase I"). A document that asks many questions (an FAQ)
# would otherwise match every question by them.
QUESTION_WORDS = frozenset(
    {
        *("how", "what", "when", "where", "which", "who", "whom", "whose", "why"),
        *("am", "been", "being", "can", "could", "did", "do", "does", "doing", "had", "has"),
        *("have", "having", "may", "might", "must", "shall", "should", "were", "would"),
        *("me", "my", "we", "our", "you", "your", "he", "him", "his", "she", "her", "its"),
        "them",
    }
)
STOPWORDS = LUCENE_STOPWORDS | QUESTION_WORDS

_HEADING = re.compile(r"#{1,6}[ \t]")  # an ATX heading line: 1 to 6 '#', then a blank
_local = threading.local()  # one model per thread and setting: no sharing across threads


class SparseVector(NamedTuple):
    """Term ids (sorted, distinct) and their weights: what Qdrant calls a sparse vector."""

    indices: list[int]
    values: list[float]


def _model(k1: float, b: float, avg_len: float) -> Any:
    models = _local.__dict__.setdefault("models", {})
    model = models.get((k1, b, avg_len))
    if model is None:
        config = qdrant_edge.Bm25Config(
            k=k1,
            b=b,
            avg_len=avg_len,
            tokenizer=qdrant_edge.TokenizerType.Word,
            lowercase=True,
            stopwords=qdrant_edge.StopwordsSet(custom=set(STOPWORDS)),
            stemmer=qdrant_edge.SnowballParams(qdrant_edge.SnowballLanguage.English),
            max_token_len=MAX_TERM_CHARS,
        )
        model = models[(k1, b, avg_len)] = qdrant_edge.Bm25(config)
    return model


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def term_id(word: str) -> int:
    """The sparse-vector index of ``word``'s term (its stem); ValueError for a stopword."""
    vector = query_vector(word)
    if len(vector.indices) != 1:
        raise ValueError(f"{word!r} is not one term")
    return vector.indices[0]


def document_vector(
    text: str,
    *,
    avg_len: float = DEFAULT_AVG_LEN,
    k1: float = K1,
    b: float = B,
    heading_weight: int = HEADING_WEIGHT,
) -> SparseVector:
    """The BM25 term-frequency half of ``text``'s weights (IDF is applied by Qdrant).

    Each term weighs ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``, where
    ``tf`` is its count in the text and ``len`` the text's term count; the terms of a
    leading Markdown heading line count ``heading_weight`` times in both."""
    if avg_len <= 0:
        raise ValueError(f"avg_len must be positive, got {avg_len}")
    if heading_weight < 1:
        raise ValueError(f"heading_weight must be at least 1, got {heading_weight}")
    text = _normalize(text)
    first, _, rest = text.partition("\n")
    if heading_weight > 1 and _HEADING.match(first):
        text = "\n".join([first] * heading_weight + [rest])
    vector = _model(k1, b, avg_len).embed_document(text)
    return _sorted(vector.indices, vector.values)


def query_vector(text: str) -> SparseVector:
    """Each distinct term of ``text`` with weight 1.0; empty if it has only stopwords."""
    vector = _model(K1, B, DEFAULT_AVG_LEN).embed_query(_normalize(text))
    return _sorted(vector.indices, [1.0] * len(vector.indices))


def _sorted(indices: list[int], values: list[float]) -> SparseVector:
    """Qdrant's BM25 gives its terms in id order already; sort only if it ever does not."""
    if all(a < b for a, b in itertools.pairwise(indices)):
        return SparseVector(indices, values)
    pairs = sorted(zip(indices, values, strict=True))
    return SparseVector([i for i, _ in pairs], [v for _, v in pairs])


# A batch this large is worth a trip to the helper process (about 0.3 ms a chunk, which
# holds the GIL); a smaller one is made in a thread.
HELPER_MIN_TEXTS = 32
HELPER_NICE = 10  # how much lower than the server's the helper's CPU priority is
_helper: ProcessPoolExecutor | None = None
_helper_lock = threading.Lock()


async def document_vectors(texts: Sequence[str]) -> list[SparseVector]:
    """:func:`document_vector` of each text, off the event loop: a large batch in a helper
    process of lower CPU priority, started on first use, so that indexing a large batch
    takes neither the server's GIL nor its cores from the requests it serves (on 2 cores,
    a search's query embedding waited for it); a small batch in a thread."""
    texts = list(texts)
    if len(texts) >= HELPER_MIN_TEXTS:
        helper = _helper_pool()
        try:
            packed = await asyncio.wrap_future(helper.submit(_packed_vectors, texts))
        except BrokenProcessPool:  # killed: the next batch starts another
            _drop_helper(helper)
        else:
            return await asyncio.to_thread(_unpacked, *packed)
    return await asyncio.to_thread(_vectors, texts)


def _vectors(texts: list[str]) -> list[SparseVector]:
    return [document_vector(text) for text in texts]


# The helper's answer crosses back as three arrays: unpickled, the lists of 1,000 chunks'
# vectors took 40 ms in one call that holds the GIL (a query embedding waited for it);
# arrays take a copy, and the lists are made again in a thread, chunk by chunk.
def _packed_vectors(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors = _vectors(texts)
    ends = np.cumsum([len(vector.indices) for vector in vectors], dtype=np.int64)
    total = int(ends[-1]) if len(ends) else 0
    chained = itertools.chain.from_iterable
    indices = np.fromiter(chained(v.indices for v in vectors), dtype=np.int64, count=total)
    values = np.fromiter(chained(v.values for v in vectors), dtype=np.float64, count=total)
    return indices, values, ends


def _unpacked(indices: np.ndarray, values: np.ndarray, ends: np.ndarray) -> list[SparseVector]:
    bounds = itertools.pairwise([0, *ends.tolist()])
    return [
        SparseVector(indices[start:end].tolist(), values[start:end].tolist())
        for start, end in bounds
    ]


def _helper_pool() -> ProcessPoolExecutor:
    global _helper
    with _helper_lock:
        if _helper is None:
            spawn = multiprocessing.get_context("spawn")  # no fork of a threaded server
            _helper = ProcessPoolExecutor(1, mp_context=spawn, initializer=_lower_priority)
        return _helper


def _drop_helper(helper: ProcessPoolExecutor) -> None:
    global _helper
    with _helper_lock:
        if _helper is helper:
            _helper = None
    helper.shutdown(wait=False)


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.nice(HELPER_NICE)
