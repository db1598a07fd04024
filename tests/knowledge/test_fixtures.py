"""parse_document on committed files of every supported format, most of them written by
LibreOffice rather than by the libraries the other parsing tests build files with (see
fixtures/README.md); and the pipeline on a damaged copy of one."""

import io
import zipfile
from pathlib import Path

import pytest

from agentrig.knowledge.docx import complete_equations, docx_to_markdown
from agentrig.knowledge.parse import DocumentError, parse_document

FIXTURES = Path(__file__).parent / "fixtures"
SCRIPTS = "naïve coöperation, 東京 and Ελληνικά"  # Latin with accents, CJK, Greek


def parse(name: str):
    return parse_document((FIXTURES / name).read_bytes(), name)


def test_libreoffice_docx_keeps_headings_list_table_scripts_and_equation():
    doc = parse("field-notes.docx")
    assert (doc.format, doc.title) == ("docx", "Café field notes")
    assert [section.heading for section in doc.sections] == [
        "Zürich café survey",
        "Zürich café survey > Tasting steps",
        "Zürich café survey > Scores",
        "Zürich café survey > Average",
    ]
    intro, steps, scores, average = (section.text for section in doc.sections)
    assert intro.startswith("# Zürich café survey\n\nNotes from a crème brûlée tasting")
    assert SCRIPTS in intro
    assert steps.splitlines()[2:] == [
        "* Warm the ramekin to 40 °C",
        "* Crack the caramel with a spoon",
        "* Score it from one to five",
    ]
    assert "| Café | Dessert | Score |" in scores
    assert "| Grünhaus | crème brûlée | 4 |" in scores and "| Ølstue | smørrebrød | 5 |" in scores
    assert average == "## Average\n\nThe mean score is $\\overline{s}=\\frac{4+5}{2}$ out of five."


def test_equations_lose_nothing_else():
    data = (FIXTURES / "field-notes.docx").read_bytes()
    completed = complete_equations(data)
    before, after = zipfile.ZipFile(io.BytesIO(data)), zipfile.ZipFile(io.BytesIO(completed))
    assert before.namelist() == after.namelist()
    changed = [n for n in before.namelist() if before.read(n) != after.read(n)]
    assert changed == ["word/document.xml"]
    assert after.read("word/document.xml").count(b"<m:fPr/>") == 1  # the one fraction
    assert complete_equations(completed) == completed  # nothing left to add


def test_a_docx_without_equations_is_passed_on_unchanged():
    data = (FIXTURES / "field-notes.docx").read_bytes()
    plain = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(plain, "w") as copy:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "word/document.xml":
                start, end = content.index(b"<m:oMath"), content.index(b"</m:oMath>") + 10
                content = content[:start] + content[end:]
            copy.writestr(info, content)
    assert complete_equations(plain.getvalue()) == plain.getvalue()
    assert "The mean score is out of five." in docx_to_markdown(plain.getvalue())


def test_libreoffice_pdf_has_its_two_pages():
    doc = parse("field-notes.pdf")
    assert (doc.format, doc.title) == ("pdf", "Café field notes")
    assert [section.page for section in doc.sections] == [1, 2]
    first, second = (" ".join(section.text.split()) for section in doc.sections)
    assert first.startswith("Zürich café survey Notes from a crème brûlée tasting in Zürich")
    assert SCRIPTS in first and "Warm the ramekin to 40 °C" in first
    assert second.startswith("Scores") and "smørrebrød" in second and "Ølstue" in second


def test_libreoffice_xlsx_has_a_section_per_sheet():
    doc = parse("stock.xlsx")
    assert (doc.format, doc.title) == ("xlsx", "Pâtisserie stock")
    assert [section.heading for section in doc.sections] == ["Prices", "Staff"]
    prices, staff = (section.text for section in doc.sections)
    assert "| item | price € |" in prices and "| mille-feuille | 4.75 |" in prices
    assert "| Søren | pâtissier |" in staff and "croissant" not in staff


def test_libreoffice_pptx_has_a_section_per_slide():
    doc = parse("deck.pptx")
    assert (doc.format, doc.title) == ("pptx", "Roadmap naïve")
    assert [(s.page, s.heading, s.text) for s in doc.sections] == [
        (1, "Déjà vu roadmap", "# Déjà vu roadmap\nShip the résumé parser"),
        (2, "Straße to launch", "# Straße to launch\nBeta in Malmö"),
    ]


def test_html_keeps_headings_table_and_list_but_not_scripts():
    doc = parse("opening-hours.html")
    dash = "\N{EN DASH}"
    assert (doc.format, doc.title) == ("html", f"Öffnungszeiten {dash} Bäckerei Müller")
    headings = [section.heading for section in doc.sections if section.heading]
    assert headings == [
        "Bäckerei Müller",
        "Bäckerei Müller > Öffnungszeiten",
        "Bäckerei Müller > Spezialitäten",
    ]
    assert f"| Montag{dash}Freitag | 6:30{dash}18:00 |" in doc.text
    assert "* Laugenbrezel\n* Mohnschnecke" in doc.text
    assert "console.log" not in doc.text and "font-family" not in doc.text


def test_markdown_headings_skip_code_fences():
    doc = parse("release-notes.md")
    assert (doc.format, doc.title) == ("markdown", "Release notes")
    assert [section.heading for section in doc.sections] == [
        None,  # the front matter
        "Release notes",
        "Release notes > 2.0 — “Ångström”",
        "Release notes > 1.9",
    ]
    assert "# not a heading: a comment inside a code fence" in doc.sections[2].text


def test_csv_becomes_a_table_with_quoted_commas_kept():
    doc = parse("orders.csv")
    assert doc.format == "csv"
    assert doc.text.splitlines() == [
        "| order | customer | city | total |",
        "| --- | --- | --- | --- |",
        "| 1001 | Nuñez, Inés | São Paulo | 12.50 |",
        "| 1002 | Zoë Ødegaard | Tromsø | 7.25 |",
    ]


def test_text_in_a_legacy_encoding_is_decoded():
    assert (FIXTURES / "returns.txt").read_bytes().decode("cp1252")  # not UTF-8 …
    with pytest.raises(UnicodeDecodeError):
        (FIXTURES / "returns.txt").read_bytes().decode("utf-8")
    doc = parse("returns.txt")  # … and still read right
    assert doc.format == "text"
    assert "the café's gift\ncards are refunded as store credit (« avoir »)." in doc.text


def test_a_damaged_libreoffice_docx_names_the_file_and_the_format():
    data = (FIXTURES / "field-notes.docx").read_bytes()
    with pytest.raises(DocumentError) as caught:
        parse_document(data[: len(data) * 2 // 3], "field-notes.docx")
    assert str(caught.value).startswith("field-notes.docx: could not be read as DOCX: ")


async def test_a_damaged_docx_ends_failed_and_the_rest_stays(knowledge):
    data = (FIXTURES / "field-notes.docx").read_bytes()
    good = await knowledge.add_document("t1", data, "field-notes.docx", kb="notes")
    assert (await knowledge.index("t1", good.id)).status == "indexed"
    before = await knowledge.vectors.count("notes", "t1")
    broken = await knowledge.add_document("t1", data[:-200], "cut.docx", kb="notes")
    report = await knowledge.index("t1", broken.id)
    stored = await knowledge.documents.get("t1", broken.id)
    assert report.status == stored.status == "failed"
    assert stored.filename == "cut.docx" and stored.reason.startswith("could not be read as DOCX")
    assert await knowledge.vectors.count("notes", "t1") == before
    assert (await knowledge.documents.get("t1", good.id)).status == "indexed"
    hits = await knowledge.retriever.search("crème brûlée scores", tenant="t1", kb="notes")
    assert hits and {hit.document_id for hit in hits} == {good.id}
