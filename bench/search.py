"""Search latency, ingest, reopen, memory and recall of the embedded vector stores, per size.

Two engines: ``edge`` (``EdgeVectorStore``, Qdrant Edge in an engine process per knowledge
base, indexed in the background) at every ``--chunks`` size, and ``local`` (the previous
default, qdrant-client's pure-Python local mode through ``QdrantVectorStore``) up to
``--local-max`` chunks, so that their ratio shows in the same run.

Data: synthetic chunks written straight through ``upsert`` (``ChunkRecord``: what the indexer
writes, keyword vectors included: the indexer computes them while it embeds); nothing is
embedded. Texts are words drawn from 50,000
pseudo-words with a Zipf distribution (rank ``r`` ~ ``1 / r``), so BM25 sees realistic term
counts and posting lists; lengths uniform around ``--chunk-words`` (450: the default
1000-token chunks, most not full); eight chunks a document, with the indexer's metadata.
Vectors are "text-like" 384-dim unit vectors (all-MiniLM-L6-v2's size): real embeddings are
clustered, and uniform Gaussian vectors are HNSW's worst case (index builds ~15x slower,
recall unlike text's), so each chunk is one of 1,000 random topic centres plus Gaussian
noise of norm 0.7, normalised; queries are drawn the same way, with 3 to 8 Zipf words.
Documents are spread over 4 tenants and every query filters on one (the store always does).

Latency: ``Retriever.search`` per mode (``hybrid``, ``dense``, ``keywords``), one query at a
time, the modes taking turns after ``--warmup`` untimed queries each, until they have spent
``--budget`` s each on average (at least 20 queries). The query embedder is a stub returning
the query's pre-generated vector: add the embedder's time to dense and hybrid (MiniLM through
the router: ~16 ms at p50 on 2 cores).

Each engine and size is built in one child process and queried in another (memory is that of
a process opening an existing store, as a server does). Also reported: the ingest rate
(chunks/s acknowledged by upsert, generation and keyword vectors excluded, as embedding is)
and the rate with the time to make the records added (their keyword vectors, one thread);
seconds from the last upsert until the background index has caught up (no build runs and
fewer chunks wait than ``idle_min``, which starts one once writes pause: ``status(kb)``
polled); reopen (the first call on a fresh store in the new process) and the first query;
memory per chunk (VmRSS of the querying process plus its engine processes after the queries,
minus the same with an empty store); the folder's allocated size; dense recall@10 against
exact search (numpy, same vectors and tenant).

``--serve-chunks N``: the latency the server's clients see while N chunks are indexed. A
child runs ``create_app`` under uvicorn on 127.0.0.1 (fresh data dir, real local embedder
for the query: the search request is the real one) and writes synthetic chunks (tenant
``default``, generated in a helper process) through the app's own store in batches of 1,000,
as the job worker does (keyword vectors in its helper process, then the upsert), then waits
for the index to catch up. A separate prober process (its
timing free of the server's GIL) sends in turn ``GET /health``, ``GET
/api/v1/documents/search?mode=hybrid`` and the same search with ``mode=keywords`` (nothing
to embed: the store's share) and ``mode=dense``, one every 20 ms: idle after the first
batch (100 requests), then until the end. Full garbage collections in the server are timed too.

Run: ``.venv/bin/python bench/search.py [--chunks 10000 --chunks 100000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from agentrig.config import KnowledgeSettings
from agentrig.knowledge.edge import EdgeVectorStore
from agentrig.knowledge.edge_collection import EngineTuning
from agentrig.knowledge.keywords import SparseVector, document_vector, document_vectors
from agentrig.knowledge.qdrant import QdrantVectorStore
from agentrig.knowledge.retrieval import MODES, Mode, Retriever
from agentrig.knowledge.vectors import ChunkRecord, Hit, VectorStore

SCRIPT = str(Path(__file__).resolve())
KB = "bench"
TENANTS = ("t0", "t1", "t2", "t3")
SERVE_TENANT = "default"  # the tenant of every request while the server has no API key
DIMENSIONS, TOPICS, NOISE = 384, 1000, 0.7
VOCABULARY, ZIPF_EXPONENT = 50_000, 1.0
CHUNKS_PER_DOCUMENT = 8
BATCH = 1000  # records generated and upserted at a time
MIN_QUERIES = 20  # a mode runs at least this many timed queries, whatever the budget
RECALL_K = 10
PROBE_INTERVAL, PROBE_IDLE = 0.02, 100  # seconds between requests; requests while idle
# what the prober asks in turn: the hybrid search ("search"), and the same search by
# keywords alone (no query to embed: the store's own share) and by meaning alone
PROBES = ("health", "search", "keywords", "dense")

console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=120)
_SYLLABLES = [c + v for c in "bcdfghjklmnprtvwz" for v in "aeiou"] + ["qua", "tho", "ste"]


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


class Corpus:
    """The synthetic data of one seed: chunks batch by batch and queries, reproducibly."""

    def __init__(self, seed: int, chunk_words: int) -> None:
        self.seed, self.chunk_words = seed, chunk_words
        rng = np.random.default_rng(seed)
        words: dict[str, None] = {}
        while len(words) < VOCABULARY:
            syllables = rng.integers(0, len(_SYLLABLES), size=int(rng.integers(2, 5)))
            words["".join(_SYLLABLES[i] for i in syllables)] = None
        self.words = list(words)
        weights = 1.0 / np.arange(1, VOCABULARY + 1) ** ZIPF_EXPONENT
        self.p = weights / weights.sum()
        self.centres = unit(rng.standard_normal((TOPICS, DIMENSIONS)))

    def vectors(self, rng: np.random.Generator, count: int) -> np.ndarray:
        topics = rng.integers(0, TOPICS, size=count)
        noise = rng.standard_normal((count, DIMENSIONS)) * (NOISE / np.sqrt(DIMENSIONS))
        return unit(self.centres[topics] + noise)

    def batch(self, first: int, count: int) -> tuple[np.ndarray, list[str]]:
        """The vectors and texts of chunks ``first`` to ``first + count``."""
        rng = np.random.default_rng([self.seed, first])
        vectors = self.vectors(rng, count)
        mean = self.chunk_words
        lengths = rng.integers(int(0.4 * mean), int(1.6 * mean) + 1, size=count).tolist()
        drawn = rng.choice(VOCABULARY, size=sum(lengths), p=self.p).tolist()
        texts, offset = [], 0
        for length in lengths:
            texts.append(" ".join([self.words[i] for i in drawn[offset : offset + length]]))
            offset += length
        return vectors, texts

    def queries(self, count: int, salt: int = 2) -> tuple[list[str], np.ndarray]:
        """``count`` distinct query texts and their vectors; query ``i`` is for tenant
        ``TENANTS[i % 4]``."""
        rng = np.random.default_rng([self.seed, salt])
        texts: dict[str, None] = {}
        while len(texts) < count:
            drawn = rng.choice(VOCABULARY, size=int(rng.integers(3, 9)), p=self.p)
            texts[" ".join(self.words[i] for i in drawn)] = None
        return list(texts), self.vectors(rng, count)


def records(
    first: int,
    vectors: np.ndarray,
    texts: list[str],
    tenant: str | None,
    keywords: list[SparseVector] | None = None,
) -> list[ChunkRecord]:
    """The chunks, with their keyword vectors (made here unless given)."""
    keywords = keywords or [document_vector(text) for text in texts]
    batch = []
    for n, (vector, text) in enumerate(zip(vectors.tolist(), texts, strict=True)):
        index = first + n
        document = index // CHUNKS_PER_DOCUMENT
        metadata = {
            "page": index % CHUNKS_PER_DOCUMENT + 1,
            "heading": f"Part {document % 7} > Section {index % 5}",
            "filename": f"doc-{document:07d}.pdf",
            "title": f"Document {document}",
        }
        owner, chunk = tenant or TENANTS[document % 4], index % CHUNKS_PER_DOCUMENT
        document_id = f"doc-{document:07d}"
        record = ChunkRecord(
            owner, document_id, chunk, text, vector, metadata, keywords=keywords[n]
        )
        batch.append(record)
    return batch


class StubEmbedder:
    """The query embedder: each query's pre-generated vector, at once."""

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        self.vectors = dict(zip(texts, vectors.tolist(), strict=True))

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[text] for text in texts]


def open_store(spec: dict[str, Any], path: Path) -> VectorStore:
    if spec["engine"] == "edge":
        tuning = {k: spec[k] for k in ("optimize_after", "full_scan_kb") if spec.get(k)}
        return EdgeVectorStore(path, tuning=EngineTuning(**tuning))
    from qdrant_client import AsyncQdrantClient

    return QdrantVectorStore(client=AsyncQdrantClient(path=str(path)))


def vm(pid: int | str = "self", key: str = "VmRSS") -> float:
    """A /proc/<pid>/status figure in MB (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def total_rss(store: VectorStore) -> float:
    """RSS of this process plus that of the store's engine processes, in MB."""
    folder = getattr(store, "_folder", None)  # edge: the serving engines and the builders
    collections = list(folder.collections.values()) if folder is not None else []
    engines = [c.engine for c in collections] + [c._build.engine for c in collections if c._build]
    return vm() + sum(vm(engine.pid) for engine in engines if engine is not None)


async def wait_indexed(store: VectorStore) -> dict[str, Any] | None:
    """Wait until the background index has caught up, then the status: no build runs (the
    last one's engine serves, or it failed) and fewer chunks wait than ``idle_min`` (more
    start a build once writes pause for ``idle_seconds``)."""
    if not isinstance(store, EdgeVectorStore) or store._folder is None:
        return None
    collection, last = store._folder.collections[f"agentrig_{KB}"], None
    while True:
        if collection._build is not None:
            last = collection._build
        else:
            failed = last is not None and last.engine._failure is not None
            serving = last is None or collection.engine is last.engine
            if failed or (serving and collection.pending < store.tuning.idle_min):
                return await store.status(KB)
        await asyncio.sleep(0.05)


async def build(spec: dict[str, Any]) -> dict[str, Any]:
    size, path = spec["size"], Path(spec["path"])
    corpus = Corpus(spec["seed"], spec["chunk_words"])
    _, queries = corpus.queries(spec["warmup"] + spec["queries"])
    wanted = np.arange(len(queries)) % len(TENANTS)
    best = np.full((len(queries), RECALL_K), -np.inf, dtype=np.float32)
    best_ids = np.full((len(queries), RECALL_K), -1, dtype=np.int64)
    store, upserting, step = open_store(spec, path), 0.0, max(size // 10, BATCH)
    keywording = 0.0
    for first in range(0, size, BATCH):
        vectors, texts = corpus.batch(first, min(BATCH, size - first))
        mark = time.perf_counter()
        batch = records(first, vectors, texts, None)
        keywording += time.perf_counter() - mark
        ids = np.arange(first, first + len(batch))
        scores = queries @ vectors.T  # exact search, for recall, in the same tenants
        scores[wanted[:, None] != (ids // CHUNKS_PER_DOCUMENT % len(TENANTS))[None, :]] = -np.inf
        scores = np.hstack([best, scores])
        candidates = np.hstack([best_ids, np.broadcast_to(ids, (len(queries), len(ids)))])
        top = np.argpartition(-scores, RECALL_K - 1, axis=1)[:, :RECALL_K]
        best = np.take_along_axis(scores, top, 1)
        best_ids = np.take_along_axis(candidates, top, 1)
        mark = time.perf_counter()
        await store.upsert(KB, batch)
        upserting += time.perf_counter() - mark
        if (done := first + len(batch)) % step < BATCH or done == size:
            console.print(f"  {spec['engine']} {size:,}: {done:,} in, {done / upserting:.0f}/s")
    acknowledged = time.perf_counter()
    status = await wait_indexed(store)
    index_wait = time.perf_counter() - acknowledged
    if (count := await store.count(KB)) != size:
        raise RuntimeError(f"{count} chunks in the store, {size} upserted")
    await store.aclose()
    np.save(path.parent / f"{path.name}.truth.npy", best_ids)
    return {
        "upsert_seconds": upserting,
        "keyword_seconds": keywording,
        "index_wait_seconds": index_wait,
        "status": status,
    }


def percentiles(values: list[float]) -> dict[str, float]:
    ordered, n = sorted(values), len(values)
    at = {f"p{share}_ms": 1000 * ordered[min(n - 1, share * n // 100)] for share in (50, 95, 99)}
    return {**at, "max_ms": 1000 * ordered[-1], "mean_ms": 1000 * sum(values) / n}


async def empty_rss(spec: dict[str, Any], vector: np.ndarray) -> float:
    """RSS of this process and its engine with an empty store: the engine imported and
    started (on a knowledge base whose one chunk is deleted)."""
    with tempfile.TemporaryDirectory() as empty:
        store = open_store(spec, Path(empty) / "store")
        if spec["engine"] == "edge":
            [one] = records(0, vector[None, :], ["empty"], TENANTS[0])
            await store.upsert(KB, [one])
            await store.delete_document(KB, TENANTS[0], one.document_id)
        await store.count(KB)
        gc.collect()
        baseline = total_rss(store)
        await store.aclose()
    return baseline


async def query(spec: dict[str, Any]) -> dict[str, Any]:
    size, path, warmup = spec["size"], Path(spec["path"]), spec["warmup"]
    texts, vectors = Corpus(spec["seed"], spec["chunk_words"]).queries(warmup + spec["queries"])
    baseline = await empty_rss(spec, vectors[0])
    started = time.perf_counter()
    store = open_store(spec, path)
    if (count := await store.count(KB)) != size:  # starts the engine and loads the shard
        raise RuntimeError(f"{count} chunks in the store, expected {size}")
    reopen, loaded = time.perf_counter() - started, total_rss(store)
    stub, settings = StubEmbedder(texts, vectors), KnowledgeSettings(top_k=spec["top_k"])
    retriever = Retriever(store, stub, settings)

    async def search(i: int, mode: Mode, top_k: int | None = None) -> tuple[float, list[Hit]]:
        mark, tenant = time.perf_counter(), TENANTS[i % 4]
        found = await retriever.search(texts[i], tenant=tenant, kb=KB, top_k=top_k, mode=mode)
        return time.perf_counter() - mark, found

    first_query, _ = await search(0, "hybrid")
    for mode in MODES:  # all warmed before any is timed: the first queries run cold
        for i in range(warmup):
            await search(i, mode)
    latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
    empty, started = dict.fromkeys(MODES, 0), time.perf_counter()
    for i in range(warmup, len(texts)):  # the modes take turns: a drifting load hits all alike
        for mode in MODES:
            seconds, hits = await search(i, mode)
            latencies[mode].append(seconds)
            empty[mode] += not hits
        spent = time.perf_counter() - started
        if i + 1 - warmup >= MIN_QUERIES and spent > spec["budget"] * len(MODES):
            break
    modes = {
        m: {"queries": len(v), "empty": empty[m], **percentiles(v)} for m, v in latencies.items()
    }
    for mode, m in modes.items():
        console.print(f"  {spec['engine']} {size:,} {mode}: p50 {m['p50_ms']:.1f} ms")
    after = total_rss(store)
    truth, recalls = np.load(path.parent / f"{path.name}.truth.npy"), []
    for i in range(warmup, warmup + modes["dense"]["queries"]):
        _, hits = await search(i, "dense", RECALL_K)
        found = {int(h.document_id[4:]) * CHUNKS_PER_DOCUMENT + h.chunk_index for h in hits}
        recalls.append(len(found & set(truth[i].tolist())) / RECALL_K)
    await store.aclose()
    return {
        "reopen_seconds": reopen,
        "first_query_ms": 1000 * first_query,
        "rss_baseline_mb": baseline,
        "rss_loaded_mb": loaded,
        "rss_after_queries_mb": after,
        "peak_mb": vm(key="VmHWM"),
        "kb_per_chunk": 1024 * (after - baseline) / size,
        "recall_at_10": sum(recalls) / len(recalls),
        "modes": modes,
    }


_corpus: Corpus | None = None


def serve_batch(seed: int, chunk_words: int, first: int, count: int) -> tuple[Any, list[str]]:
    """One batch of the serving run, made in a helper process (not the server's GIL)."""
    global _corpus
    if _corpus is None:
        _corpus = Corpus(seed, chunk_words)
    return _corpus.batch(first, count)


async def serve(spec: dict[str, Any]) -> dict[str, Any]:
    import uvicorn

    from agentrig.config import load_settings
    from agentrig.server.app import create_app

    knowledge = {"optimize_after": spec["optimize_after"]} if spec["optimize_after"] else {}
    settings = load_settings(data_dir=Path(spec["path"]), knowledge=knowledge)
    app = create_app(settings)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # NODELAY
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    store = app.state.server.knowledge.vectors
    size, loop, upserting = spec["size"], asyncio.get_running_loop(), 0.0
    step = max(size // 10, BATCH)
    pauses: list[float] = []  # the server's full garbage collections while ingesting, in ms
    collecting = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[0] = time.perf_counter()
        elif info["generation"] == 2:
            pauses.append(1000 * (time.perf_counter() - collecting[0]))

    gc.callbacks.append(watch)
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    made = (spec["seed"], spec["chunk_words"])
    ahead = loop.run_in_executor(pool, serve_batch, *made, 0, min(BATCH, size))
    prober, started = None, time.perf_counter()
    for first in range(0, size, BATCH):
        vectors, texts = await ahead
        if first + BATCH < size:
            count = min(BATCH, size - first - BATCH)
            ahead = loop.run_in_executor(pool, serve_batch, *made, first + BATCH, count)
        mark = time.perf_counter()  # as the indexer: keyword vectors, then upsert
        keyword_vectors = await document_vectors(texts)
        # in a thread: the indexer makes a document's records, tens, not 1,000 at once
        made_records = (first, vectors, texts, SERVE_TENANT, keyword_vectors)
        batch = await asyncio.to_thread(records, *made_records)
        await store.upsert(KB, batch)
        upserting += time.perf_counter() - mark
        if (done := first + len(texts)) % step < BATCH or done == size:
            console.print(f"  serve: {done:,} upserted, {done / upserting:.0f}/s")
        if prober is None:  # idle, the prober searches the first batch; then ingestion goes on
            pause = time.perf_counter()
            prober = await asyncio.create_subprocess_exec(
                *(sys.executable, SCRIPT, "--child", "probe", "--spec"),
                json.dumps({**spec, "port": port}),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert prober.stdin is not None and prober.stdout is not None
            if (await prober.stdout.readline()).strip() != b"ready":
                raise RuntimeError("the prober did not start")
            started += time.perf_counter() - pause
            pauses.clear()
    ingest = time.perf_counter() - started
    status = await wait_indexed(store)
    index_wait = time.perf_counter() - started - ingest
    if (count := await store.count(KB)) != size:
        raise RuntimeError(f"{count} chunks in the store, {size} upserted")
    assert prober is not None and prober.stdin is not None and prober.stdout is not None
    prober.stdin.write(b"stop\n")
    await prober.stdin.drain()
    probed = json.loads((await prober.stdout.read()).decode().strip().splitlines()[-1])
    await prober.wait()
    pool.shutdown()  # after the prober: it joins the helper, blocking the event loop
    gc.callbacks.remove(watch)
    server.should_exit = True
    await serving
    return {
        "chunks": size,
        "embedder": settings.llm.roles["embed"][0],
        "ingest_seconds": ingest,
        "upsert_seconds": upserting,
        "index_wait_seconds": index_wait,
        "status": status,
        "gc_pauses_ms": pauses,
        "gc_tracked_objects": len(gc.get_objects()),
        "probe": probed,
    }


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Alternate /health and a hybrid search every ``PROBE_INTERVAL``: idle, then until the
    serving child writes a line."""
    import httpx

    corpus = Corpus(spec["seed"], spec["chunk_words"])
    texts, _ = corpus.queries(500, salt=5)
    stopped = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stopped.set()), daemon=True).start()
    search = "/api/v1/documents/search"
    phases: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{spec['port']}", timeout=120) as client:
        for text in texts[:3]:  # the first search loads the embedding model
            client.get(search, params={"q": text, "kb": KB, "mode": "hybrid"}).raise_for_status()
        for phase in ("idle", "ingesting"):
            latencies: dict[str, list[float]] = {name: [] for name in PROBES}
            errors = dict.fromkeys(PROBES, 0)
            turn, next_at = 0, time.perf_counter()
            while turn < PROBE_IDLE if phase == "idle" else not stopped.is_set():
                name = PROBES[turn % len(PROBES)]
                mode = "hybrid" if name == "search" else name
                query = {"q": texts[turn // len(PROBES) % len(texts)], "kb": KB, "mode": mode}
                params = query if name != "health" else None
                mark = time.perf_counter()
                answer = client.get("/health" if name == "health" else search, params=params)
                latencies[name].append(time.perf_counter() - mark)
                errors[name] += answer.status_code != 200
                turn += 1
                next_at = max(next_at + PROBE_INTERVAL, time.perf_counter())
                time.sleep(max(0.0, next_at - time.perf_counter()))
            phases[phase] = {
                name: {"requests": len(v), "errors": errors[name], **percentiles(v)}
                for name, v in latencies.items()
            }
            print("ready", flush=True)  # after the idle phase; ignored after the last
    return phases


def child(phase: str, spec: dict[str, Any], **options: Any) -> dict[str, Any]:
    """Run one phase in a fresh process; its JSON result."""
    command = [sys.executable, SCRIPT, "--child", phase, "--spec", json.dumps(spec)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, **options)
    return json.loads(done.stdout.strip().splitlines()[-1])


def disk_mb(path: Path) -> dict[str, float]:
    """The folder's allocated size (as du: Qdrant preallocates sparse files) and apparent."""
    files = [file.stat() for file in path.rglob("*") if file.is_file()]
    allocated, apparent = sum(f.st_blocks * 512 for f in files), sum(f.st_size for f in files)
    return {"disk_mb": allocated / 2**20, "apparent_mb": apparent / 2**20}


def table(title: str, columns: str, left: int, rows: list[str]) -> Table:
    """A table of ``|``-separated rows; the first ``left`` columns are left-aligned."""
    out = Table(title=title)
    for n, column in enumerate(columns.split("|")):
        out.add_column(column, justify="left" if n < left else "right")
    for row in rows:
        out.add_row(*row.split("|"))
    return out


def report(results: list[dict[str, Any]], served: dict[str, Any] | None, top_k: int) -> None:
    out = Console() if sys.stdout.isatty() else Console(width=150)
    rows = [
        f"{r['engine']}|{r['size']:,}|{mode}|{m['queries']}|{m['p50_ms']:.1f}|{m['p95_ms']:.1f}|"
        f"{m['p99_ms']:.1f}|{m['mean_ms']:.1f}|{m['empty']}"
        for r in results
        for mode, m in r["modes"].items()
    ]
    title = f"Retriever.search, top_k {top_k}, one query at a time, stub query embedder"
    out.print(
        table(title, "engine|chunks|mode|queries|p50 ms|p95 ms|p99 ms|mean ms|empty", 3, rows)
    )
    rows = []
    for r in results:
        s = r["status"] or {"generation": "-", "unindexed": "-"}
        wait = f"{r['index_wait_seconds']:.1f}" if r["status"] else "-"
        rows.append(
            f"{r['engine']}|{r['size']:,}|{r['size'] / r['upsert_seconds']:.0f}|"
            f"{r['size'] / (r['upsert_seconds'] + r['keyword_seconds']):.0f}|{wait}|"
            f"{s['generation']}|{s['unindexed']}|{r['reopen_seconds']:.2f}|"
            f"{r['first_query_ms']:.1f}|{r['rss_baseline_mb']:.0f}|{r['rss_after_queries_mb']:.0f}|"
            f"{r['kb_per_chunk']:.2f}|{r['disk_mb']:.0f}|{r['recall_at_10']:.3f}"
        )
    columns = "engine|chunks|ingest/s|+keywords/s|index wait s|generation|unindexed|reopen s|"
    columns += "1st query ms|"
    columns += "RSS empty MB|RSS MB|kB/chunk|disk MB|recall@10"
    title = "ingest, index builds, reopen, RSS (querying process + engines), disk, dense recall"
    out.print(table(title, columns, 1, rows))
    by = {(r["engine"], r["size"]): r["modes"] for r in results}
    rows = [
        f"{size:,}|{mode}|{m['p50_ms']:.1f}|{by['edge', size][mode]['p50_ms']:.1f}|"
        f"{m['p50_ms'] / by['edge', size][mode]['p50_ms']:.1f}x"
        for (engine, size), modes in by.items()
        if engine == "local" and ("edge", size) in by
        for mode, m in modes.items()
    ]
    if rows:
        columns = "chunks|mode|local p50 ms|edge p50 ms|local / edge"
        out.print(table("local p50 / edge p50", columns, 2, rows))
    if served is None:
        return
    rows = [
        f"{phase}|{name}|{e['requests']}|{e['errors']}|{e['p50_ms']:.1f}|{e['p95_ms']:.1f}|"
        f"{e['p99_ms']:.1f}|{e['max_ms']:.1f}"
        for phase, endpoints in served["probe"].items()
        for name, e in endpoints.items()
    ]
    title = f"the server's clients, idle then while {served['chunks']:,} chunks are indexed"
    out.print(table(title, "phase|endpoint|requests|errors|p50 ms|p95 ms|p99 ms|max ms", 2, rows))
    s = served["status"] or {"generation": "-", "unindexed": "-"}
    pauses = served["gc_pauses_ms"]
    out.print(
        f"serve: {served['chunks']:,} chunks ingested in {served['ingest_seconds']:.1f} s "
        f"({served['chunks'] / served['upsert_seconds']:.0f}/s acknowledged), index builds done "
        f"{served['index_wait_seconds']:.1f} s later (generation {s['generation']}, "
        f"{s['unindexed']} unindexed); the search embeds its query with {served['embedder']}; "
        f"{len(pauses)} full GCs in the server meanwhile (max {max(pauses, default=0):.0f} ms, "
        f"{served['gc_tracked_objects']:,} objects tracked)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, action="append", help="a size (repeatable)")
    parser.add_argument("--local-max", type=int, default=10_000, help="largest size for local")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per mode")
    parser.add_argument("--warmup", type=int, default=10, help="untimed queries per mode")
    parser.add_argument("--budget", type=float, default=240, help="seconds per mode, then stop")
    parser.add_argument("--top-k", type=int, default=KnowledgeSettings().top_k)
    parser.add_argument("--chunk-words", type=int, default=450, help="mean words a chunk")
    parser.add_argument("--serve-chunks", type=int, default=100_000, help="0: no serving run")
    parser.add_argument("--optimize-after", type=int, help="edge: chunks before an index build")
    parser.add_argument("--full-scan-kb", type=int, help="edge: exact search below this size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="where the stores go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", choices=("build", "query", "serve", "probe"), help="internal")
    parser.add_argument("--spec", type=json.loads, help="internal: a child's work")
    args = parser.parse_args()
    if args.child is not None:
        work = {"build": build, "query": query, "serve": serve}.get(args.child)
        result = asyncio.run(work(args.spec)) if work else probe(args.spec)
        print(json.dumps(result), flush=True)
        return

    names = "seed chunk_words queries warmup budget top_k optimize_after full_scan_kb"
    common = {name: getattr(args, name) for name in names.split()}
    results, served = [], None
    with tempfile.TemporaryDirectory(prefix="agentrig-bench-search-", dir=args.workdir) as root:
        for size in args.chunks or [10_000, 100_000]:
            for engine in ("edge", "local") if size <= args.local_max else ("edge",):
                path = Path(root) / f"{engine}-{size}"
                spec = {**common, "engine": engine, "size": size, "path": str(path)}
                console.print(f"{engine} {size:,} chunks: building…")
                built = child("build", spec)
                console.print(f"{engine} {size:,} chunks: querying…")
                queried = child("query", spec)
                results.append({**spec, **built, **queried, **disk_mb(path)})
                shutil.rmtree(path)
        if args.serve_chunks:
            console.print(f"serving while {args.serve_chunks:,} chunks are indexed…")
            data = Path(root) / "serve"
            data.mkdir()
            env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTRIG_")}
            env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            spec = {**common, "size": args.serve_chunks, "path": str(data / "data")}
            served = child("serve", spec, cwd=data, env=env)  # no ./agentrig.toml there
    report(results, served, args.top_k)
    if args.json is not None:
        args.json.write_text(json.dumps({"stores": results, "serve": served}, indent=2))


if __name__ == "__main__":
    main()
