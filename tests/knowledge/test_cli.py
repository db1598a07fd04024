"""agentrig ingest, search and eval retrieval on the sample knowledge base."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
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
    assert "5 indexed, 0 unchanged, 1 failed" in result.output and "broken.pdf" in result.output
    result = runner.invoke(app, ["search", "error code E07", "--kb", "lumen", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    assert "lumen-e3-manual.md" in result.output and "Error codes" in result.output
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "no such file" in missing.output


def test_file_names_and_texts_print_with_their_brackets(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTRIG_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    note = tmp_path / "plan [draft].md"
    note.write_text("# Plan\n\nThe [bold] launch of the [red] rocket is on Monday.\n")
    broken = tmp_path / "minutes [final].pdf"
    broken.write_bytes(b"%PDF-1.7 truncated")
    result = runner.invoke(app, ["ingest", str(note), str(broken)])
    assert result.exit_code == 1 and "minutes [final].pdf: could not be read as PDF" in " ".join(
        result.output.split()
    )
    result = runner.invoke(app, ["search", "rocket launch", "--top-k", "1"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "plan [draft].md" in result.output
    assert "The [bold] launch of the [red] rocket" in result.output


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


def test_eval_retrieval_scores_the_split_asked_with_latency_and_index_size(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTRIG_DATA_DIR", str(tmp_path / "untouched"))
    dataset = tmp_path / "beir"
    (dataset / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        (dataset / name).write_bytes((SAMPLES / "kb-eval" / name).read_bytes())
    judged = (SAMPLES / "kb-eval" / "qrels" / "test.tsv").read_text().splitlines()
    (dataset / "qrels" / "train.tsv").write_text("\n".join(judged[:6]) + "\n")  # 5 judgements
    out = tmp_path / "train.json"
    args = ["eval", "retrieval", "--dataset", str(dataset), "--modes", "keywords,hybrid"]
    result = CliRunner().invoke(app, [*args, "--split", "train", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [row["mode"] for row in rows] == ["keywords", "hybrid"]
    queries = len({line.split("\t")[0] for line in judged[1:6]})
    for row in rows:
        assert (row["split"], row["queries"]) == ("train", queries)
        assert 0 < row["p50_ms"] <= row["p95_ms"]
    assert "split train" in result.output and "p95 ms" in result.output
    documents = len((dataset / "corpus.jsonl").read_text().splitlines())
    index = re.search(rf"index: (\d+) chunks of {documents} documents, ([\d.]+) MB", result.output)
    assert index and int(index[1]) >= documents and float(index[2]) > 0, result.output
    for split, error in (("dev", "splits here: ['train']"), ("../test", "expected a name")):
        bad = CliRunner().invoke(app, [*args, "--split", split])
        assert bad.exit_code != 0 and error in " ".join(bad.output.split()), bad.output


def test_ingest_skips_unchanged_files_replaces_changed_ones_and_chat_answers(tmp_path, monkeypatch):
    """What `make run` does, on the embedded defaults: the local SmolLM2 answers."""
    monkeypatch.setenv("AGENTRIG_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    folder = tmp_path / "kb"
    folder.mkdir()
    for path in (SAMPLES / "kb").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    assert "5 indexed, 0 unchanged" in runner.invoke(app, ["ingest", str(folder)]).output
    faq = folder / "returns-faq.txt"
    faq.write_text(faq.read_text().replace("30 days", "45 days"))
    again = runner.invoke(app, ["ingest", str(folder)])
    assert "1 indexed, 4 unchanged, 0 failed" in again.output, again.output
    documents = asyncio.run(_documents(tmp_path / "data"))
    faqs = [d for d in documents if d.filename == "returns-faq.txt"]
    assert len(documents) == 5 and len(faqs) == 1  # replaced, not added
    assert faqs[0].sha256 == hashlib.sha256(faq.read_bytes()).hexdigest()
    answer = runner.invoke(app, ["chat", "How long does a full charge of the battery take?"])
    assert answer.exit_code == 0, answer.output
    assert "conversation conv_" in answer.output and "[1] lumen-e3-manual.md" in answer.output


async def _documents(data_dir: Path):
    from agentrig.store import Database
    from agentrig.store.documents import DocumentStore

    database = Database(f"sqlite:///{data_dir / 'agentrig.db'}")
    try:
        return await DocumentStore(database).list("default")
    finally:
        await database.aclose()
