"""BM25 keyword vectors, stored as Qdrant sparse vectors next to the dense ones.

Keyword search lives in the same points as the dense vectors, so there is no second index
(a Tantivy or SQLite FTS table) to keep in sync across worker processes, and deleting a
point deletes its keywords. BM25 splits in two: the term-frequency half is computed here,
once per chunk, from the chunk alone; the IDF half needs corpus statistics, which Qdrant
keeps per collection and applies at query time (``SparseVectorParams(modifier=IDF)``,
which embedded mode applies too). A query vector is each distinct term with weight 1, so
a chunk's score is the sum over shared terms of ``idf(term) * saturated_tf(term)``.

Terms: NFKC-normalised, case-folded Unicode words, minus a short English stopword list,
Snowball English stems (PyStemmer), each mapped to the CRC-32 of its UTF-8 stem. CRC-32 is
stable across processes and Python versions (``hash()`` is salted per process); two stems
sharing an id merely add their counts, which at a 2**32 id space is rare enough to ignore.
"""

from __future__ import annotations

import re
import threading
import unicodedata
import zlib
from collections import Counter
from typing import NamedTuple

import Stemmer

__all__ = [
    "DEFAULT_AVG_LEN",
    "K1",
    "STOPWORDS",
    "B",
    "SparseVector",
    "document_vector",
    "query_vector",
    "term_id",
    "tokenize",
]

K1 = 1.2
B = 0.75
# BM25 normalises a chunk's length by the corpus's average length, which Qdrant does not
# track, so it is fixed at indexing time. Chunks are cut to about the same size (1000
# tokens by default, some 750 words of which about 500 survive the stopword list), so only
# short chunks (a document's last one, small documents) move away from the average: a
# wrong guess changes how much they are favoured, never which terms match. Pass the
# average your chunking produces if it differs much; keep it fixed within a knowledge base.
DEFAULT_AVG_LEN = 500.0
MAX_TERM_CHARS = 64  # longer "words" are hashes, base64 or minified code: noise

# Lucene's English stop set: short, well known, and it keeps meaningful words.
STOPWORDS = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into"),
        *("is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then"),
        *("there", "these", "they", "this", "to", "was", "will", "with"),
    }
)

_WORD = re.compile(r"\w+")  # str patterns match Unicode words by default
_local = threading.local()  # a Stemmer keeps state and must not be shared between threads


class SparseVector(NamedTuple):
    """Term ids (sorted, distinct) and their weights: what Qdrant calls a sparse vector."""

    indices: list[int]
    values: list[float]


def _stemmer() -> Stemmer.Stemmer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def tokenize(text: str) -> list[str]:
    """The stems of ``text``'s words that are not stopwords, in order, repeats kept."""
    words = [
        word
        for word in _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
        if word not in STOPWORDS and len(word) <= MAX_TERM_CHARS
    ]
    return _stemmer().stemWords(words) if words else []


def term_id(stem: str) -> int:
    """The sparse-vector index of a stem: its CRC-32, the same in every process."""
    return zlib.crc32(stem.encode("utf-8"))


def document_vector(
    text: str, *, avg_len: float = DEFAULT_AVG_LEN, k1: float = K1, b: float = B
) -> SparseVector:
    """The BM25 term-frequency half of ``text``'s weights (IDF is applied by Qdrant).

    Each term weighs ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``, where
    ``tf`` is its count in the text and ``len`` the text's term count."""
    if avg_len <= 0:
        raise ValueError(f"avg_len must be positive, got {avg_len}")
    stems = tokenize(text)
    counts: Counter[int] = Counter()
    for stem, count in Counter(stems).items():
        counts[term_id(stem)] += count
    norm = k1 * (1 - b + b * len(stems) / avg_len)
    indices = sorted(counts)
    return SparseVector(indices, [counts[i] * (k1 + 1) / (counts[i] + norm) for i in indices])


def query_vector(text: str) -> SparseVector:
    """Each distinct term of ``text`` with weight 1.0; empty if it has only stopwords."""
    indices = sorted({term_id(stem) for stem in tokenize(text)})
    return SparseVector(indices, [1.0] * len(indices))
