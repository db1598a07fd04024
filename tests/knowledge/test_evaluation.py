"""The retrieval metrics, against values worked out by hand, and BEIR loading."""

from __future__ import annotations

import math

import pytest

from agentrig.knowledge.evaluation import Dataset, ndcg_at, recall_at


def test_ndcg_and_recall_by_hand():
    relevant = {"a": 1, "b": 2}
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(["b", "a", "x"], relevant) == pytest.approx(1.0)
    assert ndcg_at(["x", "a", "b"], relevant) == pytest.approx(
        (1 / math.log2(3) + 2 / math.log2(4)) / ideal
    )
    assert ndcg_at(["x", "y"], relevant) == 0.0
    assert recall_at(["x", "a"], relevant) == 0.5
    assert recall_at(["a"] + ["x"] * 9 + ["b"], relevant, k=10) == 0.5  # b is 11th


def test_dataset_loading_keeps_judged_queries_only(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "T", "text": "x"}\n{"_id": "d2", "text": "y"}\n'
    )
    (tmp_path / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "?"}\n{"_id": "q2", "text": "!"}\n'
    )
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td2\t1\nq1\td1\t0\n"
    )
    data = Dataset.load(tmp_path)
    assert data.corpus == {"d1": ("T", "x"), "d2": ("", "y")}
    assert data.queries == {"q1": "?"} and data.qrels == {"q1": {"d2": 1}}
    with pytest.raises(FileNotFoundError, match=r"corpus\.jsonl"):
        Dataset.load(tmp_path / "qrels")
