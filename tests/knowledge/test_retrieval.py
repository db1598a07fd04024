"""Hybrid retrieval over a store of fixed rankings: the fusion settings decide the order,
each ranking is asked for enough candidates, and bad settings are refused by name."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from agentrig.config import KnowledgeSettings, load_settings
from agentrig.errors import ConfigError
from agentrig.knowledge.retrieval import Retriever, candidates_per_ranking
from agentrig.knowledge.vectors import Hit


def hit(document_id: str, score: float) -> Hit:
    return Hit(document_id, 0, document_id, score, None, None, {}, "kb")


class FixedStore:
    """A store whose searches return the same rankings, recording what was asked."""

    def __init__(self) -> None:
        # a is first by meaning by far; c leads the keywords by a hair, a is close behind
        self.dense = [hit("a", 0.9), hit("b", 0.5), hit("c", 0.1)]
        self.keywords = [hit("c", 10.0), hit("a", 9.9), hit("d", 1.0)]
        self.asked: list[tuple[str, int]] = []

    async def search_dense(self, kb: str, vector: Sequence[float], *, top_k: int, **_) -> list[Hit]:
        self.asked.append(("dense", top_k))
        return self.dense[:top_k]

    async def search_keywords(self, kb: str, query: str, *, top_k: int, **_) -> list[Hit]:
        self.asked.append(("keywords", top_k))
        return self.keywords[:top_k]

    async def with_payloads(self, kb: str, tenant: str, hits: Sequence[Hit]) -> list[Hit]:
        self.asked.append(("payloads", len(hits)))
        return list(hits)


class OneVector:
    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]


async def search(settings: KnowledgeSettings, **kwargs) -> tuple[list[str], FixedStore]:
    store = FixedStore()
    retriever = Retriever(store, OneVector(), settings)  # type: ignore[arg-type]
    hits = await retriever.search("q", tenant="t", **kwargs)
    return [h.document_id for h in hits], store


async def test_the_fusion_settings_decide_the_order():
    settings = KnowledgeSettings()
    assert (settings.fusion, settings.dense_weight, settings.keyword_weight) == (
        "convex",
        0.45,
        0.55,
    )
    # min-max: a 0.45 * 1 + 0.55 * 8.9 / 9 = 0.994, c 0.55 * 1, b 0.45 * 0.5, d 0
    ranked, store = await search(settings, top_k=4)
    assert ranked == ["a", "c", "b", "d"]
    # fusion_candidates a ranking, without their texts; then the winners' texts alone
    assert store.asked == [("dense", 100), ("keywords", 100), ("payloads", 4)]
    # dense mean 0.5, std 0.327: a 0.704, c 0.296; keywords mean 6.97, std 4.22: c 0.620,
    # a 0.616; weights 0.2 / 0.8: a 0.634, c 0.555; b 0.1 against d's 0.211
    dbsf = KnowledgeSettings(fusion="dbsf", dense_weight=0.2, keyword_weight=0.8)
    ranked, _ = await search(dbsf, top_k=4)
    assert ranked == ["a", "c", "d", "b"]
    by_rank = KnowledgeSettings(fusion="rrf", dense_weight=1, keyword_weight=2)
    ranked, _ = await search(by_rank)
    assert ranked[:2] == ["c", "a"]  # by rank alone, c (3rd and 1st) beats a (1st and 2nd)
    keywords_only, _ = await search(KnowledgeSettings(dense_weight=0), top_k=4)
    assert keywords_only == ["c", "a", "d"]
    _, store = await search(KnowledgeSettings(fusion_candidates=10), top_k=3)
    assert store.asked[:2] == [("dense", 12), ("keywords", 12)]  # 4 * top_k when more


async def test_single_modes_ask_one_ranking_for_top_k():
    ranked, store = await search(KnowledgeSettings(), top_k=2, mode="keywords")
    assert ranked == ["c", "a"] and store.asked == [("keywords", 2)]
    ranked, store = await search(KnowledgeSettings(), top_k=1, mode="dense")
    assert ranked == ["a"] and store.asked == [("dense", 1)]


def test_each_ranking_gives_four_times_top_k_candidates_or_the_minimum():
    assert [candidates_per_ranking(k) for k in (1, 5, 25, 30)] == [100, 100, 100, 120]
    assert [candidates_per_ranking(k, 20) for k in (1, 5, 6)] == [20, 20, 24]


def test_bad_fusion_settings_are_refused_by_name():
    with pytest.raises(ValidationError, match="fusion"):
        KnowledgeSettings(fusion="magic")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="keyword_weight"):
        KnowledgeSettings(keyword_weight=-1)
    with pytest.raises(ValidationError, match="dense_weight"):
        KnowledgeSettings(dense_weight=float("nan"))
    with pytest.raises(ValidationError, match="fusion_candidates"):
        KnowledgeSettings(fusion_candidates=0)
    with pytest.raises(ConfigError, match="dense_weight and keyword_weight are both 0"):
        load_settings(knowledge={"dense_weight": 0, "keyword_weight": 0.0})
    assert KnowledgeSettings(dense_weight=0).keyword_weight == 0.55  # one ranking is enough


async def test_a_search_is_marked_for_the_writers_from_embedding_to_payloads():
    from agentrig.knowledge.foreground import searches

    seen: list[int] = []

    class Watching(FixedStore):
        async def search_dense(self, kb: str, vector: Sequence[float], **kw) -> list[Hit]:
            seen.append(searches.running)
            return await super().search_dense(kb, vector, **kw)

        async def search_keywords(self, kb: str, query: str, **kw) -> list[Hit]:
            seen.append(searches.running)
            return await super().search_keywords(kb, query, **kw)

        async def with_payloads(self, kb: str, tenant: str, hits: Sequence[Hit]) -> list[Hit]:
            seen.append(searches.running)
            return await super().with_payloads(kb, tenant, hits)

    retriever = Retriever(Watching(), OneVector(), KnowledgeSettings())  # type: ignore[arg-type]
    for mode in ("hybrid", "dense", "keywords"):
        await retriever.search("q", tenant="t", mode=mode)  # type: ignore[arg-type]
    assert seen == [1, 1, 1, 1, 1] and searches.running == 0
