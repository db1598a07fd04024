"""The embedded engine's own behaviour: one folder per process, engines in child processes,
the index rebuilt in the background while reads and writes go on, crashes survived."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentrig.config import load_settings
from agentrig.knowledge.edge import EdgeVectorStore, LegacyKnowledgeBase
from agentrig.knowledge.edge_collection import EngineTuning
from agentrig.knowledge.engine_process import EngineError
from agentrig.knowledge.qdrant import QdrantVectorStore
from agentrig.knowledge.service import open_vector_store
from agentrig.knowledge.vectors import ChunkRecord

# Small enough that a few hundred 8-dim chunks start a rebuild that builds HNSW graphs.
SMALL = EngineTuning(optimize_after=300, full_scan_kb=1, max_segment_kb=10_000)


def chunks(count: int, *, start: int = 0, seed: int = 1, version: str = "v1") -> list[ChunkRecord]:
    rng = random.Random(seed)
    return [
        ChunkRecord(
            "acme",
            f"doc{i // 10}",
            i % 10,
            f"{version} chunk {i} word{i % 37}",
            [rng.gauss(0, 1) for _ in range(8)],
            {"page": i % 10},
        )
        for i in range(start, start + count)
    ]


async def wait_for(store: EdgeVectorStore, kb: str, generation: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = await store.status(kb)
        assert status is not None
        if status["generation"] >= generation and not status["indexing"]:
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)


async def test_stores_of_one_process_share_the_folder(tmp_path):
    first, second = EdgeVectorStore(tmp_path / "v"), EdgeVectorStore(tmp_path / "v")
    await first.upsert("kb", chunks(3))
    assert await second.count("kb") == 3
    await first.aclose()
    await second.upsert("kb", chunks(2, start=3))
    assert await second.count("kb") == 5
    await second.aclose()
    reopened = EdgeVectorStore(tmp_path / "v")  # closed (and flushed) with the last store
    assert await reopened.count("kb") == 5
    assert await reopened.delete_kb("kb") is True
    assert not (tmp_path / "v" / "agentrig_kb").exists()
    await reopened.aclose()


async def test_another_process_cannot_open_a_folder_in_use(tmp_path):
    store = EdgeVectorStore(tmp_path / "v")
    await store.upsert("kb", chunks(1))
    code = (
        "import asyncio, sys\n"
        "from agentrig.knowledge.edge import EdgeVectorStore, VectorStoreInUse\n"
        "try:\n"
        "    asyncio.run(EdgeVectorStore(sys.argv[1]).count('kb'))\n"
        "except VectorStoreInUse as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "v")], capture_output=True, text=True
    )
    assert f"in use by another process (pid {os.getpid()})" in result.stdout, result
    assert "qdrant_url" in result.stdout
    assert await store.count("kb") == 1  # the owner is unaffected
    await store.aclose()


async def test_the_event_loop_stays_free_while_the_engine_works(tmp_path):
    store = EdgeVectorStore(tmp_path / "v")
    records = chunks(3000)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    await store.upsert("kb", records)
    elapsed = time.perf_counter() - started
    ticker.cancel()
    assert ticks >= max(5, 40 * elapsed), (ticks, elapsed)  # a blocked loop would not tick

    async def search(i: int) -> list[tuple[str, int]]:
        hits = await store.search_keywords("kb", f"chunk {i}", tenant="acme", top_k=3)
        return [(hit.document_id, hit.chunk_index) for hit in hits]

    together = await asyncio.gather(store.count("kb"), *(search(i) for i in range(0, 3000, 300)))
    assert together == [3000, *[await search(i) for i in range(0, 3000, 300)]]
    assert together[1][0] == ("doc0", 0)
    await store.aclose()


async def test_the_index_is_rebuilt_in_the_background_while_reads_and_writes_go_on(tmp_path):
    store = EdgeVectorStore(tmp_path / "v", tuning=SMALL, batch_size=400)  # one write each
    first = chunks(400)
    await store.upsert("kb", first)  # past optimize_after: a copy is being optimized
    status = await store.status("kb")
    assert status is not None and status["generation"] == 1
    assert status["indexing"] or status["generation"] == 2, status
    # meanwhile: writes (an overwrite, new chunks, a delete) and reads
    await store.upsert("kb", chunks(10, version="v2"))
    await store.upsert("kb", chunks(50, start=400, seed=2))
    assert await store.delete_document("kb", "acme", "doc5") == 10
    probe = first[123].vector
    [hit] = await store.search_dense("kb", probe, tenant="acme", top_k=1)
    assert (hit.document_id, hit.chunk_index) == ("doc12", 3)

    status = await wait_for(store, "kb", 2)
    assert (status["points"], status["unindexed"]) == (440, 60)
    assert await store.count("kb") == 440
    assert (await store.search_keywords("kb", "v2 chunk 3", tenant="acme", top_k=1))[0].text == (
        "v2 chunk 3 word3"
    )
    assert await store.existing_hashes("kb", "acme", "doc5") == {}
    [hit] = await store.search_dense("kb", probe, tenant="acme", top_k=1)
    assert (hit.document_id, hit.chunk_index) == ("doc12", 3)
    folder = tmp_path / "v" / "agentrig_kb"
    assert json.loads((folder / "CURRENT").read_text())["generation"] == 2
    deadline = time.monotonic() + 30
    while (folder / "g1").exists():  # the retired generation goes once its engine closed
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await store.aclose()

    reopened = EdgeVectorStore(tmp_path / "v", tuning=SMALL)
    assert await reopened.count("kb") == 440
    status = await reopened.status("kb")
    assert status is not None and (status["generation"], status["unindexed"]) == (2, 60)
    await reopened.aclose()


async def test_chunks_left_waiting_are_indexed_once_writes_pause(tmp_path):
    idle = EngineTuning(optimize_after=10_000, idle_seconds=0.3, idle_min=100, full_scan_kb=1)
    store = EdgeVectorStore(tmp_path / "v", tuning=idle)
    await store.upsert("kb", chunks(99))
    await asyncio.sleep(0.6)
    status = await store.status("kb")
    assert status is not None and (status["generation"], status["indexing"]) == (1, False)
    await store.upsert("kb", chunks(1, start=99))  # 100 waiting: due once writes pause
    status = await wait_for(store, "kb", 2)
    assert (status["points"], status["unindexed"]) == (100, 0)
    await store.aclose()


async def test_chunks_waiting_when_reopened_are_indexed_without_a_write(tmp_path):
    patient = EngineTuning(optimize_after=10_000, idle_seconds=60, idle_min=100, full_scan_kb=1)
    store = EdgeVectorStore(tmp_path / "v", tuning=patient)
    await store.upsert("kb", chunks(150))
    await store.aclose()  # closed before the pause was long enough
    eager = EngineTuning(optimize_after=10_000, idle_seconds=0.3, idle_min=100, full_scan_kb=1)
    reopened = EdgeVectorStore(tmp_path / "v", tuning=eager)
    status = await wait_for(reopened, "kb", 2)  # reads only
    assert (status["points"], status["unindexed"]) == (150, 0)
    await reopened.aclose()


async def test_a_build_that_dies_loses_nothing_and_is_retried_later(tmp_path):
    store = EdgeVectorStore(tmp_path / "v", tuning=SMALL)
    await store.upsert("kb", chunks(300))
    collection = store._folder.collections["agentrig_kb"]  # type: ignore[union-attr]
    build = collection._build
    assert build is not None
    build.engine.kill()  # the optimizing engine dies (out of memory, say)
    await store.upsert("kb", chunks(20, start=300))
    deadline = time.monotonic() + 30
    while collection.building():
        assert time.monotonic() < deadline
        await store.upsert("kb", [])
        await asyncio.sleep(0.05)
    status = await store.status("kb")
    assert status is not None and status["generation"] == 1
    assert await store.count("kb") == 320
    assert not (tmp_path / "v" / "agentrig_kb" / "g2").exists()
    await store.upsert("kb", chunks(330, start=320))  # twice as many written: tried again
    status = await wait_for(store, "kb", 2)
    assert status["points"] == 650
    await store.aclose()


async def test_a_dead_engine_is_replaced_and_its_acknowledged_writes_kept(tmp_path):
    store = EdgeVectorStore(tmp_path / "v")
    await store.upsert("kb", chunks(50))
    collection = store._folder.collections["agentrig_kb"]  # type: ignore[union-attr]
    assert collection.engine is not None
    collection.engine.kill()
    with pytest.raises(EngineError, match=r"exited with code -9"):
        await store.search_keywords("kb", "chunk", tenant="acme", top_k=1)
    assert await store.count("kb") == 50  # a new engine replayed the write-ahead log
    await store.upsert("kb", chunks(5, start=50))
    assert await store.count("kb") == 55
    await store.aclose()


def test_a_killed_owner_leaves_no_engine_behind_and_loses_nothing(tmp_path):
    code = (
        "import asyncio, random, sys\n"
        "from agentrig.knowledge.edge import EdgeVectorStore\n"
        "from agentrig.knowledge.vectors import ChunkRecord\n"
        "async def main():\n"
        "    store = EdgeVectorStore(sys.argv[1])\n"
        "    await store.upsert('kb', [ChunkRecord('acme', 'd', i, f'text {i}', [1.0, i])\n"
        "                              for i in range(100)])\n"
        "    engine = store._folder.collections['agentrig_kb'].engine\n"
        "    print(engine.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "v")], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    engine_pid = int(owner.stdout.readline())
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{engine_pid}").exists() and "Z" not in _state(engine_pid):
        assert time.monotonic() < deadline, "the engine outlived its owner"
        time.sleep(0.05)

    async def count() -> int:
        store = EdgeVectorStore(tmp_path / "v")
        try:
            return await store.count("kb")
        finally:
            await store.aclose()

    assert asyncio.run(count()) == 100


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "Z"


async def test_a_knowledge_base_of_the_old_embedded_store_names_the_migration(tmp_path):
    (tmp_path / "old" / "collection" / "agentrig_kb").mkdir(parents=True)
    store = EdgeVectorStore(tmp_path / "v", legacy_path=tmp_path / "old")
    with pytest.raises(LegacyKnowledgeBase, match="agentrig knowledge migrate"):
        await store.count("kb")
    assert await store.count("other") == 0
    await store.aclose()


def test_settings_pick_the_embedded_engine_or_a_server(tmp_path, monkeypatch):
    embedded = open_vector_store(load_settings())
    assert isinstance(embedded, EdgeVectorStore)
    assert embedded.path == (tmp_path / "data" / "vectors").resolve()
    monkeypatch.setenv("AGENTRIG_KNOWLEDGE__QDRANT_URL", "http://127.0.0.1:6333")
    assert isinstance(open_vector_store(load_settings()), QdrantVectorStore)
    with pytest.raises(ValueError, match="either a url or a client"):
        QdrantVectorStore()


async def test_writes_wait_while_a_search_of_the_process_runs(tmp_path, monkeypatch):
    from agentrig.knowledge.foreground import searches

    store = EdgeVectorStore(tmp_path / "v")
    await store.upsert("kb", chunks(1))
    monkeypatch.setattr(searches, "patience", 30)
    with searches.searching():
        writing = asyncio.create_task(store.upsert("kb", chunks(5, start=1)))
        await asyncio.sleep(0.3)
        assert not writing.done() and await store.count("kb") == 1  # reads go on
    await asyncio.wait_for(writing, 10)
    assert await store.count("kb") == 6
    monkeypatch.setattr(searches, "patience", 0.1)  # a search that never ends: writes go on
    with searches.searching():
        await asyncio.wait_for(store.upsert("kb", chunks(5, start=6)), 10)
        assert await store.count("kb") == 11
    await store.aclose()


async def test_a_cancelled_write_or_read_leaves_the_store_working(tmp_path):
    store = EdgeVectorStore(tmp_path / "v")
    await store.upsert("kb", chunks(1))
    for _ in range(5):  # cancelled at different moments: queued, applied, answered
        writing = asyncio.create_task(store.upsert("kb", chunks(600, start=1)))
        reading = asyncio.create_task(store.search_keywords("kb", "chunk", tenant="acme", top_k=3))
        await asyncio.sleep(0.01)
        writing.cancel()
        reading.cancel()
        await asyncio.gather(writing, reading, return_exceptions=True)
    await asyncio.wait_for(store.upsert("kb", chunks(1, start=601)), 10)  # not stuck
    assert 2 <= await asyncio.wait_for(store.count("kb"), 10) <= 602
    await store.aclose()
