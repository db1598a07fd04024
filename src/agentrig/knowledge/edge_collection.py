"""One embedded knowledge base: its shard's generations, its writer, its background index.

A knowledge base's folder holds numbered shard folders (generations) and ``CURRENT``,
which names the one in use. One engine process serves it. Reads go to that engine;
writes go through one writer thread, in order, and count the chunks written since the
index was last built.

Building the index (``optimize``: HNSW graphs, the payload and sparse indexes) holds
the engine's GIL for seconds, so the serving engine never does it. Once
``optimize_after`` chunks have been written (or a quarter of those indexed, if more, so a
large shard is copied less often; or a few thousand once writes pause), the writer
flushes the shard and a second engine copies it into the next generation, then optimizes
the copy while the first engine goes on answering reads and taking writes; the writer
keeps those writes. When the copy is optimized, the writer replays them into it, points
``CURRENT`` at it and retires the first engine. A crash at any point leaves ``CURRENT``
on a shard that holds every acknowledged write; a half-built copy is removed at the next
open. Queries never wait for an index build; writes wait only while the folder is copied
and while the writes kept meanwhile are replayed.

This is agentrig's own because the engine offers no background optimizer that lets go
of the GIL; the rest (segments, WAL, indexes) is Qdrant's.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentrig.knowledge.engine_process import EngineClosed, EngineProcess

__all__ = ["Collection", "EngineTuning"]

log = logging.getLogger("agentrig.knowledge.edge")
CURRENT = "CURRENT"


@dataclass(frozen=True)
class EngineTuning:
    """How the engine indexes. Sizes are Qdrant's, in KB of dense vectors: a 384-dim
    vector takes 1.5 KB, so ``full_scan_kb=10_000`` searches segments under about 6,500
    chunks exactly and ``max_segment_kb=200_000`` caps a merged segment near 130,000."""

    optimize_after: int = 20_000  # chunks written before the index is rebuilt
    growth: float = 0.25  # ... or this share of the chunks indexed, if more: fewer copies
    idle_seconds: float = 5.0  # once writes pause this long,
    idle_min: int = 5_000  # ... rebuild if at least this many chunks wait
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    hnsw_ef: int = 128  # search breadth: recall against time
    full_scan_kb: int = 10_000
    max_segment_kb: int = 200_000
    segments: int = 8  # segments the optimizer merges down to

    def engine_settings(self) -> dict[str, int]:
        return {
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construct": self.hnsw_ef_construct,
            "full_scan_kb": self.full_scan_kb,
            "max_segment_kb": self.max_segment_kb,
            "segments": self.segments,
        }


@dataclass
class _Write:
    method: str
    kwargs: dict[str, Any]
    points: int
    future: Future[Any] = field(default_factory=Future)


@dataclass
class _Build:
    """The next generation being optimized by its own engine."""

    generation: int
    engine: EngineProcess
    optimized: Future[Any]
    kept: list[_Write] = field(default_factory=list)


class Collection:
    """The shard of one knowledge base in ``folder``; ``dims`` None until it has one."""

    def __init__(self, folder: Path, name: str, tuning: EngineTuning) -> None:
        self.folder, self.name, self.tuning = folder, name, tuning
        self.generation = 0
        self.engine: EngineProcess | None = None
        self.opened: Future[Any] | None = None  # the engine's open: its info
        self.pending = 0  # chunks written since the index was built
        self.indexed = 0  # chunks in the shard when the index was built
        self.dims = 0  # the dense vectors' size, once opened
        self._build: _Build | None = None
        self._retry_at = tuning.optimize_after
        self._writes: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self.closed = False

    # -- opening -------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.folder / CURRENT).exists()

    def open(self, dims: int | None = None) -> None:
        """Start the engine on the current generation, or create generation 1 for
        ``dims``-sized vectors. Returns at once; :attr:`opened` settles with the info."""
        if self.exists():
            state = json.loads((self.folder / CURRENT).read_text())
            self.generation = int(state["generation"])
            indexed = int(state.get("indexed", 0))
            self._remove_other_generations()
        else:
            assert dims is not None
            self.generation, indexed = 1, 0
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self._path(1), ignore_errors=True)  # a creation that never finished
        self.engine = EngineProcess(f"{self.name}/g{self.generation}")
        self.opened = self.engine.submit(
            "open",
            path=str(self._path(self.generation)),
            dims=dims,
            settings=self.tuning.engine_settings(),
        )
        self.opened.add_done_callback(lambda done: self._opened(done, indexed))

    def _opened(self, done: Future[Any], indexed: int) -> None:
        """Once the engine has the shard: its size, the chunks waiting, and the writer,
        started only now so that its first wait already knows whether chunks wait to be
        indexed (after a reopen, a build is due once it sees no writes)."""
        if done.exception() is not None:
            return
        info = done.result()
        self.dims, self.indexed = info["dims"], indexed
        self.pending = max(0, info["points"] - indexed)
        if not (self.folder / CURRENT).exists():
            self._point_current_at(self.generation, indexed=0)
        self._writer = threading.Thread(target=self._write_loop, name=f"edge-{self.name}")
        self._writer.daemon = True
        self._writer.start()

    def _path(self, generation: int) -> Path:
        return self.folder / f"g{generation}"

    def _point_current_at(self, generation: int, *, indexed: int) -> None:
        state = {"generation": generation, "indexed": indexed}
        temporary = self.folder / f"{CURRENT}.tmp"
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.folder / CURRENT)

    def _remove_other_generations(self) -> None:
        for path in self.folder.glob("g*"):
            if path.is_dir() and path.name != f"g{self.generation}":
                shutil.rmtree(path, ignore_errors=True)

    # -- requests ------------------------------------------------------------------------
    def read(self, method: str, **kwargs: Any) -> Future[Any]:
        """A read on the serving engine; on a switch of engines, on the new one."""
        while True:
            engine = self.engine
            if engine is None:
                raise EngineClosed(f"knowledge base {self.name} is closed")
            try:
                return engine.submit(method, **kwargs)
            except EngineClosed:
                if self.engine is engine:
                    raise

    def write(self, method: str, points: int = 0, **kwargs: Any) -> Future[Any]:
        """A write, applied in order by the writer thread."""
        if self.closed:
            raise EngineClosed(f"knowledge base {self.name} is closed")
        write = _Write(method, kwargs, points)
        self._writes.put(write)
        return write.future

    def close(self, *, drop: bool = False) -> None:
        """Stop the writer and the engines (flushing), or with ``drop`` delete it all."""
        if self.closed:
            return
        self.closed = True
        self._writes.put(None)
        if self._writer is not None:
            self._writer.join()
        self._abandon_build()
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()
        if drop:
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- the writer thread ---------------------------------------------------------------
    def _write_loop(self) -> None:
        tuning = self.tuning
        while True:
            if self._build is not None:
                wait: float | None = 0.2  # to see the build finish
            else:
                wait = tuning.idle_seconds if self.pending >= tuning.idle_min else None
            try:
                write = self._writes.get(timeout=wait)
            except queue.Empty:
                if self._build is None:
                    self._start_build()  # writes paused with chunks waiting: index them
                elif self._build.optimized.done():
                    self._finish_build()
                continue
            if write is None:
                return
            if not write.future.set_running_or_notify_cancel():
                continue  # its writer gave up before it was applied: it is not
            try:
                result = self._apply(write)
            except Exception as exc:
                write.future.set_exception(exc)
                continue
            # the build starts (or ends) before the write is acknowledged, so that a
            # writer sees its effect on the status at once
            if self._build is not None and self._build.optimized.done():
                self._finish_build()
            elif self._build is None and self.pending >= self._due():
                self._start_build()
            write.future.set_result(result)

    def _apply(self, write: _Write) -> Any:
        assert self.engine is not None
        result = self.engine.request(write.method, **write.kwargs)
        self.pending += write.points
        if self._build is not None:
            self._build.kept.append(write)
        return result

    def _due(self) -> int:
        """How many chunks written since the last build start the next one."""
        return max(self._retry_at, int(self.tuning.growth * self.indexed))

    def _start_build(self) -> None:
        """Copy the flushed shard into the next generation and optimize it elsewhere."""
        assert self.engine is not None
        generation = self.generation + 1
        builder = EngineProcess(f"{self.name}/g{generation}")
        try:
            self.engine.request("flush")
            target = self._path(generation)
            shutil.rmtree(target, ignore_errors=True)
            builder.request("copy", source=str(self._path(self.generation)), target=str(target))
        except Exception:
            log.exception("knowledge base %s: could not copy the shard to index it", self.name)
            builder.close()
            self._retry_at = self.pending * 2
            return
        settings = self.tuning.engine_settings()  # warmed once optimized, not before
        builder.submit("open", path=str(target), dims=None, settings=settings, warm=False)
        self._build = _Build(generation, builder, builder.submit("optimize"))

    def _finish_build(self) -> None:
        """Replay the writes kept since the copy, then serve from the optimized copy."""
        build = self._build  # kept until the switch: the status says "indexing" meanwhile
        assert build is not None and self.engine is not None
        try:
            build.optimized.result()
            for write in build.kept:
                build.engine.request(write.method, **write.kwargs)
            points = build.engine.request("info")["points"]
        except Exception:
            self._build = None
            log.exception("knowledge base %s: building the index failed", self.name)
            build.engine.close()
            shutil.rmtree(self._path(build.generation), ignore_errors=True)
            self._retry_at = max(self.pending * 2, self.tuning.optimize_after)
            return
        kept = sum(write.points for write in build.kept)
        self.indexed = max(0, points - kept)
        self._point_current_at(build.generation, indexed=self.indexed)
        retired, retired_generation = self.engine, self.generation
        self.engine, self.generation = build.engine, build.generation
        self.pending, self._retry_at = kept, self.tuning.optimize_after
        self._build = None
        threading.Thread(
            target=self._retire, args=(retired, retired_generation), daemon=True
        ).start()
        if self.pending >= self._due():  # as many written meanwhile: no write may follow
            self._start_build()

    def _retire(self, engine: EngineProcess, generation: int) -> None:
        engine.close()  # after the reads already sent to it
        shutil.rmtree(self._path(generation), ignore_errors=True)

    def _abandon_build(self) -> None:
        build, self._build = self._build, None
        if build is not None:
            build.engine.kill()  # a copy, half optimized: nothing in it to flush
            shutil.rmtree(self._path(build.generation), ignore_errors=True)

    def failed(self) -> bool:
        """Whether the serving engine died: the knowledge base must be opened again."""
        return self.engine is not None and self.engine.failed

    def building(self) -> bool:
        return self._build is not None
