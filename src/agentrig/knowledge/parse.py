"""Parsing, the first step of ingestion: turn an uploaded file into text with structure.

markitdown's converters turn DOCX (through ``docx``), PPTX, XLSX, HTML and CSV into
Markdown, which is split on its headings so that every section knows where it sits
("Install > Linux"). PDF goes through pdfminer page by page instead, because
markitdown's PDF text has no page boundaries and citations need page numbers. Whatever
is wrong with the input surfaces as one ``DocumentError`` whose ``reason`` tells a
person what to do about it.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from xml.etree import ElementTree

from markitdown import MissingDependencyException, StreamInfo, converters
from pdfminer.converter import TextConverter
from pdfminer.layout import LAParams
from pdfminer.pdfdocument import PDFDocument, PDFPasswordIncorrect
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from pdfminer.pdftypes import resolve1
from pdfminer.utils import decode_text

from agentrig.errors import AgentrigError
from agentrig.knowledge.docx import docx_to_markdown

MB = 1024 * 1024  # what max_file_mb counts in: max_bytes = int(max_file_mb * MB)

LABELS = {"pdf": "PDF", "docx": "DOCX", "pptx": "PPTX", "xlsx": "XLSX", "html": "HTML"}
LABELS |= {"markdown": "Markdown", "csv": "CSV", "text": "plain text"}  # the formats
SUPPORTED = "PDF, DOCX, PPTX, XLSX, HTML, Markdown, CSV and plain text"

_EXTENSIONS = {".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx"}
_EXTENSIONS |= {".html": "html", ".htm": "html", ".xhtml": "html", ".csv": "csv"}
_EXTENSIONS |= {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text"}
_OOXML = "application/vnd.openxmlformats-officedocument."
_CONTENT_TYPES = {"application/pdf": "pdf", _OOXML + "wordprocessingml.document": "docx"}
_CONTENT_TYPES |= {_OOXML + "presentationml.presentation": "pptx"}
_CONTENT_TYPES |= {_OOXML + "spreadsheetml.sheet": "xlsx", "text/plain": "text"}
_CONTENT_TYPES |= {"text/html": "html", "application/xhtml+xml": "html", "text/csv": "csv"}
_CONTENT_TYPES |= {"text/markdown": "markdown", "text/x-markdown": "markdown"}
_ZIP_PARTS = {"word/": "docx", "ppt/": "pptx", "xl/": "xlsx"}
_IMAGE = " image (text in images is not read: there is no OCR)"
_BINARIES = {b"\x89PNG": "a PNG" + _IMAGE, b"\xff\xd8\xff": "a JPEG" + _IMAGE}
_BINARIES |= {b"GIF8": "a GIF" + _IMAGE, b"II*\x00": "a TIFF" + _IMAGE, b"MM\x00*": "a TIFF"}
_BINARIES |= {b"MZ": "a Windows executable", b"\x7fELF": "an executable"}
_BINARIES |= {b"PK\x03\x04": "a ZIP archive", b"\x1f\x8b": "a gzip archive"}
_BINARIES[b"\xd0\xcf\x11\xe0"] = (
    "a legacy Office file (.doc, .xls, .ppt): save it as .docx, .xlsx, .pptx"
)
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"


class DocumentError(AgentrigError, ValueError):
    """A file that cannot be ingested; ``reason`` says why in words a person can act on."""

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = filename
        self.reason = reason
        super().__init__(f"{filename}: {reason}")


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text with where it came from: a page (PDF page, PPTX slide, 1-based) and
    the path of headings above it ("Install > Linux"; an XLSX sheet's name)."""

    text: str
    page: int | None = None
    heading: str | None = None


@dataclass(slots=True)
class ParsedDocument:
    """A parsed file: its non-empty sections in order, its title (from the file's metadata
    or else its first top-level heading) and its format (a key of ``LABELS``)."""

    sections: list[Section]
    title: str | None
    format: str

    @property
    def text(self) -> str:
        return "\n\n".join(section.text for section in self.sections)


def parse_document(
    data: bytes,
    filename: str,
    content_type: str | None = None,
    *,
    max_bytes: int | None = None,
) -> ParsedDocument:
    """Parse ``data`` by its type: the extension of ``filename``, else ``content_type``,
    else its first bytes. Synchronous and CPU-bound: run it in a thread. ``max_bytes``
    (None: no limit) refuses a larger file before reading it. Raises ``DocumentError``
    for any input that cannot be ingested, and nothing else."""
    if max_bytes is not None and len(data) > max_bytes:
        raise DocumentError(
            filename, f"the file is {_size(len(data))}, over the limit of {_size(max_bytes)}"
        )
    if not data:
        raise DocumentError(filename, "the file is empty")
    kind = _detect(data, filename, content_type)
    try:
        title, sections = _convert(kind, data, _charset(content_type))
    except MissingDependencyException:
        raise  # an installation problem, not a bad file
    except Exception as exc:
        raise DocumentError(filename, _unreadable(kind, exc)) from exc
    sections = [section for section in sections if section.text.strip()]
    if not sections:
        if kind == "pdf":
            reason = "the PDF has no extractable text: it may be a scanned document (images "
            reason += "of pages), and there is no OCR; export it with a text layer"
        else:
            reason = f"the {LABELS[kind]} file contains no text (it is blank or whitespace)"
        raise DocumentError(filename, reason)
    return ParsedDocument(sections, title, kind)


# -- type detection ---------------------------------------------------------------------


def _detect(data: bytes, filename: str, content_type: str | None) -> str:
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    mime = (content_type or "").partition(";")[0].strip().lower()
    if mime in _CONTENT_TYPES:
        return _CONTENT_TYPES[mime]
    if b"%PDF-" in data[:1024]:  # the header may follow a little junk
        return "pdf"
    head = data[:8192]
    if head.startswith(b"PK\x03\x04") and (kind := _office_kind(data)):
        return kind
    what = next((what for magic, what in _BINARIES.items() if head.startswith(magic)), None)
    if what is None and _looks_like_text(head):
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].lower()
        return "html" if start.startswith((b"<!doctype html", b"<html")) else "text"
    what = what or (f"a {suffix} file" if suffix else "binary data of an unknown type")
    raise DocumentError(filename, f"unsupported file type: {what}; supported: {SUPPORTED}")


def _office_kind(data: bytes) -> str | None:
    """docx, pptx or xlsx for a ZIP holding an Office document's folder, else None."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):  # damaged: look at the local headers
        names = [part for part in _ZIP_PARTS if part.encode() in data[:65536]]
    parts = {name.partition("/")[0] + "/" for name in names}
    return next((kind for part, kind in _ZIP_PARTS.items() if part in parts), None)


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    controls = sum(1 for byte in head if byte < 32 and byte not in b"\t\n\r\f\x1b")
    return controls <= len(head) // 100


def _charset(content_type: str | None) -> str | None:
    match = re.search(r";\s*charset=\"?([\w.:-]+)", content_type or "", re.IGNORECASE)
    return match[1] if match else None


# -- conversion -----------------------------------------------------------------------


def _convert(kind: str, data: bytes, charset: str | None) -> tuple[str | None, list[Section]]:
    """(title, sections) of a file of a known type; raises whatever its library raises."""
    if kind == "pdf":
        return _parse_pdf(data)
    if kind == "pptx":
        return _parse_pptx(data)
    if kind in ("text", "csv"):
        text = _decode(data, charset)
        if kind == "csv" and text.strip():
            stream, info = io.BytesIO(text.encode()), StreamInfo(extension=".csv", charset="utf-8")
            text = converters.CsvConverter().convert(stream, info).markdown
        return None, [Section(text.strip())]
    title = None
    if kind == "docx":
        markdown, title = docx_to_markdown(data), _office_title(data)
    elif kind == "xlsx":  # markitdown writes "## <sheet name>" before each sheet's table
        info = StreamInfo(extension=".xlsx")
        markdown = converters.XlsxConverter().convert(io.BytesIO(data), info).markdown
        title = _office_title(data)
    elif kind == "html":
        result = converters.HtmlConverter().convert_string(_decode(data, charset))
        markdown, title = result.markdown, (result.title or "").strip() or None
    else:
        markdown = _decode(data, charset)
    sections, first_h1 = _split_markdown(markdown)
    return title or first_h1, sections


def _parse_pdf(data: bytes) -> tuple[str | None, list[Section]]:
    document = PDFDocument(PDFParser(io.BytesIO(data)))
    resources = PDFResourceManager()
    output = io.StringIO()
    device = TextConverter(resources, output, laparams=LAParams())
    interpreter = PDFPageInterpreter(resources, device)
    sections = []
    try:
        for number, page in enumerate(PDFPage.create_pages(document), start=1):
            output.seek(0)
            output.truncate()
            interpreter.process_page(page)
            sections.append(Section(output.getvalue().replace("\f", "").strip(), page=number))
    finally:
        device.close()
    return _pdf_title(document), sections


def _pdf_title(document: PDFDocument) -> str | None:
    for info in document.info:
        title = resolve1(info.get("Title"))
        if isinstance(title, bytes):
            title = decode_text(title)
        if isinstance(title, str) and title.strip():
            return title.strip()
    return None


def _parse_pptx(data: bytes) -> tuple[str | None, list[Section]]:
    """One section per slide, its title as the heading; markitdown marks where each starts."""
    info = StreamInfo(extension=".pptx")
    markdown = converters.PptxConverter().convert(io.BytesIO(data), info).markdown
    parts = re.split(r"^<!-- Slide number: (\d+) -->$", markdown, flags=re.MULTILINE)
    sections = []
    for number, text in zip(parts[1::2], parts[2::2], strict=True):
        title = re.match(r"# (.+)", text.strip())  # markitdown writes the slide title first
        sections.append(Section(text.strip(), int(number), _plain(title[1]) if title else None))
    first = next((section.heading for section in sections if section.heading), None)
    return _office_title(data) or first, sections


def _decode(data: bytes, charset: str | None) -> str:
    """UTF-8 when it is (the common case, which charset detection can get wrong on short
    texts), else the declared charset, else markitdown's detection."""
    if not _looks_like_text(data[:8192]) and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError("it holds binary data, not text")  # UTF-16 aside
    for encoding in ("utf-8-sig", charset):
        if encoding:
            try:
                return data.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                pass
    return converters.PlainTextConverter().convert(io.BytesIO(data), StreamInfo()).markdown


def _office_title(data: bytes) -> str | None:
    """The title in an Office file's properties (``docProps/core.xml``), if it has one."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = next((i for i in archive.infolist() if i.filename == "docProps/core.xml"), None)
        if info is None or info.file_size > MB:
            return None
        node = ElementTree.fromstring(archive.read(info)).find(_DC_TITLE)
    return (node.text or "").strip() or None if node is not None else None


def _unreadable(kind: str, exc: Exception) -> str:
    if isinstance(exc, PDFPasswordIncorrect):
        return "the PDF is password-protected: upload a copy without a password"
    detail = str(exc) or type(exc).__name__
    return f"could not be read as {LABELS[kind]}: {detail} (is the file damaged or truncated?)"


def _size(n: int) -> str:
    return f"{n / MB:,.2f} MB ({n:,} bytes)"


# -- Markdown headings ------------------------------------------------------------------

_ATX = re.compile(r" {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_NOT_PARAGRAPH = re.compile(r"[ \t]*$| {4}|\t| {0,3}([-*+>|#<]|\d+[.)]|`{3}|~{3})")
_FRONT_MATTER = re.compile(r"---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|$)", re.DOTALL)


def _split_markdown(markdown: str) -> tuple[list[Section], str | None]:
    """Split Markdown into one section per heading (ATX ``#`` and setext underlines, not
    inside code fences or front matter). A section's text starts with its heading line
    and its ``heading`` is the path of the headings above it, joined by " > ". A heading
    with no text of its own before the next heading yields no section: it lives on in
    the paths of the headings under it. Returns the sections and the first # heading."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    head: list[str] = []  # the current section's heading line(s)
    body: list[str] = []
    first_h1: str | None = None
    fence = ""

    def flush() -> None:
        if any(line.strip() for line in body):
            heading = " > ".join(name for _, name in path) or None
            sections.append(Section("\n".join(head + body).strip(), None, heading))

    front_matter = _FRONT_MATTER.match(markdown)
    if front_matter:
        body.append(front_matter[0].rstrip("\n"))
        markdown = markdown[front_matter.end() :]
    for line in markdown.splitlines():
        level = 0
        if fence:
            fence = "" if line.strip().startswith(fence) else fence
        elif opening := _FENCE.match(line):
            fence = opening[1]
        elif (atx := _ATX.match(line)) and (heading := _plain(atx[2])):
            level, heading_lines = len(atx[1]), [line]
        elif (
            _SETEXT.match(line)
            and body
            and not _NOT_PARAGRAPH.match(body[-1])
            and (heading := _plain(body[-1]))
        ):
            level, heading_lines = (1 if line.strip()[0] == "=" else 2), [body.pop(), line]
        if not level:
            body.append(line)
            continue
        flush()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, heading))
        head, body = heading_lines, []
        if level == 1 and first_h1 is None:
            first_h1 = heading
    flush()
    return sections, first_h1


def _plain(heading: str) -> str:
    """Heading text without Markdown: links and images keep their text, emphasis marks
    and backslash escapes go."""
    heading = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    heading = re.sub(r"(\*\*|__|\*|`)", "", heading)
    heading = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|>~<])", r"\1", heading)
    return " ".join(heading.split())
