"""Search latency and memory of embedded Qdrant at 10,000 and 100,000 chunks, per mode.

For each size, a fresh embedded Qdrant folder is filled with synthetic chunks, written
straight through ``QdrantVectorStore.upsert`` (``ChunkRecord``: what the indexer writes,
keyword vectors included) and nothing is embedded: each chunk gets a random 384-dim unit
vector (all-MiniLM-L6-v2's size) and a text of words drawn from a fixed vocabulary of
pseudo-words with a Zipf distribution (rank ``r`` has probability ~ ``1 / r``), so that BM25
sees realistic term counts and posting lists: a few terms in nearly every chunk, most in
few. Chunk lengths are uniform around ``--chunk-words`` (default 450 words: the default
1000-token chunks, most not full); eight chunks a document, with the metadata the indexer
writes (page, heading, filename, title).

Queries go through ``Retriever.search`` in each mode (``dense``, ``keywords``,
``hybrid``), one at a time, after ``--warmup`` queries: 3 to 8 words drawn from the same
distribution. The query embedder is a stub that returns random unit vectors, so the
figures are the store's (and the retriever's) latency, not the model's: add the
embedder's time per query to dense and hybrid (all-MiniLM-L6-v2 through the router: about
16 ms at p50 for a short query on the 2-core machine these figures were first taken on).
Embedded Qdrant searches by brute force in Python, so a mode stops early once it has
spent ``--budget`` seconds (at least 20 queries); the table says how many ran.

Each size is built in one child process and queried in another, so that the memory
figures are those of a process that opens an existing folder, as a server does: RSS
(VmRSS from /proc/self/status) before the store is opened (embedded Qdrant already
imported and set up on an empty folder), after it has loaded its points,
after the queries, and the peak (VmHWM). The upsert time (generation excluded), the load
time and the folder's size on disk are reported too.

Run: ``.venv/bin/python bench/search.py [--sizes 10000,100000] [--queries 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from agentrig.config import KnowledgeSettings
from agentrig.knowledge.retrieval import MODES, Retriever
from agentrig.knowledge.vectors import ChunkRecord, QdrantVectorStore

KB = "bench"
TENANT = "bench"
DIMENSIONS = 384
VOCABULARY = 50_000
ZIPF_EXPONENT = 1.0
CHUNKS_PER_DOCUMENT = 8
BATCH = 1000  # records generated and upserted at a time
MIN_QUERIES = 20  # a mode runs at least this many timed queries, whatever the budget

console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=120)

_SYLLABLES = [c + v for c in "bcdfghjklmnprtvwz" for v in "aeiou"] + ["qua", "tho", "ste"]


def vocabulary(seed: int) -> list[str]:
    """``VOCABULARY`` distinct pseudo-words of 2 to 4 syllables, the same for a seed."""
    rng = np.random.default_rng(seed)
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        syllables = rng.integers(0, len(_SYLLABLES), size=int(rng.integers(2, 5)))
        words["".join(_SYLLABLES[i] for i in syllables)] = None
    return list(words)


def zipf(size: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1) ** ZIPF_EXPONENT
    return weights / weights.sum()


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class RandomEmbedder:
    """A stand-in for the query embedder: a random unit vector per text, at once."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return unit_vectors(self.rng, len(texts)).tolist()


def memory() -> dict[str, float]:
    """VmRSS and VmHWM (peak) of this process in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def records(
    rng: np.random.Generator, words: list[str], p: np.ndarray, first: int, count: int, mean: int
) -> list[ChunkRecord]:
    lengths = rng.integers(int(0.4 * mean), int(1.6 * mean) + 1, size=count)
    drawn = rng.choice(len(words), size=int(lengths.sum()), p=p).tolist()
    vectors = unit_vectors(rng, count).tolist()
    batch, offset = [], 0
    for n, (length, vector) in enumerate(zip(lengths.tolist(), vectors, strict=True)):
        index = first + n
        document = index // CHUNKS_PER_DOCUMENT
        text = " ".join([words[i] for i in drawn[offset : offset + length]])
        offset += length
        batch.append(
            ChunkRecord(
                tenant=TENANT,
                document_id=f"doc-{document:07d}",
                chunk_index=index % CHUNKS_PER_DOCUMENT,
                text=text,
                vector=vector,
                metadata={
                    "page": index % CHUNKS_PER_DOCUMENT + 1,
                    "heading": f"Part {document % 7} > Section {index % 5}",
                    "filename": f"doc-{document:07d}.pdf",
                    "title": f"Document {document}",
                },
            )
        )
    return batch


async def build(path: Path, size: int, seed: int, chunk_words: int) -> dict[str, Any]:
    words, p = vocabulary(seed), zipf(VOCABULARY)
    rng = np.random.default_rng(seed + 1)
    store = QdrantVectorStore(path)
    generating = upserting = 0.0
    step = max(size // 10, BATCH)
    started = time.perf_counter()
    for first in range(0, size, BATCH):
        mark = time.perf_counter()
        batch = records(rng, words, p, first, min(BATCH, size - first), chunk_words)
        generating += time.perf_counter() - mark
        mark = time.perf_counter()
        await store.upsert(KB, batch)
        upserting += time.perf_counter() - mark
        done = first + len(batch)
        if done % step < BATCH or done == size:
            elapsed = time.perf_counter() - started
            console.print(
                f"  {size:,}: {done:,} chunks upserted in {upserting:.0f} s "
                f"({done / upserting:.0f}/s), {elapsed:.0f} s with generation"
            )
    count = await store.count(KB, TENANT)
    await store.aclose()
    if count != size:
        raise RuntimeError(f"{count} chunks in the store, {size} upserted")
    return {"generate_seconds": generating, "upsert_seconds": upserting}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def query(
    path: Path, size: int, seed: int, queries: int, warmup: int, budget: float, top_k: int
) -> dict[str, Any]:
    words, p = vocabulary(seed), zipf(VOCABULARY)
    rng = np.random.default_rng(seed + 2)
    texts = [
        " ".join(words[i] for i in rng.choice(len(words), size=int(rng.integers(3, 9)), p=p))
        for _ in range(queries + warmup)
    ]
    with tempfile.TemporaryDirectory() as empty:  # import and set up embedded Qdrant first
        warm = QdrantVectorStore(empty)
        await warm.count(KB)
        await warm.aclose()
    gc.collect()
    before = memory()
    store = QdrantVectorStore(path)
    started = time.perf_counter()
    count = await store.count(KB)  # the first call opens the folder and loads every point
    load_seconds = time.perf_counter() - started
    if count != size:
        raise RuntimeError(f"{count} chunks in the store, expected {size}")
    gc.collect()
    loaded = memory()
    retriever = Retriever(store, RandomEmbedder(seed + 3), KnowledgeSettings(top_k=top_k))
    modes = {}
    for mode in MODES:
        for text in texts[:warmup]:
            await retriever.search(text, tenant=TENANT, kb=KB, mode=mode)
        latencies, empty = [], 0
        started = time.perf_counter()
        for text in texts[warmup:]:
            mark = time.perf_counter()
            hits = await retriever.search(text, tenant=TENANT, kb=KB, mode=mode)
            latencies.append(time.perf_counter() - mark)
            empty += not hits
            if len(latencies) >= MIN_QUERIES and time.perf_counter() - started > budget:
                break
        seconds = time.perf_counter() - started
        modes[mode] = {
            "queries": len(latencies),
            "empty": empty,
            "p50_ms": 1000 * percentile(latencies, 0.5),
            "p99_ms": 1000 * percentile(latencies, 0.99),
            "mean_ms": 1000 * sum(latencies) / len(latencies),
            "queries_per_second": len(latencies) / seconds,
        }
        console.print(
            f"  {size:,} {mode}: {len(latencies)} queries, p50 {modes[mode]['p50_ms']:.1f} ms, "
            f"p99 {modes[mode]['p99_ms']:.1f} ms"
        )
    after = memory()
    await store.aclose()
    return {
        "load_seconds": load_seconds,
        "rss_before_mb": before["VmRSS"],
        "rss_loaded_mb": loaded["VmRSS"],
        "rss_after_queries_mb": after["VmRSS"],
        "peak_mb": after["VmHWM"],
        "modes": modes,
    }


def child(args: argparse.Namespace, phase: str) -> dict[str, Any]:
    """Run one phase of one size in a fresh process; its JSON result."""
    command = [sys.executable, __file__, "--child", phase, "--path", str(args.path)]
    command += ["--size", str(args.size), "--seed", str(args.seed)]
    command += ["--chunk-words", str(args.chunk_words), "--queries", str(args.queries)]
    command += ["--warmup", str(args.warmup), "--budget", str(args.budget)]
    command += ["--top-k", str(args.top_k)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def folder_mb(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 2**20


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    out = Console() if sys.stdout.isatty() else Console(width=120)
    latency = Table(
        title=(
            f"Retriever.search on embedded Qdrant, top_k {args.top_k}, one query at a time, "
            f"stub query embedder"
        )
    )
    for column in ("chunks", "mode", "queries", "p50 ms", "p99 ms", "mean ms", "queries/s"):
        latency.add_column(column, justify="left" if column == "mode" else "right")
    for result in results:
        for mode, row in result["modes"].items():
            latency.add_row(
                f"{result['size']:,}",
                mode,
                str(row["queries"]),
                f"{row['p50_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
                f"{row['mean_ms']:.1f}",
                f"{row['queries_per_second']:.2f}",
            )
    out.print(latency)
    memory_table = Table(title="loading and memory (RSS of the querying process)")
    columns = (
        "chunks",
        "upsert s",
        "upserted/s",
        "load s",
        "RSS before MB",
        "RSS loaded MB",
        "RSS after queries MB",
        "peak MB",
        "on disk MB",
    )
    for column in columns:
        memory_table.add_column(column, justify="right")
    for result in results:
        memory_table.add_row(
            f"{result['size']:,}",
            f"{result['upsert_seconds']:.0f}",
            f"{result['size'] / result['upsert_seconds']:.0f}",
            f"{result['load_seconds']:.1f}",
            f"{result['rss_before_mb']:.0f}",
            f"{result['rss_loaded_mb']:.0f}",
            f"{result['rss_after_queries_mb']:.0f}",
            f"{result['peak_mb']:.0f}",
            f"{result['disk_mb']:.0f}",
        )
    out.print(memory_table)
    for result in results:
        grown = result["rss_loaded_mb"] - result["rss_before_mb"]
        out.print(
            f"{result['size']:,} chunks: loading grew RSS by {grown:.0f} MB, "
            f"{1024 * grown / result['size']:.1f} kB a chunk"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per mode")
    parser.add_argument("--warmup", type=int, default=5, help="untimed queries per mode first")
    parser.add_argument(
        "--budget", type=float, default=240, help="seconds per mode and size, then stop early"
    )
    parser.add_argument("--top-k", type=int, default=KnowledgeSettings().top_k)
    parser.add_argument("--chunk-words", type=int, default=450, help="mean words a chunk")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", choices=("build", "query"), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "build":
        result = asyncio.run(build(args.path, args.size, args.seed, args.chunk_words))
        print(json.dumps(result))
        return
    if args.child == "query":
        result = asyncio.run(
            query(
                args.path, args.size, args.seed, args.queries, args.warmup, args.budget, args.top_k
            )
        )
        print(json.dumps(result))
        return

    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="agentrig-bench-search-") as folder:
        for size in sizes:
            args.size, args.path = size, Path(folder) / str(size)
            console.print(f"{size:,} chunks: building…")
            built = child(args, "build")
            console.print(f"{size:,} chunks: querying…")
            queried = child(args, "query")
            results.append({"size": size, **built, **queried, "disk_mb": folder_mb(args.path)})
    report(results, args)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
