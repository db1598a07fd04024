"""Weighted reciprocal rank fusion: one ranking out of the dense and the keyword ones.

Cosine similarities and BM25 scores live on unrelated scales, so hybrid retrieval fuses
ranks, not scores: a hit scores ``sum(weight / (k + rank))`` over the rankings that hold
it (rank 1 is the best; Cormack et al., 2009, with a weight per ranking). It is hand
written rather than Qdrant's ``FusionQuery(fusion=RRF)`` because Qdrant's RRF gives every
ranking the same weight (``knowledge.dense_weight`` and ``keyword_weight`` need their own),
and because the store's two searches already come back as separate lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from agentrig.knowledge.vectors import Hit

__all__ = ["reciprocal_rank_fusion"]


def reciprocal_rank_fusion(
    rankings: Sequence[tuple[float, Sequence[Hit]]], *, k: int = 60, top_k: int
) -> list[Hit]:
    """The ``top_k`` best hits of ``(weight, hits best first)`` rankings, fused.

    A hit is its ``(document_id, chunk_index)``: one found by several rankings adds up
    their shares and keeps the fields of its first appearance, with the fused score.
    Within a ranking only its best rank counts; a ranking of weight 0 is left out. Ties
    go to the smaller ``(document_id, chunk_index)``, so equal inputs fuse equally."""
    if k < 0 or top_k < 1:
        raise ValueError(f"need k >= 0 and top_k >= 1, got k={k}, top_k={top_k}")
    scores: dict[tuple[str, int], float] = {}
    hits: dict[tuple[str, int], Hit] = {}
    for weight, ranking in rankings:
        if weight < 0:
            raise ValueError(f"ranking weights must not be negative, got {weight}")
        if weight == 0:
            continue
        seen: set[tuple[str, int]] = set()
        for rank, hit in enumerate(ranking, start=1):
            key = (hit.document_id, hit.chunk_index)
            if key in seen:
                continue
            seen.add(key)
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
            hits.setdefault(key, hit)
    best = sorted(scores, key=lambda key: (-scores[key], key))[:top_k]
    return [dataclasses.replace(hits[key], score=scores[key]) for key in best]
