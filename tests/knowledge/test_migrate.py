"""Migration of a knowledge base made by the earlier embedded store (qdrant-client's local
mode), from a data directory written by that code (fixtures/legacy-store/README.md): the
dense answers are those the old code gave, scores included; the keyword answers those of
the old chunks indexed afresh (the BM25 settings changed since the fixture was made)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from typer.testing import CliRunner

from agentrig.cli import app
from agentrig.config import load_settings
from agentrig.knowledge.edge import EdgeVectorStore, LegacyKnowledgeBase
from agentrig.knowledge.migrate import legacy_collections, migrate
from agentrig.knowledge.service import Knowledge
from agentrig.knowledge.vectors import ChunkRecord
from agentrig.llm.router import ModelRouter
from agentrig.store import Database

LEGACY = Path(__file__).parent / "fixtures" / "legacy-store"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A copy of the old data directory, where the tests' settings point."""
    shutil.copytree(
        LEGACY, tmp_path / "data", ignore=shutil.ignore_patterns("expected.json", "README.md")
    )
    return tmp_path / "data"


async def answers(knowledge: Knowledge) -> dict:
    found: dict = {}
    for key in EXPECTED:
        if key.startswith("count:"):
            continue
        mode, question = key.split(":", 1)
        hits = await knowledge.retriever.search(
            question, tenant="default", kb="samples", top_k=5, mode=mode
        )
        found[key] = [[h.document_id, h.chunk_index, round(h.score, 4)] for h in hits]
    found["count:samples"] = await knowledge.vectors.count("samples")
    found["count:notes:t2"] = await knowledge.vectors.count("notes", "t2")
    return found


async def fresh_keyword_answers(legacy: Path, folder: Path) -> dict:
    """The keyword answers of the old store's chunks indexed afresh, read straight from it."""
    client = QdrantClient(path=str(legacy))
    points, _ = client.scroll("agentrig_samples", limit=1000, with_payload=True, with_vectors=True)
    client.close()
    records = [
        ChunkRecord(
            p.payload["tenant"],
            p.payload["document_id"],
            p.payload["chunk_index"],
            p.payload["text"],
            p.vector["dense"],
            p.payload["metadata"],
        )
        for p in points
    ]
    store = EdgeVectorStore(folder)
    await store.upsert("samples", records)
    answers = {}
    for key in EXPECTED:
        if key.startswith("keywords:"):
            question = key.removeprefix("keywords:")
            hits = await store.search_keywords("samples", question, tenant="default", top_k=5)
            answers[key] = [[h.document_id, h.chunk_index, round(h.score, 4)] for h in hits]
    await store.aclose()
    return answers


async def test_the_old_store_is_refused_until_migrated_then_answers_as_before(data_dir):
    settings = load_settings()
    assert legacy_collections(settings.qdrant_path) == ["notes", "samples"]
    database = await Database.open(settings)
    router = ModelRouter.from_settings(settings)
    knowledge = Knowledge.open(settings, database, router)
    try:
        with pytest.raises(LegacyKnowledgeBase, match="agentrig knowledge migrate"):
            await knowledge.retriever.search("battery", tenant="default", kb="samples")
        target = EdgeVectorStore.from_settings(settings, check_legacy=False)
        seen: list[tuple[str, int, int]] = []
        moved = await migrate(settings.qdrant_path, target, progress=lambda *a: seen.append(a))
        await target.aclose()
        assert moved.counts == {"notes": 1, "samples": EXPECTED["count:samples"]}
        assert seen[-1] == ("samples", EXPECTED["count:samples"], EXPECTED["count:samples"])
        assert moved.kept_at == data_dir / "qdrant.migrated"
        assert (moved.kept_at / "collection" / "agentrig_samples").is_dir()  # kept
        assert legacy_collections(settings.qdrant_path) == []
        found = await answers(knowledge)
        dense = {key: value for key, value in EXPECTED.items() if not key.startswith("keywords")}
        assert {key: found[key] for key in dense} == dense  # vectors and payloads, intact
        # keyword vectors are recomputed with today's BM25 settings: as a fresh index of
        # the old chunks would have them
        assert {key: found[key] for key in found if key.startswith("keywords")} == (
            await fresh_keyword_answers(moved.kept_at, data_dir.parent / "fresh")
        )
        # the documents' rows and files came along untouched: a document can be deleted
        [document, *_] = await knowledge.documents.list("default", kb="samples")
        await knowledge.delete_document("default", document.id)
        assert await knowledge.vectors.count("samples") == (
            EXPECTED["count:samples"] - document.chunk_count
        )
    finally:
        await knowledge.aclose()
        await router.aclose()
        await database.aclose()


def test_the_cli_migrates_on_start_and_the_command_says_when_there_is_nothing(data_dir):
    runner = CliRunner()
    result = runner.invoke(app, ["search", "How long does a full charge take?", "--kb", "samples"])
    assert result.exit_code == 0, result.output
    assert "moving the knowledge bases" in result.output
    assert "samples:" in result.output and "chunks moved" in result.output
    assert "lumen-e3-manual.md" in result.output  # and then it searched the migrated base
    assert not (data_dir / "qdrant").exists()
    result = runner.invoke(app, ["knowledge", "migrate"])
    assert result.exit_code == 0, result.output
    assert "nothing to migrate" in result.output
