"""The vector engine process: one knowledge base's Qdrant Edge shard, served over a pipe.

Qdrant Edge (``qdrant-edge-py``) is Qdrant's own Rust engine in-process, but its calls
hold the GIL for as long as they run: an ``optimize`` of 20,000 chunks for about eight
seconds, an upsert of 1,000 for tens of milliseconds. Called in the server's process, it
would freeze every request meanwhile, so each shard lives in a child process of its own
that runs this file and answers requests in order, one at a time.

The file is run by path (``python engine.py``), not as ``-m agentrig.knowledge.engine``,
so that the child imports neither agentrig nor what agentrig imports: it stands on the
standard library, numpy and ``qdrant_edge``, and starts in a fraction of a second.

The protocol: each message is a 4-byte big-endian length and a pickle. A request is
``(id, method, kwargs)``; its answer ``(id, True, result)`` or ``(id, False, (kind,
message))``. Filters arrive as plain tuples (see :func:`edge_filter`). The process ends,
flushing its shard, on the ``close`` request or when its input closes (its parent died).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

DENSE = "dense"
KEYWORDS = "keywords"
_HEADER = struct.Struct(">I")
OPTIMIZE_NICE = 10  # how much lower than the serving threads index builds run

# A plain filter: every condition must hold. ("match", key, value) | ("any", key, values)
# | ("range", key, gte, lte), gte and lte None when open.
Condition = tuple[Any, ...]


def write_frame(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    """The next message, or EOFError once the stream has ended."""
    header = _read_exactly(stream, _HEADER.size)
    return pickle.loads(_read_exactly(stream, _HEADER.unpack(header)[0]))


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the stream ended")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Shard:
    """The requests a parent may send, each a method: what the store needs, in plain data."""

    def __init__(self) -> None:
        import qdrant_edge

        self.q = qdrant_edge
        self.shard: Any = None
        self.dims = 0
        self.path = ""

    # -- lifecycle ---------------------------------------------------------------------
    def copy(self, source: str, target: str) -> None:
        """Copy a flushed shard's folder (the optimizer's working copy); no lock files."""
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock"))

    def open(
        self, path: str, dims: int | None, settings: dict[str, Any], warm: bool = True
    ) -> dict[str, Any]:
        """Load the shard at ``path``, or create it for ``dims``-sized vectors; ``warm``
        reads its files into the page cache (not for a copy about to be optimized)."""
        q = self.q
        if (Path(path) / "edge_config.json").exists():
            self.shard = _retry_while_locked(lambda: q.EdgeShard.load(path))
        else:
            if dims is None:
                raise ValueError(f"no shard at {path}")
            self.shard = q.EdgeShard.create(path, self._config(dims, settings))
            for field, schema in (
                ("tenant", q.KeywordIndexParams(is_tenant=True)),
                ("document_id", q.PayloadSchemaType.Keyword),
                ("chunk_index", q.PayloadSchemaType.Integer),
            ):
                self.shard.update(q.UpdateOperation.create_field_index(field, schema))
        config = json.loads((Path(path) / "edge_config.json").read_text())
        self.dims = int(config["vectors"][DENSE]["size"])
        self.path = path
        if warm:
            _warm_in_background(path)
        return self.info()

    def _config(self, dims: int, settings: dict[str, Any]) -> Any:
        q = self.q
        threads = max(1, (os.cpu_count() or 2) - 1)  # leave a core to the shard being served
        return q.EdgeConfig(
            vectors={DENSE: q.EdgeVectorParams(size=dims, distance=q.Distance.Cosine)},
            sparse_vectors={KEYWORDS: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
            hnsw_config=q.HnswIndexConfig(
                m=settings["hnsw_m"],
                ef_construct=settings["hnsw_ef_construct"],
                full_scan_threshold=settings["full_scan_kb"],
                max_indexing_threads=threads,
            ),
            optimizers=q.EdgeOptimizersConfig(
                max_segment_size=settings["max_segment_kb"],
                default_segment_number=settings["segments"],
                indexing_threshold=settings["full_scan_kb"],
            ),
        )

    def info(self) -> dict[str, Any]:
        info = self.shard.info()
        return {"points": info.points_count, "segments": info.segments_count, "dims": self.dims}

    def flush(self) -> None:
        self.shard.flush()

    def optimize(self) -> bool:
        """Build the indexes, in a thread of lower CPU priority (``OPTIMIZE_NICE``): the
        index-building threads Qdrant starts inherit it, so on a machine with few cores
        the server and the serving engine's searches come first (Linux; elsewhere the
        priority is left alone). A new thread each time: the priority cannot be raised
        back."""
        with ThreadPoolExecutor(1, initializer=_lower_priority) as builder:
            optimized = builder.submit(self.shard.optimize).result()
        _warm_in_background(self.path)  # this engine serves the new segments next
        return optimized

    def close(self) -> None:
        if self.shard is not None:
            self.shard.flush()
            self.shard.close()
            self.shard = None

    # -- writes ------------------------------------------------------------------------
    def upsert(
        self,
        ids: list[str],
        dense: Any,
        sparse: tuple[Any, Any, list[int]],
        payloads: list[dict[str, Any]],
    ) -> None:
        """Write points: ``dense`` a 2-d array, ``sparse`` every point's term ids and
        weights end to end (two arrays) and how many each point has."""
        q = self.q
        indices, values, lengths = sparse
        indices, values = indices.tolist(), values.tolist()
        points, start = [], 0
        for id_, vector, length, payload in zip(
            ids, dense.tolist(), lengths, payloads, strict=True
        ):
            vectors: dict[str, Any] = {DENSE: vector}
            if length:  # a chunk of stopwords only has no keywords
                end = start + length
                vectors[KEYWORDS] = q.SparseVector(indices[start:end], values[start:end])
                start = end
            points.append(q.Point(id_, vectors, payload))
        self.shard.update(q.UpdateOperation.upsert_points(points))

    def delete(self, where: list[Condition]) -> int:
        selector = self.edge_filter(where)
        found = self.shard.count(self.q.CountRequest(exact=True, filter=selector))
        if found:
            self.shard.update(self.q.UpdateOperation.delete_points_by_filter(selector))
        return found

    # -- reads -------------------------------------------------------------------------
    def count(self, where: list[Condition] | None) -> int:
        selector = self.edge_filter(where) if where else None
        return self.shard.count(self.q.CountRequest(exact=True, filter=selector))

    def scroll(
        self, where: list[Condition], fields: list[str], limit: int, offset: Any
    ) -> tuple[list[dict[str, Any]], Any]:
        request = self.q.ScrollRequest(
            offset=offset, limit=limit, filter=self.edge_filter(where), with_payload=fields
        )
        records, following = self.shard.scroll(request)
        return [record.payload or {} for record in records], following

    def search(
        self,
        using: str,
        vector: Any,
        where: list[Condition],
        limit: int,
        threshold: float | None,
        ef: int | None,
        payload: bool = True,
    ) -> list[tuple[float, str, dict[str, Any] | None]]:
        """Nearest points by cosine (``dense``) or by BM25 (``keywords``: ``vector`` is
        ``(indices, values)``), best first: score, id and payload (None without
        ``payload``: a fused search reads the payloads of its winners alone, since reading
        one, even a field of it, reads the chunk's text, maybe from disk)."""
        q = self.q
        if using == KEYWORDS:
            vector = q.SparseVector(*vector)
        request = q.QueryRequest(
            query=q.Query.Nearest(vector, using=using),
            limit=limit,
            filter=self.edge_filter(where),
            score_threshold=threshold,
            params=q.SearchParams(hnsw_ef=ef) if ef else None,
            with_payload=payload,
        )
        found = self.shard.query(request)
        return [(p.score, str(p.id), (p.payload or {}) if payload else None) for p in found]

    def retrieve(self, ids: list[str]) -> list[dict[str, Any] | None]:
        """The payloads of points ``ids``, in order; None for one that is not there."""
        found = {str(r.id): r.payload or {} for r in self.shard.retrieve(ids, True, False)}
        return [found.get(id_) for id_ in ids]

    def edge_filter(self, where: list[Condition] | None) -> Any:
        q = self.q
        must = []
        for kind, key, *rest in where or ():
            if kind == "match":
                must.append(q.FieldCondition(key=key, match=q.MatchValue(rest[0])))
            elif kind == "any":
                must.append(q.FieldCondition(key=key, match=q.MatchAny(rest[0])))
            elif kind == "range":
                bounds = q.RangeFloat(gte=rest[0], lte=rest[1])
                must.append(q.FieldCondition(key=key, range=bounds))
            else:
                raise ValueError(f"unknown condition {kind!r}")
        return q.Filter(must=must)


def _lower_priority() -> None:
    """Lower the calling thread's CPU priority by ``OPTIMIZE_NICE`` (a Linux thread's own)."""
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + OPTIMIZE_NICE
        os.setpriority(os.PRIO_PROCESS, thread, niceness)


def _warm_in_background(path: str) -> None:
    """Read the shard's segment files once, in a thread of lower priority, so that the
    page cache holds them. The engine maps its payloads and indexes from these files and
    leaves them out of the cache when a shard is closed: after a restart each search
    would otherwise read from disk what it touches first (at 100,000 chunks, searches
    took 2-3x as long for their first thousand queries). Skipped when the files would
    take more than half of the memory available."""
    files = [p for p in (Path(path) / "segments").rglob("*") if p.is_file()]
    with contextlib.suppress(OSError):
        size = sum(p.stat().st_size for p in files)
        if size > _available_memory() // 2:
            return
    threading.Thread(target=_read_all, args=(files,), name="warm", daemon=True).start()


def _read_all(files: list[Path]) -> None:
    _lower_priority()
    for file in files:
        with contextlib.suppress(OSError), open(file, "rb", buffering=0) as stream:
            while stream.read(1 << 20):  # the GIL is let go while it reads
                pass


def _available_memory() -> int:
    """MemAvailable from /proc/meminfo, in bytes (0 where there is none: no warming)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _retry_while_locked(load: Any, seconds: float = 15.0) -> Any:
    """``load()``, again while the shard's WAL is locked: the engine of a process that has
    just exited may still be flushing it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return load()
        except Exception as exc:
            if "WouldBlock" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer requests until ``close`` or the end of input; the shard is flushed either way."""
    shard = Shard()
    try:
        while True:
            try:
                request_id, method, kwargs = read_frame(requests)
            except EOFError:
                return
            try:
                result = getattr(shard, method)(**kwargs)
            except Exception as exc:  # answered, not fatal: the parent raises it
                write_frame(answers, (request_id, False, (type(exc).__name__, str(exc))))
            else:
                write_frame(answers, (request_id, True, result))
            if method == "close":
                return
    finally:
        shard.close()


if __name__ == "__main__":
    # The pipes are the protocol's: nothing else may write to stdout.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)
