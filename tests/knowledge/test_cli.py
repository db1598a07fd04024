"""agentrig ingest, search and eval retrieval on the sample knowledge base."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import agentrig
from agentrig.cli import app

SAMPLES = Path(agentrig.__file__).parent / "samples"


def test_ingest_then_search_shows_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTRIG_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7 truncated")
    result = runner.invoke(app, ["ingest", str(SAMPLES / "kb"), str(bad), "--kb", "lumen"])
    assert result.exit_code == 1, result.output  # one file failed, and says why
    assert "5 indexed, 1 failed" in result.output and "broken.pdf" in result.output
    result = runner.invoke(app, ["search", "error code E07", "--kb", "lumen", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    assert "lumen-e3-manual.md" in result.output and "Error codes" in result.output
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "no such file" in missing.output


def test_eval_retrieval_on_the_labeled_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTRIG_DATA_DIR", str(tmp_path / "untouched"))
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(
        app, ["eval", "retrieval", "--dataset", str(SAMPLES / "kb-eval"), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    scores = {row["mode"]: row for row in json.loads(out.read_text())}
    assert set(scores) == {"hybrid", "dense", "keywords"}
    for row in scores.values():  # the sample questions are easy: every mode finds them
        assert row["queries"] == 18 and row["recall_at_10"] >= 0.9 and row["ndcg_at_10"] >= 0.8
    assert not (tmp_path / "untouched").exists()  # evaluation never touches your data
    bad = CliRunner().invoke(
        app, ["eval", "retrieval", "--dataset", str(SAMPLES / "kb-eval"), "--modes", "magic"]
    )
    assert bad.exit_code != 0 and "unknown mode" in bad.output
