"""parse_document on real files built at test time with python-docx, python-pptx, openpyxl
and fpdf2, and on HTML, Markdown, CSV and text; every bad input gives a DocumentError."""

import io
import zipfile

import docx
import openpyxl
import pptx
import pytest
from fpdf import FPDF

from agentrig.errors import AgentrigError
from agentrig.knowledge.parse import MB, DocumentError, ParsedDocument, Section, parse_document

PAGES = [
    ("Chapter 1: Apples", "orchard"),
    ("Chapter 2: Bees", "hive"),
    ("Chapter 3: Cider", "press"),
]


def make_pdf(pages=PAGES, title="Fruit handbook", **encryption) -> bytes:
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    for heading, word in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 18)
        pdf.cell(text=heading)
        pdf.ln(12)
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text=f"This page is about the {word}. " * 8)
    if encryption:
        pdf.set_encryption(**encryption)
    return bytes(pdf.output())


def make_docx(title: str | None = "Field guide") -> bytes:
    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_heading("Field guide", 0)  # the Title style
    document.add_paragraph("Read this first.")
    document.add_heading("Install", 1)
    document.add_paragraph("Installing takes a minute.")
    document.add_heading("Linux", 2)
    document.add_paragraph("Use the package manager.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(1, 1).text = "distro", "debian"
    document.add_heading("Usage", 1)
    document.add_paragraph("Run it daily.")
    return save(document)


def make_pptx(title: str | None = None) -> bytes:
    presentation = pptx.Presentation()
    if title:
        presentation.core_properties.title = title
    for number in (1, 2, 3):
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = f"Slide {number} title"
        slide.placeholders[1].text = f"Point number {number}"
    return save(presentation)


def make_xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.properties.title = "Inventory"
    prices = workbook.active
    prices.title = "Prices"
    prices.append(["item", "price"])
    prices.append(["teapot", 30])
    staff = workbook.create_sheet("Staff")
    staff.append(["name", "role"])
    staff.append(["Ada", "engineer"])
    return save(workbook)


def save(document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_pdf_has_one_section_per_page_with_its_number():
    doc = parse_document(make_pdf(), "handbook.pdf")
    assert (doc.format, doc.title) == ("pdf", "Fruit handbook")
    assert [section.page for section in doc.sections] == [1, 2, 3]
    for section, (heading, word) in zip(doc.sections, PAGES, strict=True):
        assert section.text.startswith(heading)
        assert f"about the {word}" in section.text
        others = {other for _, other in PAGES} - {word}
        assert not any(other in section.text for other in others)
        assert section.heading is None
    assert doc.text == "\n\n".join(section.text for section in doc.sections)


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("upload", "application/pdf"), ("upload", None), ("upload.bin", "application/octet-stream")],
)
def test_type_comes_from_the_content_type_or_the_first_bytes(filename, content_type):
    assert parse_document(make_pdf(), filename, content_type).format == "pdf"


def test_docx_sections_carry_their_heading_path():
    doc = parse_document(make_docx(), "guide.docx")
    assert (doc.format, doc.title) == ("docx", "Field guide")
    assert [section.heading for section in doc.sections] == [
        "Field guide",
        "Install",
        "Install > Linux",
        "Usage",
    ]
    assert doc.sections[0].text == "# Field guide\n\nRead this first."
    linux = doc.sections[2].text
    assert "package manager" in linux and "debian" in linux  # the table stays in its section
    assert all(section.page is None for section in doc.sections)


def test_docx_without_a_title_property_is_titled_by_its_first_heading():
    assert parse_document(make_docx(title=None), "guide.docx").title == "Field guide"


def test_pptx_slide_number_is_the_page_and_its_title_the_heading():
    doc = parse_document(make_pptx(), "deck.pptx")
    assert doc.format == "pptx"
    assert [(s.page, s.heading) for s in doc.sections] == [
        (1, "Slide 1 title"),
        (2, "Slide 2 title"),
        (3, "Slide 3 title"),
    ]
    assert "Point number 2" in doc.sections[1].text
    assert doc.title == "Slide 1 title"  # no title property: the first slide's
    assert parse_document(make_pptx(title="Quarterly"), "deck.pptx").title == "Quarterly"


def test_xlsx_sheet_name_is_the_heading():
    doc = parse_document(make_xlsx(), "stock.xlsx")
    assert (doc.format, doc.title) == ("xlsx", "Inventory")
    assert [section.heading for section in doc.sections] == ["Prices", "Staff"]
    assert "teapot" in doc.sections[0].text and "30" in doc.sections[0].text
    assert "Ada" in doc.sections[1].text and "teapot" not in doc.sections[1].text


@pytest.mark.parametrize(
    ("make", "kind"), [(make_docx, "docx"), (make_pptx, "pptx"), (make_xlsx, "xlsx")]
)
def test_office_files_are_recognised_by_their_contents(make, kind):
    assert parse_document(make(), "upload").format == kind


HTML = """<!DOCTYPE html><html><head><title>Ops manual</title><style>p {color: red}</style>
</head><body><h1>Ops</h1><p>Welcome.</p><h2>Install</h2><p>Get it.</p>
<h3>Linux</h3><p>Use apt.</p><script>alert("no")</script><h2>Backups</h2><p>Nightly.</p>
</body></html>"""


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("manual.html", None), ("manual", "text/html; charset=utf-8"), ("manual", None)],
)
def test_html_keeps_title_and_heading_paths(filename, content_type):
    doc = parse_document(HTML.encode(), filename, content_type)
    assert (doc.format, doc.title) == ("html", "Ops manual")
    assert [(s.heading, s.text.splitlines()[-1]) for s in doc.sections] == [
        ("Ops", "Welcome."),
        ("Ops > Install", "Get it."),
        ("Ops > Install > Linux", "Use apt."),
        ("Ops > Backups", "Nightly."),
    ]
    assert "alert" not in doc.text and "color" not in doc.text


MARKDOWN = """Preface before any heading.

# Handbook

## Install

### Linux
Run `make`.

```sh
# a comment, not a heading
make install
```

Upgrading *safely*
------------------
Back up first.

# Appendix
The end.
"""


def test_markdown_splits_on_headings_outside_code():
    doc = parse_document(MARKDOWN.encode(), "README.md")
    assert (doc.format, doc.title) == ("markdown", "Handbook")
    assert [section.heading for section in doc.sections] == [
        None,
        "Handbook > Install > Linux",  # headings with no text of their own make no section
        "Handbook > Upgrading safely",  # a setext ## heading
        "Appendix",
    ]
    assert "# a comment, not a heading" in doc.sections[1].text
    assert doc.sections[1].text.startswith("### Linux\nRun `make`.")
    assert doc.sections[2].text == "Upgrading *safely*\n------------------\nBack up first."


def test_csv_becomes_one_table():
    doc = parse_document(b"name,city\nAda,London\nGrace,Arlington\n", "people.csv")
    assert (doc.format, doc.title) == ("csv", None)
    assert doc.sections == [
        Section("| name | city |\n| --- | --- |\n| Ada | London |\n| Grace | Arlington |")
    ]


def test_text_is_one_section_in_its_declared_charset():
    doc = parse_document(
        "Café au lait.\n".encode("latin-1"), "menu.txt", "text/plain; charset=latin-1"
    )
    assert doc == ParsedDocument([Section("Café au lait.")], None, "text")


def test_text_with_an_unknown_extension_is_recognised():
    doc = parse_document(b"2024-01-01 INFO started\n", "server.log")
    assert doc.format == "text" and doc.text == "2024-01-01 INFO started"


def test_the_size_limit_is_inclusive():
    assert parse_document(b"12345", "a.txt", max_bytes=5).text == "12345"


def refusal(data: bytes, filename: str, content_type: str | None = None, **kwargs) -> str:
    with pytest.raises(DocumentError) as caught:
        parse_document(data, filename, content_type, **kwargs)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, AgentrigError)
    assert caught.value.filename == filename
    assert str(caught.value) == f"{filename}: {caught.value.reason}"
    return caught.value.reason


def zip_of(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "hello")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "what"),
    [
        (b"MZ\x90\x00" + bytes(200), "setup.exe", "a Windows executable"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "scan.png", "a PNG image"),
        (b"\xff\xd8\xff\xe0" + bytes(200), "photo", "a JPEG image"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), "old.doc", "save it as .docx"),
        (zip_of("notes/a.txt"), "bundle.zip", "a ZIP archive"),
        (bytes(range(256)) * 4, "blob.dat", "a .dat file"),
        (bytes(range(256)) * 4, "blob", "binary data of an unknown type"),
    ],
)
def test_unsupported_types_are_named_with_the_supported_ones(data, filename, what):
    reason = refusal(data, filename)
    assert what in reason
    assert "PDF, DOCX, PPTX, XLSX, HTML, Markdown, CSV and plain text" in reason


def test_images_say_there_is_no_ocr():
    assert "no OCR" in refusal(b"\x89PNG\r\n\x1a\n" + bytes(200), "scan.png")


def test_an_empty_file_is_refused():
    assert refusal(b"", "empty.pdf") == "the file is empty"


@pytest.mark.parametrize("filename", ["blank.txt", "blank.md", "blank", "blank.csv"])
def test_a_whitespace_only_file_has_no_text(filename):
    assert "contains no text" in refusal(b" \n\t\r\n  ", filename)


def test_a_pdf_without_text_may_be_scanned():
    pdf = FPDF()
    pdf.add_page()
    reason = refusal(bytes(pdf.output()), "scan.pdf")
    assert "no extractable text" in reason and "scanned" in reason and "OCR" in reason


def test_a_truncated_pdf_is_corrupt():
    data = make_pdf()
    reason = refusal(data[: len(data) // 2], "cut.pdf")
    assert reason.startswith("could not be read as PDF: ") and "truncated" in reason


def test_a_truncated_docx_is_corrupt():
    data = make_docx()
    reason = refusal(data[: len(data) // 2], "cut.docx")
    assert reason.startswith("could not be read as DOCX: ") and "truncated" in reason


def test_a_password_protected_pdf_says_so():
    data = make_pdf(owner_password="owner", user_password="secret")
    assert "password-protected" in refusal(data, "locked.pdf")


def test_an_oversized_file_gives_its_size_and_the_limit_in_mb():
    reason = refusal(b"x" * (3 * MB), "big.txt", max_bytes=2 * MB)
    assert reason == (
        "the file is 3.00 MB (3,145,728 bytes), over the limit of 2.00 MB (2,097,152 bytes)"
    )


@pytest.mark.parametrize(
    "filename", ["a.pdf", "a.docx", "a.pptx", "a.xlsx", "a.html", "a.md", "a.csv", "a.txt"]
)
@pytest.mark.parametrize(
    "data",
    [b"\x00\x01\x02garbage\xff" * 50, b"PK\x03\x04" + bytes(100), b"%PDF-1.7\n" + bytes(50)],
)
def test_garbage_gives_a_document_error_never_another_exception(filename, data):
    assert refusal(data, filename).startswith("could not be read as ")
