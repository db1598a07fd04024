"""The vector store under test, once per backend: the embedded engine (Qdrant Edge in its
own process) and the server backend, which runs against qdrant-client's own local backend
through the same client API (no Qdrant server can run here; only the transport differs)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from agentrig.knowledge.edge import EdgeVectorStore
from agentrig.knowledge.qdrant import QdrantVectorStore
from agentrig.knowledge.vectors import VectorStore

BACKENDS = ["edge", "qdrant"]


def make_store(backend: str, folder: Path) -> VectorStore:
    """A store on ``folder``; a second one made later on the same folder reopens it."""
    if backend == "edge":
        return EdgeVectorStore(folder / "vectors")
    warnings.filterwarnings("ignore", "Payload indexes have no effect")
    return QdrantVectorStore(client=AsyncQdrantClient(path=str(folder / "qdrant")))


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
async def store(backend, tmp_path):
    store = make_store(backend, tmp_path)
    yield store
    await store.aclose()
