"""Retrieval: dense similarity and BM25 keyword search, fused into one ranking.

``mode="hybrid"`` (the default) asks both rankings of the store for
:func:`candidates_per_ranking` chunks each and fuses them in Python by
``knowledge.fusion`` (a convex combination of normalised scores by default, see
``fusion.py``),
weighted by ``dense_weight`` and ``keyword_weight``; ``"dense"`` and
``"keywords"`` use one ranking alone (``agentrig eval retrieval`` compares the three).
``min_score`` is a cosine-similarity threshold on the dense ranking: keyword matches are
kept on their own merit. Every hit carries its document, chunk, page, heading and score,
and only the tenant's chunks are searched. While a search runs, the process's writes to
the embedded store wait for it (``foreground.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agentrig.config import KnowledgeSettings
from agentrig.knowledge.foreground import searches
from agentrig.knowledge.fusion import fuse
from agentrig.knowledge.vectors import Hit, VectorStore
from agentrig.llm.types import Embedder

Mode = Literal["hybrid", "dense", "keywords"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "keywords")


def candidates_per_ranking(top_k: int, at_least: int = 100) -> int:
    """How many chunks hybrid search asks each ranking for, to return ``top_k``: a chunk
    ranked low by one ranking and high by the other must still reach the fusion, and score
    fusion normalises each ranking by its candidates' scores, steadier over more of them
    (``knowledge.fusion_candidates`` is ``at_least``)."""
    return max(4 * top_k, at_least)


@dataclass
class Retriever:
    """Searches the knowledge bases in ``vectors``, embedding queries with ``embedder``."""

    vectors: VectorStore
    embedder: Embedder
    settings: KnowledgeSettings

    async def search(
        self,
        query: str,
        *,
        tenant: str,
        kb: str | None = None,
        top_k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        min_score: float | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The ``top_k`` chunks of ``kb`` that best answer ``query``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if not query.strip():
            raise ValueError("query: empty; say what to search for")
        settings = self.settings
        kb = kb or settings.default_kb
        top_k = top_k or settings.top_k
        threshold = settings.min_score if min_score is None else min_score
        depth = top_k
        if mode == "hybrid":
            depth = candidates_per_ranking(top_k, settings.fusion_candidates)
        where = {
            "tenant": tenant,
            "top_k": depth,
            "filters": dict(filters or {}) or None,
            "payload": mode != "hybrid",  # fused: only the winners' texts are fetched
        }

        async def by_meaning() -> list[Hit]:
            if mode == "keywords":
                return []
            [vector] = await self.embedder.embed([query])
            return await self.vectors.search_dense(kb, vector, min_score=threshold, **where)

        async def by_keywords() -> list[Hit]:
            if mode == "dense":
                return []
            return await self.vectors.search_keywords(kb, query, **where)

        # the process's writes to the embedded store wait while it runs (foreground.py)
        with searches.searching():
            # at once: the keyword search runs while the query is embedded, and the store
            # has the second search in hand when it finishes the first
            dense, keywords = await asyncio.gather(by_meaning(), by_keywords())
            if mode == "dense":
                return dense[:top_k]
            if mode == "keywords":
                return keywords[:top_k]
            rankings = [(settings.dense_weight, dense), (settings.keyword_weight, keywords)]
            fused = fuse(rankings, method=settings.fusion, rrf_k=settings.rrf_k, top_k=top_k)
            return await self.vectors.with_payloads(kb, tenant, fused)
