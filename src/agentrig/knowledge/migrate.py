"""Moving knowledge bases from the embedded store of earlier agentrig to the current one.

agentrig used to embed qdrant-client's local mode (points in SQLite under
``knowledge.qdrant_path``, searched in pure Python). :func:`migrate` reads every
``agentrig_*`` collection there, page by page with its dense vectors and payloads, and
writes the chunks into the target store under the same point ids; the keyword vectors
are computed again from the chunk texts by the same tokenizer, so the knowledge base
answers as before. Once every collection is written and its count checked, the old folder
is renamed ``<name>.migrated`` (kept, not deleted: remove it when satisfied). An
interrupted migration can be run again: the writes are idempotent, and until the rename
the embedded store refuses the knowledge bases still found in the old folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentrig.knowledge.vectors import COLLECTION_PREFIX, DENSE, ChunkRecord, VectorStore

__all__ = ["Migrated", "legacy_collections", "migrate"]

PAGE = 500

Progress = Callable[[str, int, int], None]  # knowledge base, chunks done, chunks in all


@dataclass(frozen=True)
class Migrated:
    counts: dict[str, int]  # knowledge base -> chunks moved
    kept_at: Path | None  # where the old folder went


def legacy_collections(path: Path) -> list[str]:
    """The knowledge bases in an old embedded folder (none if there is no such folder)."""
    folder = path / "collection"
    if not folder.is_dir():
        return []
    return sorted(
        entry.name.removeprefix(COLLECTION_PREFIX)
        for entry in folder.iterdir()
        if entry.is_dir() and entry.name.startswith(COLLECTION_PREFIX)
    )


async def migrate(
    legacy_path: Path, target: VectorStore, *, progress: Progress | None = None
) -> Migrated:
    """Move every knowledge base at ``legacy_path`` into ``target``; see the module doc."""
    kbs = legacy_collections(legacy_path)
    if not kbs:
        return Migrated({}, None)
    from qdrant_client import QdrantClient  # local mode: only a migration needs it

    try:
        client = await asyncio.to_thread(QdrantClient, path=str(legacy_path))
    except RuntimeError as exc:  # its folder lock is held
        raise RuntimeError(
            f"the old embedded store at {legacy_path} is in use by another process: "
            "stop it (an agentrig of an earlier version) and migrate again"
        ) from exc
    counts: dict[str, int] = {}
    try:
        for kb in kbs:
            counts[kb] = await _move(client, kb, target, progress)
    finally:
        await asyncio.to_thread(client.close)
    kept_at = _free_name(legacy_path.with_name(legacy_path.name + ".migrated"))
    legacy_path.rename(kept_at)
    return Migrated(counts, kept_at)


async def _move(client: Any, kb: str, target: VectorStore, progress: Progress | None) -> int:
    name = COLLECTION_PREFIX + kb
    total = (await asyncio.to_thread(client.count, name, exact=True)).count
    done, offset = 0, None
    while True:
        points, offset = await asyncio.to_thread(
            client.scroll, name, limit=PAGE, offset=offset, with_payload=True, with_vectors=[DENSE]
        )
        records = [_record(point) for point in points]
        await target.upsert(kb, records)
        done += len(records)
        if progress is not None:
            progress(kb, done, total)
        if offset is None:
            break
    stored = await target.count(kb)
    if stored < total:
        raise RuntimeError(
            f"knowledge base {kb!r}: {total} chunks in the old store, {stored} after moving "
            "them; the old store is left as it was"
        )
    return total


def _record(point: Any) -> ChunkRecord:
    payload = point.payload or {}
    vector = point.vector[DENSE] if isinstance(point.vector, dict) else point.vector
    return ChunkRecord(
        tenant=payload["tenant"],
        document_id=payload["document_id"],
        chunk_index=payload["chunk_index"],
        text=payload["text"],
        vector=list(vector),
        metadata=payload.get("metadata") or {},
        text_hash=payload.get("text_hash") or "",
    )


def _free_name(path: Path) -> Path:
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}-{number}")
    return candidate
