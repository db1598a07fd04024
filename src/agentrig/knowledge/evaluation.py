"""Retrieval quality on a BEIR-format dataset: nDCG@10, recall@10 and query latency.

A BEIR directory holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (query id, corpus id, relevance; splits
such as ``train`` and ``test``: tune on one, report the other). The corpus
goes through the real ingestion path (each entry a Markdown document: the title as its
heading, then the text), the queries through the real retrieval path, once per mode; a
document's rank is that of its best chunk. The metrics are the usual ones (as in BEIR
and pytrec_eval): graded nDCG with log2 discounts, and recall of the relevant documents.
Each search is timed, embedding the query included: p50 and p95 per mode.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agentrig.knowledge.retrieval import MODES, Mode

if TYPE_CHECKING:  # the store is not needed to load a dataset or compute a metric
    from agentrig.knowledge.service import Knowledge

TENANT = "eval"


@dataclass(frozen=True)
class Dataset:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {corpus id: relevance}

    @classmethod
    def load(cls, folder: Path, split: str = "test") -> Dataset:
        """The corpus, and the queries judged in ``qrels/<split>.tsv`` with their qrels."""
        if not split or not split.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"split {split!r}: expected a name such as 'test' or 'train'")

        def rows(name: str) -> list[dict]:
            path = folder / name
            if not path.exists():
                raise FileNotFoundError(f"{path}: missing (a BEIR dataset has {name})")
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

        corpus = {
            str(r["_id"]): (r.get("title") or "", r.get("text") or "") for r in rows("corpus.jsonl")
        }
        queries = {str(r["_id"]): r["text"] for r in rows("queries.jsonl")}
        qrels: dict[str, dict[str, int]] = {}
        qrels_path = folder / "qrels" / f"{split}.tsv"
        if not qrels_path.exists():
            found = sorted(path.stem for path in (folder / "qrels").glob("*.tsv"))
            raise FileNotFoundError(f"{qrels_path}: missing (splits here: {found or 'none'})")
        for line in qrels_path.read_text().splitlines()[1:]:
            query_id, corpus_id, score = line.split("\t")[:3]
            if int(score) > 0:
                qrels.setdefault(query_id, {})[corpus_id] = int(score)
        queries = {qid: text for qid, text in queries.items() if qid in qrels}
        return cls(corpus, queries, qrels)


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    gains = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    best = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    return gains / best if best else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; 0.0 if empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Scores:
    mode: str
    ndcg_at_10: float
    recall_at_10: float
    queries: int
    seconds: float
    p50_ms: float = 0.0  # one search, embedding the query included
    p95_ms: float = 0.0


async def ingest_corpus(
    knowledge: Knowledge,
    dataset: Dataset,
    kb: str,
    *,
    concurrency: int = 16,
    progress: Callable[[int], None] | None = None,
) -> dict[str, str]:
    """Add and index every corpus entry; returns agentrig document id -> corpus id."""
    gate = asyncio.Semaphore(concurrency)
    mapping: dict[str, str] = {}

    async def one(corpus_id: str, title: str, text: str) -> None:
        async with gate:
            body = f"# {title}\n\n{text}\n" if title else f"{text}\n"
            document = await knowledge.add_document(
                TENANT, body.encode(), f"{corpus_id}.md", kb=kb, metadata={"corpus_id": corpus_id}
            )
            mapping[document.id] = corpus_id
            report = await knowledge.index(TENANT, document.id)
            if report.status != "indexed":
                raise RuntimeError(f"corpus entry {corpus_id!r} failed: {report.reason}")
            if progress is not None:
                progress(1)

    await asyncio.gather(*(one(cid, title, text) for cid, (title, text) in dataset.corpus.items()))
    return mapping


async def evaluate(
    knowledge: Knowledge,
    dataset: Dataset,
    kb: str,
    documents: Mapping[str, str],
    *,
    modes: Sequence[Mode] = MODES,
    depth: int = 10,
) -> list[Scores]:
    """Query every question in each mode and score the first ``depth`` documents."""
    results = []
    for mode in modes:
        started = time.perf_counter()
        ndcg = recall = 0.0
        latencies: list[float] = []
        for query_id, text in dataset.queries.items():
            began = time.perf_counter()
            hits = await knowledge.retriever.search(
                text, tenant=TENANT, kb=kb, top_k=depth * 3, mode=mode
            )
            latencies.append((time.perf_counter() - began) * 1000)
            ranked: list[str] = []
            for hit in hits:  # a document ranks by its best chunk
                corpus_id = documents.get(hit.document_id)
                if corpus_id is not None and corpus_id not in ranked:
                    ranked.append(corpus_id)
            relevant = dataset.qrels[query_id]
            ndcg += ndcg_at(ranked, relevant, depth)
            recall += recall_at(ranked, relevant, depth)
        count = len(dataset.queries)
        seconds = time.perf_counter() - started
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        results.append(Scores(mode, ndcg / count, recall / count, count, seconds, p50, p95))
    return results
