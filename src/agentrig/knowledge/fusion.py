"""Fusion: one ranking out of the dense and the keyword ones, weighted.

Cosine similarities and BM25 scores live on unrelated scales, so they are put on one
before they are added. Three ways, ``knowledge.fusion``:

- ``"rrf"``, reciprocal rank fusion (Cormack et al., 2009, with a weight per ranking): a
  hit scores ``sum(weight / (k + rank))`` over the rankings that hold it (rank 1 is the
  best). Only ranks count, so it needs no calibration, and ignores how far apart hits are.
- ``"convex"``, a convex combination of min-max normalised scores: each ranking's scores
  are mapped to 0..1 (its best hit 1, its last candidate 0) and a hit scores
  ``sum(weight * normalised score)``, 0 from a ranking that does not hold it (Bruch et al.,
  2023, found it better than RRF once the weights are tuned). The default.
- ``"dbsf"``, distribution-based score fusion (as Qdrant's ``Fusion.DBSF``): the same,
  each ranking mapped from ``mean - 3 std .. mean + 3 std`` of its scores to 0..1.

It is hand written rather than Qdrant's ``FusionQuery`` because Qdrant gives every ranking
the same weight (``knowledge.dense_weight`` and ``keyword_weight`` need their own), and
because the store's two searches come back as separate lists, from any store.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

from agentrig.knowledge.vectors import Hit

__all__ = ["FUSION_METHODS", "FusionMethod", "fuse", "reciprocal_rank_fusion", "score_fusion"]

FusionMethod = Literal["rrf", "convex", "dbsf"]
FUSION_METHODS: tuple[FusionMethod, ...] = ("rrf", "convex", "dbsf")
Rankings = Sequence[tuple[float, Sequence[Hit]]]
_Key = tuple[str, int, str]


def fuse(
    rankings: Rankings, *, method: FusionMethod = "rrf", rrf_k: int = 60, top_k: int
) -> list[Hit]:
    """The ``top_k`` best hits of ``(weight, hits best first)`` rankings, fused by
    ``method`` (``rrf_k`` is RRF's ``k``). See the module's docstring."""
    if method == "rrf":
        return reciprocal_rank_fusion(rankings, k=rrf_k, top_k=top_k)
    if method in ("convex", "dbsf"):
        return score_fusion(rankings, normalization=method, top_k=top_k)
    raise ValueError(f"fusion method must be one of {FUSION_METHODS}, not {method!r}")


def reciprocal_rank_fusion(rankings: Rankings, *, k: int = 60, top_k: int) -> list[Hit]:
    """The ``top_k`` best hits of ``(weight, hits best first)`` rankings, fused by rank.

    A hit is its :attr:`Hit.key` (document, chunk and point id; a search without
    payloads knows the point alone): one found by several rankings adds up their shares
    and keeps the fields of its first appearance, with the fused score. Within a ranking
    only its best rank counts; a ranking of weight 0 is left out. Ties go to the smaller
    key, so equal inputs fuse equally."""
    if k < 0 or top_k < 1:
        raise ValueError(f"need k >= 0 and top_k >= 1, got k={k}, top_k={top_k}")
    scores: dict[_Key, float] = {}
    hits: dict[_Key, Hit] = {}
    for weight, ranking in _weighted(rankings):
        seen: set[_Key] = set()
        for rank, hit in enumerate(ranking, start=1):
            key = hit.key
            if key not in seen:  # ranks stay those of the list, repeats included
                seen.add(key)
                scores[key] = scores.get(key, 0.0) + weight / (k + rank)
                hits.setdefault(key, hit)
    return _best(scores, hits, top_k)


def score_fusion(
    rankings: Rankings, *, normalization: Literal["convex", "dbsf"] = "convex", top_k: int
) -> list[Hit]:
    """The ``top_k`` best hits of ``(weight, hits best first)`` rankings, fused by score:
    ``sum(weight * normalised score)``, min-max (``"convex"``) or mean +- 3 standard
    deviations (``"dbsf"``) normalised within each ranking's hits. A ranking whose hits
    all score the same gives each 1. Hits, weights and ties as in RRF."""
    if top_k < 1:
        raise ValueError(f"need top_k >= 1, got top_k={top_k}")
    if normalization not in ("convex", "dbsf"):
        raise ValueError(f"normalization must be 'convex' or 'dbsf', not {normalization!r}")
    scores: dict[_Key, float] = {}
    hits: dict[_Key, Hit] = {}
    for weight, ranking in _weighted(rankings):
        distinct = _distinct(ranking)
        if not distinct:
            continue
        values = [hit.score for hit in distinct]
        if normalization == "dbsf":
            mean = math.fsum(values) / len(values)
            spread = 3 * math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
            low, high = mean - spread, mean + spread
        else:
            low, high = min(values), max(values)
        for hit in distinct:
            key = hit.key
            share = (hit.score - low) / (high - low) if high > low else 1.0
            scores[key] = scores.get(key, 0.0) + weight * share
            hits.setdefault(key, hit)
    return _best(scores, hits, top_k)


def _weighted(rankings: Rankings) -> list[tuple[float, Sequence[Hit]]]:
    """The rankings of positive weight; a negative weight is an error."""
    for weight, _ in rankings:
        if weight < 0 or math.isnan(weight):
            raise ValueError(f"ranking weights must not be negative, got {weight}")
    return [(weight, ranking) for weight, ranking in rankings if weight > 0]


def _distinct(ranking: Sequence[Hit]) -> list[Hit]:
    """The ranking's hits, each :attr:`Hit.key` at its best rank only."""
    seen: set[_Key] = set()
    out = []
    for hit in ranking:
        key = hit.key
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out


def _best(scores: dict[_Key, float], hits: dict[_Key, Hit], top_k: int) -> list[Hit]:
    best = sorted(scores, key=lambda key: (-scores[key], key))[:top_k]
    return [dataclasses.replace(hits[key], score=scores[key]) for key in best]
