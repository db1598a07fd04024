"""Weighted rank and score fusion on hand-made rankings."""

from __future__ import annotations

import random

import pytest

from agentrig.knowledge.fusion import FUSION_METHODS, fuse, reciprocal_rank_fusion, score_fusion
from agentrig.knowledge.vectors import Hit


def hit(document_id: str, chunk_index: int = 0, score: float = 0.0, **metadata) -> Hit:
    return Hit(
        document_id=document_id,
        chunk_index=chunk_index,
        text=f"{document_id}#{chunk_index}",
        score=score,
        page=metadata.get("page"),
        heading=None,
        metadata=metadata,
        kb="kb",
    )


def keys(hits: list[Hit]) -> list[tuple[str, int]]:
    return [(h.document_id, h.chunk_index) for h in hits]


def test_scores_are_weighted_sums_of_reciprocal_ranks():
    dense = [hit("a", score=0.9, page=4), hit("b", score=0.8), hit("c", score=0.7)]
    keywords = [hit("c", score=12.0), hit("a", score=3.0), hit("d", score=1.0)]
    fused = reciprocal_rank_fusion([(1.0, dense), (2.0, keywords)], k=10, top_k=10)
    expected = {
        ("a", 0): 1 / 11 + 2 / 12,
        ("b", 0): 1 / 12,
        ("c", 0): 1 / 13 + 2 / 11,
        ("d", 0): 2 / 13,
    }
    assert keys(fused) == sorted(expected, key=lambda key: -expected[key])
    assert {key: h.score for key, h in zip(keys(fused), fused, strict=True)} == pytest.approx(
        expected
    )
    a = next(h for h in fused if h.document_id == "a")
    assert (a.page, a.metadata, a.text, a.kb) == (4, {"page": 4}, "a#0", "kb")  # fields kept


def test_k_flattens_the_preference_for_top_ranks():
    dense = [hit("a"), hit("x"), hit("b")]
    keywords = [hit("y"), hit("z"), hit("b")]
    # small k: first in one ranking beats third in both; large k: the reverse
    small = reciprocal_rank_fusion([(1.0, dense), (1.0, keywords)], k=0, top_k=1)
    assert keys(small) == [("a", 0)]
    assert small[0].score == pytest.approx(1.0)
    large = reciprocal_rank_fusion([(1.0, dense), (1.0, keywords)], k=60, top_k=1)
    assert keys(large) == [("b", 0)]
    assert large[0].score == pytest.approx(2 / 63)


def test_weights_decide_between_rankings():
    dense, keywords = [hit("a"), hit("b")], [hit("b"), hit("a")]
    assert keys(reciprocal_rank_fusion([(2.0, dense), (1.0, keywords)], top_k=1)) == [("a", 0)]
    assert keys(reciprocal_rank_fusion([(1.0, dense), (2.0, keywords)], top_k=1)) == [("b", 0)]
    only_dense = reciprocal_rank_fusion([(1.0, dense), (0.0, [hit("z")])], top_k=5)
    assert keys(only_dense) == [("a", 0), ("b", 0)]  # weight 0 leaves a ranking out


def test_hits_are_deduplicated_by_document_and_chunk():
    ranking = [hit("a", 0), hit("a", 1), hit("a", 0), hit("b", 0)]
    fused = reciprocal_rank_fusion([(1.0, ranking)], k=0, top_k=10)
    assert keys(fused) == [("a", 0), ("a", 1), ("b", 0)]
    assert [h.score for h in fused] == pytest.approx([1 / 1, 1 / 2, 1 / 4])  # best rank only


def test_top_k_and_deterministic_ties():
    first = [hit("b"), hit("d")]
    second = [hit("a"), hit("c")]
    fused = reciprocal_rank_fusion([(1.0, first), (1.0, second)], top_k=3)
    assert keys(fused) == [("a", 0), ("b", 0), ("c", 0)]  # equal scores: by key
    shuffled = reciprocal_rank_fusion([(1.0, second), (1.0, first)], top_k=3)
    assert keys(shuffled) == keys(fused)
    rng = random.Random(3)
    rankings = [(1.0, [hit(f"d{rng.randrange(20)}", rng.randrange(3)) for _ in range(15)])]
    assert reciprocal_rank_fusion(rankings, top_k=7) == reciprocal_rank_fusion(rankings, top_k=7)
    assert reciprocal_rank_fusion([], top_k=3) == []
    assert reciprocal_rank_fusion([(1.0, [])], top_k=3) == []


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="top_k"):
        reciprocal_rank_fusion([(1.0, [hit("a")])], top_k=0)
    with pytest.raises(ValueError, match="k >= 0"):
        reciprocal_rank_fusion([(1.0, [hit("a")])], k=-1, top_k=1)
    with pytest.raises(ValueError, match="negative"):
        reciprocal_rank_fusion([(-1.0, [hit("a")])], top_k=1)


def test_convex_fusion_adds_weighted_min_max_normalised_scores():
    dense = [hit("a", score=0.9), hit("b", score=0.7), hit("c", score=0.5)]
    keywords = [hit("c", score=20.0), hit("d", score=15.0), hit("a", score=10.0)]
    fused = score_fusion([(0.6, dense), (0.4, keywords)], normalization="convex", top_k=10)
    expected = {
        ("a", 0): 0.6 * 1.0 + 0.4 * 0.0,  # best dense, last keyword candidate
        ("b", 0): 0.6 * 0.5,
        ("c", 0): 0.6 * 0.0 + 0.4 * 1.0,
        ("d", 0): 0.4 * 0.5,  # not in the dense ranking: nothing from it
    }
    assert keys(fused) == [("a", 0), ("c", 0), ("b", 0), ("d", 0)]
    assert {key: h.score for key, h in zip(keys(fused), fused, strict=True)} == pytest.approx(
        expected
    )
    # by rank, c (1st and 3rd) and a (1st and 3rd) tie; by score the gap between them counts
    assert keys(fuse([(1.0, dense), (1.0, keywords)], method="rrf", top_k=2)) == [
        ("a", 0),
        ("c", 0),
    ]
    wide = [hit("a", score=0.9), hit("b", score=0.89), hit("c", score=0.2)]
    narrow = [hit("c", score=10.0), hit("b", score=9.9), hit("a", score=9.8)]
    assert keys(fuse([(1.0, wide), (1.0, narrow)], method="convex", top_k=1)) == [("b", 0)]


def test_dbsf_maps_three_standard_deviations_around_the_mean():
    dense = [hit("a", score=3.0), hit("b", score=1.0)]  # mean 2, std 1: 3 -> 4/6, 1 -> 2/6
    fused = fuse([(1.0, dense)], method="dbsf", top_k=5)
    assert [h.score for h in fused] == pytest.approx([4 / 6, 2 / 6])
    keywords = [hit("b", score=7.0), hit("c", score=7.0)]  # all alike: each scores 1
    fused = fuse([(1.0, dense), (0.5, keywords)], method="dbsf", top_k=5)
    assert keys(fused) == [("b", 0), ("a", 0), ("c", 0)]
    assert [h.score for h in fused] == pytest.approx([2 / 6 + 0.5, 4 / 6, 0.5])


def test_score_fusion_keeps_fields_best_rank_and_deterministic_ties():
    ranking = [hit("a", 0, 5.0, page=2), hit("b", 0, 3.0), hit("a", 0, 1.0), hit("c", 0, 3.0)]
    fused = fuse([(1.0, ranking)], method="convex", top_k=10)
    assert keys(fused) == [("a", 0), ("b", 0), ("c", 0)]  # a once, b and c tie: by key
    assert [h.score for h in fused] == pytest.approx([1.0, 0.0, 0.0])  # a's repeat is left out
    assert (fused[0].page, fused[0].text) == (2, "a#0")
    assert fuse([(1.0, []), (0.0, ranking)], method="convex", top_k=3) == []
    assert fuse([(1.0, ranking[1:2])], method="convex", top_k=3)[0].score == 1.0  # one hit


def test_fuse_refuses_unknown_methods_and_bad_arguments():
    with pytest.raises(ValueError, match="fusion method must be one of"):
        fuse([(1.0, [hit("a")])], method="magic", top_k=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k"):
        fuse([(1.0, [hit("a")])], method="convex", top_k=0)
    with pytest.raises(ValueError, match="negative"):
        fuse([(-0.5, [hit("a")])], method="dbsf", top_k=1)
    assert set(FUSION_METHODS) == {"rrf", "convex", "dbsf"}


@pytest.mark.parametrize("method", FUSION_METHODS)
def test_hits_known_by_point_id_alone_fuse_by_it(method):
    """A search without payloads gives point ids only: the same id is the same chunk."""
    dense = [Hit.from_point("kb", s, p) for s, p in ((0.9, "p1"), (0.8, "p2"), (0.1, "p3"))]
    keywords = [Hit.from_point("kb", s, p) for s, p in ((7.0, "p2"), (6.0, "p4"), (1.0, "p1"))]
    fused = fuse([(1.0, dense), (1.0, keywords)], method=method, top_k=4)
    assert sorted(h.point for h in fused) == ["p1", "p2", "p3", "p4"]  # no repeats
    assert {fused[0].point, fused[1].point} == {"p1", "p2"}  # found by both rankings
    assert all(h.document_id == "" and h.chunk_index == -1 for h in fused)
