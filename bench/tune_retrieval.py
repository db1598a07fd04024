"""Retrieval tuning offline: BM25, tokenisation and fusion swept on a BEIR train split.

``agentrig eval retrieval`` measures one setting in minutes, most of them spent ingesting;
this script measures hundreds in seconds. It rebuilds the chunk texts the ingestion path
indexes (each corpus entry the Markdown document ``evaluation.ingest_corpus`` stores,
parsed and chunked with the default settings), embeds them and the queries once with the
router's ``embed`` role (the local all-MiniLM-L6-v2) and keeps the vectors as ``.npy``
files under ``--cache``. Then it ranks in numpy/scipy as the store does: dense by exact
cosine, keywords by BM25, the term-frequency half as ``keywords.py`` computes it (a
Python model of Qdrant's BM25 with PyStemmer, so that tokenisations can be varied) and the
IDF as Qdrant applies it, ``ln((N - df + 0.5) / (df + 0.5) + 1)`` over the N points that
have a keyword vector (qdrant_client's local mode and the server alike). Each ranking
gives its first ``depth`` chunks with their scores; they are fused, a document ranks by
its best chunk, and the first 30 chunks are scored as the eval scores them (nDCG@10).

Everything is chosen on ``qrels/train.tsv``: first the keyword half (tokenisation, k1, b,
avg_len) by keyword nDCG, then the fusion (method, weights, RRF k, depth) by hybrid nDCG
over the best keyword settings. Rules fixed beforehand: avg_len is the store's (500), the
depth is the retriever's (120 candidates per ranking for the eval's 30 chunks), and the
tokenisation drops question words (``ELIGIBLE_STOPWORDS``, for question-style queries).
``qrels/test.tsv`` is scored after the choice, for the chosen setting and the one before.
The code's BM25 vectors and fusion are checked against what the sweep computes
(``keywords.document_vector``, ``fusion.fuse``): the figures are those of the code.

Run: ``.venv/bin/python bench/tune_retrieval.py [--dataset DIR] [--cache DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import math
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import Stemmer
from rich.console import Console
from rich.table import Table
from scipy import sparse

from agentrig.config import KnowledgeSettings, load_settings
from agentrig.knowledge import keywords
from agentrig.knowledge.chunk import chunk_document
from agentrig.knowledge.evaluation import Dataset, ndcg_at
from agentrig.knowledge.fusion import fuse
from agentrig.knowledge.parse import parse_document
from agentrig.knowledge.retrieval import candidates_per_ranking
from agentrig.knowledge.vectors import Hit
from agentrig.llm.router import ModelRouter

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "scifact"
TOP_K = 30  # chunks the eval asks for per query (evaluation.evaluate: depth * 3)
# what the retriever asks each ranking for, for the eval's 30: 120
DEPTH = candidates_per_ranking(TOP_K, KnowledgeSettings().fusion_candidates)
DEPTHS = (30, 60, DEPTH, 240)
# The store builds every keyword vector with keywords.DEFAULT_AVG_LEN (Qdrant does not track
# the average length), so a setting is chosen at that value; a corpus's own mean is shown.
STORE_AVG_LEN = 500.0
console = Console() if sys.stdout.isatty() else Console(width=140)

# More English function words than Lucene's list: pronouns, auxiliaries, quantifiers.
_MORE_STOPWORDS = (
    "about above after again all also am any because been before being below between both "
    "can could did do does doing down during each few from further had has have having he "
    "her here hers him his how i its itself just may me might more most must my nor off "
    "once only other our ours out over own same she should so some than those through too "
    "under until up very we were what when where which while who whom why would you your"
)
EXTENDED_STOPWORDS = keywords.LUCENE_STOPWORDS | frozenset(_MORE_STOPWORDS.split())
QUESTION = keywords.LUCENE_STOPWORDS | keywords.QUESTION_WORDS
# The choice is made among tokenisations that drop question words: SciFact's queries are
# claims, not questions, so train cannot see that score fusion lets "how", "does" and the
# like rank a page of questions (the sample knowledge base's returns FAQ) above the answer
# ("How long does charging take?", tests/knowledge/test_pipeline.py). Without them, the
# best Lucene-only setting is shown beside the choice.
ELIGIBLE_STOPWORDS = QUESTION
_WORD = re.compile(r"\w+")
_HEADING = re.compile(r"#{1,6}[ \t]")


# -- the corpus as the ingestion path indexes it ---------------------------------------


def chunk_texts(data: Dataset, settings: KnowledgeSettings) -> tuple[list[str], list[str]]:
    """The chunk texts of every corpus entry and the corpus id of each."""
    texts: list[str] = []
    owners: list[str] = []
    for corpus_id, (title, text) in data.corpus.items():
        body = f"# {title}\n\n{text}\n" if title else f"{text}\n"  # as ingest_corpus does
        parsed = parse_document(body.encode(), f"{corpus_id}.md", None)
        for chunk in chunk_document(
            parsed, size=settings.chunk_size, overlap=settings.chunk_overlap
        ):
            texts.append(chunk.text)
            owners.append(corpus_id)
    return texts, owners


def embed_cached(texts: Sequence[str], cache: Path, kind: str, batch: int) -> np.ndarray:
    """The embed role's vectors of ``texts``, from ``cache`` if embedded before."""
    settings = load_settings()
    model = settings.llm.roles["embed"][0]
    digest = hashlib.sha256("\0".join([model, *texts]).encode()).hexdigest()[:16]
    path = cache / f"{kind}-{digest}.npy"
    if path.exists():
        return np.load(path)
    console.print(f"embedding {len(texts)} {kind} with {model} (cached in {path})")

    async def run() -> list[list[float]]:
        router = ModelRouter.from_settings(settings)
        try:
            embedder, vectors = router.embedder("embed"), []
            started = time.perf_counter()
            for start in range(0, len(texts), batch):
                vectors += await embedder.embed(list(texts[start : start + batch]))
                if start // batch % 10 == 0:
                    console.print(f"  {len(vectors)} in {time.perf_counter() - started:.0f} s")
            return vectors
        finally:
            await router.aclose()

    array = np.asarray(asyncio.run(run()), dtype=np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return array


# -- keyword rankings --------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """A tokenisation: stopwords, stemmer (None: none), title terms counted ``title`` times."""

    name: str = field(compare=False)
    stopwords: frozenset[str] = keywords.LUCENE_STOPWORDS
    stemmer: str | None = "english"
    title: int = 1
    numbers: bool = True  # keep words made of digits only

    def tokenize(self, text: str) -> list[str]:
        words = [
            word
            for word in _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
            if word not in self.stopwords
            and len(word) <= keywords.MAX_TERM_CHARS
            and (self.numbers or not word.isdigit())
        ]
        if self.stemmer is None or not words:
            return words
        return _stemmer(self.stemmer).stemWords(words)

    def document(self, text: str) -> list[str]:
        """A chunk's terms, those of its first line repeated if it is a Markdown heading."""
        first, _, rest = text.partition("\n")
        if self.title == 1 or not _HEADING.match(first):
            return self.tokenize(text)
        return self.tokenize(first) * self.title + self.tokenize(rest)


_stemmers: dict[str, Stemmer.Stemmer] = {}


def _stemmer(name: str) -> Stemmer.Stemmer:
    return _stemmers.setdefault(name, Stemmer.Stemmer(name))


BEFORE = Terms("lucene, snowball")  # keywords.py before this tuning
TERMS = (
    BEFORE,
    Terms("lucene, porter", stemmer="porter"),
    Terms("lucene, no stemming", stemmer=None),
    Terms("no stopwords, snowball", stopwords=frozenset()),
    Terms("extended stopwords, snowball", stopwords=EXTENDED_STOPWORDS),
    Terms("lucene, snowball, no numbers", numbers=False),
    Terms("lucene, snowball, title x2", title=2),
    Terms("lucene, snowball, title x3", title=3),
    Terms("lucene, snowball, title x4", title=4),
    Terms("lucene + question words, snowball", stopwords=QUESTION),
    Terms("lucene + question words, snowball, title x3", stopwords=QUESTION, title=3),
    Terms("lucene + question words, snowball, title x4", stopwords=QUESTION, title=4),
)


@dataclass(frozen=True)
class BM25:
    terms: Terms
    k1: float = keywords.K1
    b: float = keywords.B
    avg_len: float = keywords.DEFAULT_AVG_LEN

    def label(self) -> str:
        return f"{self.terms.name}; k1={self.k1} b={self.b} avg_len={self.avg_len:g}"


class Counts:
    """Term counts of the chunks and the queries under one tokenisation."""

    def __init__(self, terms: Terms, chunks: Sequence[str], queries: Sequence[str]) -> None:
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for row, text in enumerate(chunks):
            for term, count in Counter(terms.document(text)).items():
                rows.append(row)
                cols.append(vocab.setdefault(term, len(vocab)))
                vals.append(count)
        shape = (len(chunks), len(vocab))
        self.tf = sparse.csr_matrix((np.array(vals, float), (rows, cols)), shape=shape)
        self.lengths = np.asarray(self.tf.sum(axis=1)).ravel()
        q_rows, q_cols = [], []
        for row, text in enumerate(queries):  # each distinct term weighs 1, as query_vector
            for col in {vocab[t] for t in terms.tokenize(text) if t in vocab}:
                q_rows.append(row)
                q_cols.append(col)
        q_shape = (len(queries), len(vocab))
        self.queries = sparse.csr_matrix((np.ones(len(q_rows)), (q_rows, q_cols)), shape=q_shape)
        df = np.bincount(self.tf.indices, minlength=len(vocab))
        n = np.count_nonzero(self.lengths)  # points with a keyword vector
        self.idf = np.log((n - df + 0.5) / (df + 0.5) + 1)

    def scores(self, bm25: BM25) -> np.ndarray:
        """queries x chunks BM25 scores: sum over shared terms of idf * saturated tf."""
        tf = self.tf.copy()
        norm = bm25.k1 * (1 - bm25.b + bm25.b * self.lengths / bm25.avg_len)
        tf.data = tf.data * (bm25.k1 + 1) / (tf.data + np.repeat(norm, np.diff(tf.indptr)))
        return (self.queries.multiply(self.idf).tocsr() @ tf.T).toarray()


# -- rankings, fusion, metrics -----------------------------------------------------------

Ranking = tuple[np.ndarray, np.ndarray]  # chunk indices best first, their scores


def top(scores: np.ndarray, depth: int, positive: bool) -> list[Ranking]:
    """Each query's first ``depth`` chunks (only those scoring > 0 if ``positive``)."""
    part = np.argpartition(-scores, depth, axis=1)[:, :depth]
    out = []
    for row, cand in zip(scores, part, strict=True):
        order = cand[np.lexsort((cand, -row[cand]))]
        if positive:
            order = order[row[order] > 0]
        out.append((order, row[order]))
    return out


def _normalised(scores: np.ndarray, method: str) -> np.ndarray:
    if method == "dbsf":  # mean +- 3 standard deviations -> 0..1, as Qdrant's DBSF
        low, high = scores.mean() - 3 * scores.std(), scores.mean() + 3 * scores.std()
    else:  # min-max
        low, high = scores.min(), scores.max()
    return (scores - low) / (high - low) if high > low else np.ones_like(scores)


@dataclass(frozen=True)
class Fusion:
    method: str  # "rrf", "convex" (min-max) or "dbsf"
    dense_weight: float
    keyword_weight: float
    depth: int
    rrf_k: int = 60

    def label(self) -> str:
        k = f" k={self.rrf_k}" if self.method == "rrf" else ""
        weights = f"dense {self.dense_weight:g} / keywords {self.keyword_weight:g}"
        return f"{self.method}{k}, {weights}, depth {self.depth}"

    def fused(self, dense: Ranking, kw: Ranking, n: int) -> np.ndarray:
        """The first TOP_K chunk indices; ties to the smaller index."""
        total = np.zeros(n)
        for weight, (idx, scores) in ((self.dense_weight, dense), (self.keyword_weight, kw)):
            idx, scores = idx[: self.depth], scores[: self.depth]
            if weight == 0 or not len(idx):
                continue
            if self.method == "rrf":
                total[idx] += weight / (self.rrf_k + np.arange(1, len(idx) + 1))
            else:
                total[idx] += weight * _normalised(scores, self.method)
        pool = np.union1d(dense[0][: self.depth], kw[0][: self.depth])
        return pool[np.lexsort((pool, -total[pool]))][:TOP_K]


BEFORE_BM25 = BM25(BEFORE, 1.2, 0.75, 500.0)  # the settings before this tuning
BEFORE_FUSION = Fusion("rrf", 1.0, 1.0, DEPTH, 60)


@dataclass
class Split:
    """One split's queries: their relevance judgements and their two rankings."""

    qrels: list[dict[str, int]]
    dense: list[Ranking]
    owners: list[str]

    def ndcg(self, ranked: Callable[[int], np.ndarray], k: int = 10) -> np.ndarray:
        """Per-query nDCG@k of the chunk lists ``ranked(query)``, documents deduplicated."""
        out = np.empty(len(self.qrels))
        for q, relevant in enumerate(self.qrels):
            documents = list(dict.fromkeys(self.owners[i] for i in ranked(q)))
            out[q] = ndcg_at(documents, relevant, k)
        return out


def sweep_fusions(split: Split, kw: list[Ranking], n: int) -> list[tuple[Fusion, float]]:
    grid: list[Fusion] = []
    for depth in DEPTHS:
        for k, w in itertools.product((1, 5, 10, 20, 30, 60, 100), (0.5, 0.7, 1, 1.3, 1.6, 2)):
            grid.append(Fusion("rrf", 1.0, w, depth, k))
        for method, alpha in itertools.product(("convex", "dbsf"), np.arange(0.1, 0.95, 0.05)):
            a = round(float(alpha), 2)
            grid.append(Fusion(method, a, round(1 - a, 2), depth))
    scored = []
    for fusion in grid:
        per_query = split.ndcg(lambda q, f=fusion: f.fused(split.dense[q], kw[q], n))
        scored.append((fusion, float(per_query.mean())))
    return scored


def check_against_code(split: Split, kw: list[Ranking], fusion: Fusion, n: int) -> None:
    """The chosen fusion through ``agentrig.knowledge.fusion.fuse`` scores the same."""

    def hits(ranking: Ranking) -> list[Hit]:
        idx, scores = ranking[0][: fusion.depth], ranking[1][: fusion.depth]
        return [
            Hit(f"{i:06d}", 0, "", float(s), None, None, {}, "kb")
            for i, s in zip(idx, scores, strict=True)
        ]

    def code(q: int) -> np.ndarray:
        rankings = [
            (fusion.dense_weight, hits(split.dense[q])),
            (fusion.keyword_weight, hits(kw[q])),
        ]
        fused = fuse(rankings, method=fusion.method, rrf_k=fusion.rrf_k, top_k=TOP_K)  # type: ignore[arg-type]
        return np.array([int(hit.document_id) for hit in fused])

    ours = split.ndcg(lambda q: fusion.fused(split.dense[q], kw[q], n))
    if not np.allclose(split.ndcg(code), ours, atol=1e-9):
        raise AssertionError("agentrig.knowledge.fusion fuses differently from the sweep")


# -- the sweep ----------------------------------------------------------------------------


def code_defaults() -> tuple[BM25, Fusion]:
    """What the code does by default: keywords.py's constants, KnowledgeSettings' fusion."""
    settings = KnowledgeSettings()
    terms = Terms("the code's", stopwords=keywords.STOPWORDS, title=keywords.HEADING_WEIGHT)
    bm25 = BM25(terms, keywords.K1, keywords.B, keywords.DEFAULT_AVG_LEN)
    fusion = Fusion(
        settings.fusion, settings.dense_weight, settings.keyword_weight, DEPTH, settings.rrf_k
    )
    return bm25, fusion


def check_keywords(bm25: BM25, texts: Sequence[str]) -> None:
    """The sweep's BM25 for the code's defaults models ``keywords.py``'s (Qdrant's BM25,
    whose term ids are its own hashes): the same weights in a chunk, the same number of
    distinct terms in a query. The two tokenizers part on a few words (apostrophes,
    some symbols): at most 3% of the texts may differ, by a term or so (SciFact: 1.5%)."""
    differ = 0
    for text in texts:
        counts = Counter(bm25.terms.document(text))
        norm = bm25.k1 * (1 - bm25.b + bm25.b * sum(counts.values()) / bm25.avg_len)
        weights = sorted(c * (bm25.k1 + 1) / (c + norm) for c in counts.values())
        vector = keywords.document_vector(text)
        query = keywords.query_vector(text)
        same = len(vector.values) == len(weights) and np.allclose(
            sorted(vector.values), weights, rtol=1e-5
        )
        differ += not same or len(query.indices) != len(set(bm25.terms.tokenize(text)))
    if differ > 0.03 * len(texts):
        raise AssertionError(
            f"the sweep's BM25 no longer models keywords.py: {differ} of {len(texts)} differ"
        )
    print(f"the sweep's BM25 matches keywords.py on {len(texts) - differ} of {len(texts)} texts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/agentrig-tune-cache"))
    parser.add_argument("--keep", type=int, default=3, help="keyword settings to fuse")
    args = parser.parse_args()
    started = time.perf_counter()
    defaults = KnowledgeSettings()
    train, test = Dataset.load(args.dataset, "train"), Dataset.load(args.dataset, "test")
    texts, owners = chunk_texts(train, defaults)
    code_bm25, code_fusion = code_defaults()
    check_keywords(code_bm25, texts[:: max(1, len(texts) // 500)])
    queries = {**train.queries, **test.queries}
    query_ids = list(queries)
    query_texts = [queries[q] for q in query_ids]
    chunk_vectors = embed_cached(texts, args.cache, "chunks", defaults.embed_batch_size)
    query_vectors = embed_cached(query_texts, args.cache, "queries", defaults.embed_batch_size)
    row = {qid: i for i, qid in enumerate(query_ids)}
    n = len(texts)
    console.print(f"{len(train.corpus)} documents, {n} chunks, {len(queries)} queries")

    dense_all = top(query_vectors @ chunk_vectors.T, max(DEPTHS), positive=False)
    splits: dict[str, tuple[list[int], Split]] = {}
    for name, data in (("train", train), ("test", test)):
        rows = [row[q] for q in data.queries]
        qrels = [data.qrels[q] for q in data.queries]
        splits[name] = (rows, Split(qrels, [dense_all[r] for r in rows], owners))
    train_rows, train_split = splits["train"]

    # 1. the keyword half, by keyword nDCG on train
    counts = {terms: Counts(terms, texts, query_texts) for terms in TERMS}
    mean_len = round(float(counts[BEFORE].lengths.mean()))
    keyword_grid = [
        BM25(terms, k1, b, avg)
        for terms in TERMS
        for k1, b, avg in itertools.product(
            (0.6, 0.9, 1.2, 1.5, 2.0, 2.5, 3.0), (0.3, 0.5, 0.75, 1.0), (mean_len, STORE_AVG_LEN)
        )
    ]
    keyword_ndcg: dict[BM25, float] = {}
    for bm25 in keyword_grid:
        ranked = top(counts[bm25.terms].scores(bm25)[train_rows], TOP_K, positive=True)
        keyword_ndcg[bm25] = float(train_split.ndcg(lambda q, r=ranked: r[q][0]).mean())
    by_keywords = sorted(keyword_ndcg, key=lambda s: -keyword_ndcg[s])
    deployable = [s for s in by_keywords if s.avg_len == STORE_AVG_LEN]
    table = Table("keyword setting", "keywords nDCG@10", title="BM25 sweep, train")
    for bm25 in deployable[:10]:
        table.add_row(bm25.label(), f"{keyword_ndcg[bm25]:.4f}")
    for terms in TERMS:
        best = next(s for s in deployable if s.terms == terms)
        table.add_row(f"best of '{terms.name}'", f"{keyword_ndcg[best]:.4f}", style="dim")
    best_any = by_keywords[0]
    table.add_row(best_any.label() + " (any avg_len)", f"{keyword_ndcg[best_any]:.4f}", style="dim")
    table.add_row(
        BEFORE_BM25.label() + " (before)", f"{keyword_ndcg[BEFORE_BM25]:.4f}", style="bold"
    )
    console.print(table)

    # 2. the fusion, by hybrid nDCG on train, over the best keyword settings and the old one
    rankings: dict[BM25, list[Ranking]] = {}
    results: list[tuple[BM25, Fusion, float]] = []
    eligible = [s for s in deployable if s.terms.stopwords == ELIGIBLE_STOPWORDS]
    for bm25 in dict.fromkeys([*eligible[: args.keep], deployable[0], BEFORE_BM25]):
        rankings[bm25] = top(counts[bm25.terms].scores(bm25), max(DEPTHS), positive=True)
        kw_train = [rankings[bm25][r] for r in train_rows]
        results += [(bm25, f, v) for f, v in sweep_fusions(train_split, kw_train, n)]
    results.sort(key=lambda r: -r[2])
    at_depth = [r for r in results if r[1].depth == DEPTH and r[0] in eligible]
    table = Table("keywords", "fusion", "hybrid nDCG@10", title="fusion sweep, train")
    for bm25, fusion, value in at_depth[:12]:
        table.add_row(bm25.label(), fusion.label(), f"{value:.4f}")
    for method in ("rrf", "convex", "dbsf"):
        bm25, fusion, value = next(r for r in at_depth if r[1].method == method)
        table.add_row(bm25.label(), fusion.label(), f"{value:.4f}", style="dim")
    bm25, fusion, value = results[0]
    table.add_row(bm25.label(), fusion.label() + " (any setting)", f"{value:.4f}", style="dim")
    bm25, fusion, value = next(r for r in results if r[1].depth == DEPTH)
    table.add_row(bm25.label(), fusion.label() + " (any words)", f"{value:.4f}", style="dim")
    before = next(v for s, f, v in results if s == BEFORE_BM25 and f == BEFORE_FUSION)
    table.add_row(BEFORE_BM25.label(), BEFORE_FUSION.label() + " (before)", f"{before:.4f}")
    console.print(table)

    chosen_bm25, chosen, chosen_train = at_depth[0]
    table = Table("depth", *(m for m in ("rrf", "convex", "dbsf")), title="best per depth, train")
    for depth in DEPTHS:
        cells = [
            max(v for s, f, v in results if s == chosen_bm25 and f.depth == depth and f.method == m)
            for m in ("rrf", "convex", "dbsf")
        ]
        table.add_row(str(depth), *(f"{c:.4f}" for c in cells))
    console.print(table)
    table = Table("candidates per ranking", "chosen", "before", title="top_k=5 searches, train")
    for depth in (20, 100):  # what a top_k=5 search asked before, and asks now
        cells = []
        for bm25, fusion in ((chosen_bm25, chosen), (BEFORE_BM25, BEFORE_FUSION)):
            kw, f = [rankings[bm25][r] for r in train_rows], replace(fusion, depth=depth)
            fused = train_split.ndcg(
                lambda q, f=f, kw=kw: f.fused(train_split.dense[q], kw[q], n)[:5], k=5
            )
            cells.append(f"nDCG@5 {fused.mean():.4f}")
        table.add_row(str(depth), *cells)
    console.print(table)
    console.print(f"[bold]chosen on train[/]: {chosen_bm25.label()}; {chosen.label()}")
    same = code_bm25 == chosen_bm25 and code_fusion == chosen
    console.print(f"the code's defaults are the chosen setting: {'yes' if same else '[red]no[/]'}")
    kw_train = [rankings[chosen_bm25][r] for r in train_rows]
    check_against_code(train_split, kw_train, chosen, n)
    kw_before = [rankings[BEFORE_BM25][r] for r in train_rows]
    base_q = train_split.ndcg(lambda q: BEFORE_FUSION.fused(train_split.dense[q], kw_before[q], n))
    best_q = train_split.ndcg(lambda q: chosen.fused(train_split.dense[q], kw_train[q], n))
    diff = best_q - base_q
    console.print(
        f"train gain over before: {diff.mean():+.4f} "
        f"(standard error {diff.std() / math.sqrt(len(diff)):.4f}, "
        f"{int((diff > 0).sum())} queries better, {int((diff < 0).sum())} worse)"
    )

    # 3. test: scored for the chosen setting and the old one, after the choice
    table = Table("setting", "split", "keywords", "dense", "hybrid", title="after the choice")
    for label, bm25, fusion in (
        ("chosen", chosen_bm25, chosen),
        ("before", BEFORE_BM25, BEFORE_FUSION),
    ):
        for name, (rows, split) in splits.items():
            kw = [rankings[bm25][r] for r in rows]
            k = split.ndcg(lambda q, kw=kw: kw[q][0][:TOP_K]).mean()
            d = split.ndcg(lambda q, s=split: s.dense[q][0][:TOP_K]).mean()
            h = split.ndcg(lambda q, s=split, kw=kw, f=fusion: f.fused(s.dense[q], kw[q], n))
            table.add_row(label, name, f"{k:.4f}", f"{d:.4f}", f"{h.mean():.4f}")
    console.print(table)
    console.print(f"chosen: train hybrid {chosen_train:.4f}; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
