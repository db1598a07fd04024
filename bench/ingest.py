"""Ingestion throughput: the whole pipeline against the embedding model alone, on SciFact.

The BEIR SciFact corpus (5,183 abstracts; ``--limit N`` takes the first N) goes through
the real pipeline in a temporary data directory, as ``agentrig eval retrieval`` sends it:
each abstract a Markdown document (``# title`` then the text), stored with
``Knowledge.add_document`` (local blob files, a SQLite row), then one ``index_document``
job per document in the job table, run by the in-process ``LocalJobQueue`` with
``--concurrency`` workers (the ``knowledge_handlers`` handler: parse, chunk, embed through
the router's ``embed`` role, the local all-MiniLM-L6-v2, with the SQLite embedding cache,
upsert into embedded Qdrant, status updates, job claim and result rows).

* pipeline: chunks / seconds from the first enqueue until the last job's row is finished
  (the workers are started, idle, before; storing the uploads is timed apart);
* raw embedder: the same chunk texts (the documents parsed and chunked again with the
  same settings, checked against the indexed count) through
  ``router.embedder("embed").embed`` in batches of ``knowledge.embed_batch_size``, one
  after the other: no cache, no database, no Qdrant. That is the limit.

The model is loaded (one warm-up call) before either is timed. Target: pipeline / raw
embedder >= 0.80. When it is missed (or with ``--breakdown``) the script prints where the
time went, from wrappers this script puts around the pipeline's steps (no source is
changed): per step the calls, the summed seconds (concurrent calls counted each), and the
seconds during which at least one call was in flight; the CPU seconds of each thread
(from /proc/self/task), which shows what ran on the machine's cores; and the model calls
the pipeline made, replayed alone after it, against their time inside the pipeline:
whether the model lost time to small batches or to sharing the CPU with the rest.

Run: ``.venv/bin/python bench/ingest.py [--limit 500] [--concurrency 8] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

import agentrig.knowledge.indexer as indexer_module
import agentrig.knowledge.vectors as vectors_module
from agentrig.config import KnowledgeSettings, load_settings
from agentrig.jobs.handlers import INDEX_DOCUMENT, knowledge_handlers
from agentrig.jobs.queue import LocalJobQueue
from agentrig.knowledge.chunk import chunk_document
from agentrig.knowledge.evaluation import Dataset
from agentrig.knowledge.parse import parse_document
from agentrig.knowledge.service import Knowledge
from agentrig.llm.router import ModelRouter
from agentrig.store import Database
from agentrig.store.jobs import FAILED, SUCCEEDED, Job, JobStore
from agentrig.store.models import JobRow

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "scifact"
TENANT = "bench"
KB = "scifact"
TARGET = 0.80

# The steps timed, in the order of the pipeline; indented ones are part of the one above.
CLAIM = "job rows: enqueue, claim, heartbeat"
DOCUMENT_ROWS = "document rows: get, set_status"
BLOB = "blob read"
PARSE = "parse (thread)"
CHUNK = "chunk (thread)"
EMBED = "embed step (cache, batching wait, model)"
CACHE = "  ↳ embedding cache rows"
MODEL = "  ↳ model: router embed call"
UPSERT = "upsert (BM25 + Qdrant)"
BM25 = "  ↳ BM25 keyword vectors (thread)"
FINISH = "job rows: succeed, fail"
STEPS = (CLAIM, DOCUMENT_ROWS, BLOB, PARSE, CHUNK, EMBED, CACHE, MODEL, UPSERT, BM25, FINISH)

console = Console() if sys.stdout.isatty() else Console(width=120)


class Stages:
    """(start, end) intervals per step, appended from any thread."""

    def __init__(self, order: tuple[str, ...] = ()) -> None:
        self.intervals: dict[str, list[tuple[float, float]]] = {stage: [] for stage in order}

    def wrap_async(self, stage: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        spans = self.intervals.setdefault(stage, [])

        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                spans.append((started, time.perf_counter()))

        return timed

    def wrap_sync(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        spans = self.intervals.setdefault(stage, [])

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spans.append((started, time.perf_counter()))

        return timed

    def summary(self, start: float, end: float) -> list[dict[str, Any]]:
        """Per step: calls, summed seconds, and seconds with a call in flight (clipped to
        the window ``start``-``end``)."""
        rows = []
        for stage, spans in self.intervals.items():
            inside = [(max(a, start), min(b, end)) for a, b in spans if b > start and a < end]
            busy, reach = 0.0, start
            for a, b in sorted(inside):
                if b > reach:
                    busy += b - max(a, reach)
                    reach = b
            summed = sum(b - a for a, b in inside)
            rows.append({"stage": stage, "calls": len(inside), "summed": summed, "busy": busy})
        return rows


class TimedEmbedder:
    """The router's embedder as the cached embedder calls it, timed; keeps each batch."""

    def __init__(self, inner: Any, stages: Stages) -> None:
        self.batches: list[list[str]] = []
        self._embed = stages.wrap_async(MODEL, inner.embed)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.batches.append(list(texts))
        return await self._embed(texts)


class CountingJobStore(JobStore):
    """The job rows, each statement timed; signals when ``total`` jobs have finished."""

    def __init__(self, database: Database, total: int, stages: Stages) -> None:
        super().__init__(database)
        self.total = total
        self.finished = 0
        self.done = asyncio.Event()
        self.on_finish: Callable[[], None] = lambda: None
        for name in ("enqueue", "claim", "heartbeat"):
            setattr(self, name, stages.wrap_async(CLAIM, getattr(self, name)))
        self._record = stages.wrap_async(FINISH, self._record)

    async def _record(self, finish: Callable[[], Awaitable[bool]]) -> bool:
        return await finish()

    async def succeed(self, job: Job, worker: str, result: Any) -> bool:
        changed = await self._record(
            lambda: super(CountingJobStore, self).succeed(job, worker, result)
        )
        self._finished()
        return changed

    async def fail(self, job: Job, worker: str, error: str, *, retry_after: float | None) -> bool:
        parent = super()
        changed = await self._record(
            lambda: parent.fail(job, worker, error, retry_after=retry_after)
        )
        if retry_after is None or job.attempts >= job.max_attempts:
            self._finished()
        return changed

    def _finished(self) -> None:
        self.finished += 1
        self.on_finish()
        if self.finished >= self.total:
            self.done.set()


def instrument(knowledge: Knowledge, stages: Stages) -> tuple[TimedEmbedder, Callable[[], None]]:
    """Wrap the pipeline's steps with timers; returns the timed model, and what undoes
    the module patches."""
    patched = [
        (indexer_module, "parse_document", PARSE),
        (indexer_module, "chunk_document", CHUNK),
        (vectors_module, "document_vector", BM25),
    ]
    originals = []
    for module, name, stage in patched:
        original = getattr(module, name, None)
        if original is None:  # vectors.py may change under us: time what is there
            continue
        originals.append((module, name, original))
        setattr(module, name, stages.wrap_sync(stage, original))
    indexer = knowledge.indexer
    documents = indexer.documents
    documents.get = stages.wrap_async(DOCUMENT_ROWS, documents.get)  # type: ignore[method-assign]
    documents.set_status = stages.wrap_async(DOCUMENT_ROWS, documents.set_status)  # type: ignore[method-assign]
    indexer.blobs.get = stages.wrap_async(BLOB, indexer.blobs.get)  # type: ignore[method-assign]
    cached = knowledge.embedder
    cached.embed_counting = stages.wrap_async(EMBED, cached.embed_counting)  # type: ignore[method-assign]
    cache = cached.cache
    cache.get_many = stages.wrap_async(CACHE, cache.get_many)  # type: ignore[method-assign]
    cache.put_many = stages.wrap_async(CACHE, cache.put_many)  # type: ignore[method-assign]
    model = cached.embedder = TimedEmbedder(cached.embedder, stages)  # type: ignore[assignment]
    vectors = indexer.vectors
    vectors.upsert = stages.wrap_async(UPSERT, vectors.upsert)  # type: ignore[method-assign]

    def undo() -> None:
        for module, name, original in originals:
            setattr(module, name, original)

    return model, undo


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each live thread of this process, by native id."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


def thread_group(name: str | None) -> str:
    if name is None:
        return "native threads (torch intra-op, tokenizers/splitter)"
    if name == "MainThread":
        return "event loop (main thread)"
    if name.startswith("asyncio_"):
        return "to_thread pool (the model's calling thread, parse, chunk, BM25)"
    if "_connection_worker_thread" in name:
        return "aiosqlite connection threads (SQL statements)"
    if name.startswith("qdrant"):
        return "embedded Qdrant thread (upserts)"
    if name.startswith("agentrig-sqlite"):
        return "SQLite writer thread (job, document and cache rows)"
    return "other Python threads"


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_names() -> dict[int | None, str]:
    return {thread.native_id: thread.name for thread in threading.enumerate()}


def cpu_by_thread(
    before: dict[int, float], after: dict[int, float], names: dict[int | None, str]
) -> dict[str, float]:
    groups: dict[str, float] = {}
    for tid, seconds in after.items():
        group = thread_group(names.get(tid))
        groups[group] = groups.get(group, 0.0) + seconds - before.get(tid, 0.0)
    return groups


def markdown(title: str, text: str) -> bytes:
    """A corpus entry as ``ingest_corpus`` sends it."""
    return (f"# {title}\n\n{text}\n" if title else f"{text}\n").encode()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    dataset = Dataset.load(args.dataset)
    corpus = list(dataset.corpus.items())[: args.limit or None]
    with tempfile.TemporaryDirectory(prefix="agentrig-bench-ingest-") as folder:
        settings = load_settings(
            data_dir=Path(folder),
            knowledge={"chunk_size": args.chunk_size, "chunk_overlap": args.chunk_overlap},
            jobs={"concurrency": args.concurrency},
        )
        database = await Database.open(settings)
        router = ModelRouter(settings.llm)
        knowledge = Knowledge.open(settings, database, router)
        batch_size = settings.knowledge.embed_batch_size
        raw_embedder = router.embedder("embed")
        await raw_embedder.embed(["warm-up: load the model before anything is timed"])

        console.print(f"storing {len(corpus)} documents (add_document)…")
        gate = asyncio.Semaphore(args.concurrency)

        async def store(corpus_id: str, title: str, text: str) -> str:
            async with gate:
                document = await knowledge.add_document(
                    TENANT,
                    markdown(title, text),
                    f"{corpus_id}.md",
                    kb=KB,
                    metadata={"corpus_id": corpus_id},
                )
                return document.id

        started = time.perf_counter()
        ids = await asyncio.gather(*(store(cid, title, text) for cid, (title, text) in corpus))
        store_seconds = time.perf_counter() - started

        stages = Stages(STEPS)
        jobs = CountingJobStore(database, len(ids), stages)
        handlers = knowledge_handlers(knowledge)
        reports: list[dict[str, Any]] = []
        index_document = handlers[INDEX_DOCUMENT]

        async def keep_report(job: Job) -> dict:
            report = await index_document(job)
            reports.append(report)
            return report

        queue = LocalJobQueue(jobs, {INDEX_DOCUMENT: keep_report}, settings.jobs)
        model, undo = instrument(knowledge, stages)
        await queue.start()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=1,  # each redraw holds the GIL, which the model thread needs
        ) as progress:
            task = progress.add_task("indexing (jobs)", total=len(ids))
            jobs.on_finish = lambda: progress.advance(task)
            cpu_before, process_before = thread_cpu(), process_cpu()
            pipeline_started = time.perf_counter()
            for document_id in ids:
                await queue.enqueue(INDEX_DOCUMENT, TENANT, {"document_id": document_id})
            enqueued = time.perf_counter() - pipeline_started
            await jobs.done.wait()
            ended = time.perf_counter()
            cpu_after, process_after, names = thread_cpu(), process_cpu(), thread_names()
        pipeline_seconds = ended - pipeline_started
        try:
            async with asyncio.timeout(10):
                await queue.aclose()
        except TimeoutError:
            console.print("[yellow]LocalJobQueue.aclose() did not return in 10 s[/]")
        undo()

        async with database.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(func.count(), func.sum(JobRow.attempts)).where(
                        JobRow.status == SUCCEEDED
                    )
                )
            ).one()
        succeeded, attempts = int(row[0]), int(row[1] or 0)
        failed = await jobs.count(FAILED)
        indexed_chunks = sum(report["chunks"] for report in reports)
        stored = await knowledge.vectors.count(KB, TENANT)

        console.print("parsing and chunking again, in this thread, for the raw embedder…")
        started = time.perf_counter()
        texts: list[str] = []
        for corpus_id, (title, text) in corpus:
            parsed = parse_document(markdown(title, text), f"{corpus_id}.md")
            chunks = chunk_document(parsed, size=args.chunk_size, overlap=args.chunk_overlap)
            texts += [chunk.text for chunk in chunks]
        rechunk_seconds = time.perf_counter() - started

        console.print(f"raw embedder: {len(texts)} texts in batches of {batch_size}…")
        started, cpu = time.perf_counter(), process_cpu()
        for start in range(0, len(texts), batch_size):
            await raw_embedder.embed(texts[start : start + batch_size])
        raw_seconds, raw_cpu = time.perf_counter() - started, process_cpu() - cpu
        ratio = (indexed_chunks / pipeline_seconds) / (len(texts) / raw_seconds)

        replay_seconds = replay_cpu = None
        if ratio < TARGET or args.breakdown:  # small batches, or the rest of the pipeline?
            console.print(f"the pipeline's {len(model.batches)} model batches again, alone…")
            started, cpu = time.perf_counter(), process_cpu()
            for batch in model.batches:
                await raw_embedder.embed(batch)
            replay_seconds, replay_cpu = time.perf_counter() - started, process_cpu() - cpu

        await knowledge.aclose()
        await router.aclose()
        await database.aclose()

    return {
        "documents": len(corpus),
        "concurrency": args.concurrency,
        "chunk_size": args.chunk_size,
        "chunk_overlap": args.chunk_overlap,
        "embed_batch_size": batch_size,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "store_seconds": store_seconds,
        "enqueue_seconds": enqueued,
        "pipeline_seconds": pipeline_seconds,
        "pipeline_chunks": indexed_chunks,
        "stored_chunks": stored,
        "embedded_by_pipeline": sum(report["embedded"] for report in reports),
        "jobs_succeeded": succeeded,
        "jobs_failed": failed,
        "job_attempts": attempts,
        "rechunk_seconds": rechunk_seconds,
        "raw_chunks": len(texts),
        "raw_seconds": raw_seconds,
        "pipeline_chunks_per_second": indexed_chunks / pipeline_seconds,
        "raw_chunks_per_second": len(texts) / raw_seconds,
        "ratio": ratio,
        "raw_cpu_seconds": raw_cpu,
        "model_calls": len(model.batches),
        "model_texts": sum(len(batch) for batch in model.batches),
        "replay_seconds": replay_seconds,
        "replay_cpu_seconds": replay_cpu,
        "pipeline_cpu_seconds": process_after - process_before,
        "cpu_by_thread": cpu_by_thread(cpu_before, cpu_after, names),
        "stages": stages.summary(pipeline_started, ended),
    }


def report(results: dict[str, Any], breakdown: bool) -> None:
    r = results
    table = Table(
        title=(
            f"ingestion, SciFact, chunk_size {r['chunk_size']}/{r['chunk_overlap']}, "
            f"{r['concurrency']} job workers, embed batches of {r['embed_batch_size']}, "
            f"{r['cpus']} CPUs"
        )
    )
    for column in ("path", "documents", "chunks", "seconds", "chunks/s"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for label, key in (
        ("pipeline (first enqueue → last job finished)", "pipeline"),
        ("raw embedder (router embed, same texts)", "raw"),
    ):
        table.add_row(
            label,
            str(r["documents"]),
            str(r[f"{key}_chunks"]),
            f"{r[f'{key}_seconds']:.1f}",
            f"{r[f'{key}_chunks_per_second']:.1f}",
        )
    console.print(table)
    ratio = r["ratio"]
    verdict = "meets" if ratio >= TARGET else "misses"
    console.print(f"pipeline / raw embedder: {ratio:.2f}: {verdict} the target of >= {TARGET:.2f}")
    console.print(
        f"storing the uploads before (add_document, not in the pipeline's time): "
        f"{r['store_seconds']:.1f} s; enqueueing the jobs took {r['enqueue_seconds']:.1f} s "
        f"of the pipeline's; jobs: {r['jobs_succeeded']} succeeded in {r['job_attempts']} "
        f"attempts, {r['jobs_failed']} failed; chunks in Qdrant: {r['stored_chunks']}, "
        f"embedded by the pipeline: {r['embedded_by_pipeline']} (the rest from the cache); "
        f"parse + chunk again in one thread: {r['rechunk_seconds']:.1f} s; load average "
        f"{r['load_average_before']:.2f} before, {r['load_average_after']:.2f} after"
    )
    if r["pipeline_chunks"] != r["raw_chunks"] or r["stored_chunks"] != r["raw_chunks"]:
        console.print("[red]chunk counts differ between the pipeline and the re-chunked texts[/]")
    if ratio >= TARGET and not breakdown:
        return
    wall = r["pipeline_seconds"]
    stages = Table(title=f"where the pipeline's {wall:.1f} s went (wrappers around each step)")
    for column in ("step", "calls", "summed s", "in flight s", "in flight %"):
        stages.add_column(column, justify="left" if column == "step" else "right")
    for row in r["stages"]:
        stages.add_row(
            row["stage"],
            str(row["calls"]),
            f"{row['summed']:.1f}",
            f"{row['busy']:.1f}",
            f"{100 * row['busy'] / wall:.0f}",
        )
    console.print(stages)
    cpu = Table(title=f"CPU seconds by thread during the pipeline ({wall:.1f} s wall)")
    for column in ("threads", "CPU s", "% of one core"):
        cpu.add_column(column, justify="left" if column == "threads" else "right")
    groups = sorted(r["cpu_by_thread"].items(), key=lambda item: -item[1])
    for group, seconds in groups:
        cpu.add_row(group, f"{seconds:.1f}", f"{100 * seconds / wall:.0f}")
    rest = r["pipeline_cpu_seconds"] - sum(seconds for _, seconds in groups)
    cpu.add_row("threads that ended meanwhile", f"{rest:.1f}", f"{100 * rest / wall:.0f}")
    cpu.add_row(
        "whole process",
        f"{r['pipeline_cpu_seconds']:.1f}",
        f"{100 * r['pipeline_cpu_seconds'] / wall:.0f} (of {100 * r['cpus']})",
    )
    console.print(cpu)
    model = Table(title="the model's share: batch sizes against sharing the CPU")
    for column in ("model calls", "calls", "texts/call", "seconds", "texts/s", "process CPU s"):
        model.add_column(column, justify="left" if column == "model calls" else "right")
    batches = -(-r["raw_chunks"] // r["embed_batch_size"])
    model.add_row(
        f"raw embedder, batches of {r['embed_batch_size']}",
        str(batches),
        f"{r['raw_chunks'] / batches:.1f}",
        f"{r['raw_seconds']:.1f}",
        f"{r['raw_chunks'] / r['raw_seconds']:.1f}",
        f"{r['raw_cpu_seconds']:.1f}",
    )
    calls, texts = r["model_calls"], r["model_texts"]
    if r["replay_seconds"] is not None:
        model.add_row(
            "the pipeline's batches, replayed alone",
            str(calls),
            f"{texts / calls:.1f}",
            f"{r['replay_seconds']:.1f}",
            f"{texts / r['replay_seconds']:.1f}",
            f"{r['replay_cpu_seconds']:.1f}",
        )
    in_pipeline = next(row["summed"] for row in r["stages"] if row["stage"] == MODEL)
    model.add_row(
        "the same, inside the pipeline",
        str(calls),
        f"{texts / calls:.1f}",
        f"{in_pipeline:.1f}",
        f"{texts / in_pipeline:.1f}",
        "",
    )
    console.print(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="a BEIR folder")
    parser.add_argument("--limit", type=int, default=0, help="the first N documents (0: all)")
    parser.add_argument("--concurrency", type=int, default=8, help="job workers")
    defaults = KnowledgeSettings()
    parser.add_argument("--chunk-size", type=int, default=defaults.chunk_size, help="tokens")
    parser.add_argument("--chunk-overlap", type=int, default=defaults.chunk_overlap, help="tokens")
    parser.add_argument(
        "--breakdown", action="store_true", help="print where the time went even if on target"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = asyncio.run(measure(args))
    report(results, args.breakdown)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
