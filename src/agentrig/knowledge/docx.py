"""DOCX to Markdown: markitdown's converter, after filling in what its equation reader needs.

markitdown turns Word equations (OMML) into LaTeX, but its reader looks up the property
element of a fraction, accent, bar, delimiter or group character (``m:fPr`` …) without a
fallback, although OOXML makes each one optional. Word always writes them; LibreOffice
leaves them out when they hold nothing, and then the reader fails, markitdown keeps the
unconverted equation and mammoth drops it: the text of every equation in such a file is
lost without a word. Adding the empty elements changes nothing else (an empty property
element means the defaults), so agentrig does that before converting. This is agentrig's
own code only because the fix is not in markitdown yet.
"""

from __future__ import annotations

import io
import zipfile

from lxml import etree
from markitdown import StreamInfo, converters

_STYLES = "p[style-name='Title'] => h1:fresh"  # mammoth leaves the Title style plain
_MATH = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
_PROPERTIES = {"acc": "accPr", "bar": "barPr", "d": "dPr", "f": "fPr"}
_PROPERTIES["groupChr"] = "groupChrPr"  # the objects whose property markitdown requires
_PARTS = ("word/document.xml", "word/footnotes.xml", "word/endnotes.xml")  # what it reads
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def docx_to_markdown(data: bytes) -> str:
    """The Markdown of a DOCX file; raises whatever mammoth or the ZIP reader raise."""
    stream = io.BytesIO(complete_equations(data))
    result = converters.DocxConverter().convert(
        stream, StreamInfo(extension=".docx"), style_map=_STYLES
    )
    return result.markdown


def complete_equations(data: bytes) -> bytes:
    """``data`` with an empty property element added to each equation object that has
    none; the same bytes when no part holds an equation."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        parts = {name: archive.read(name) for name in _PARTS if name in names}
        changed = {name: fixed for name, xml in parts.items() if (fixed := _complete(xml))}
        if not changed:
            return data
        output = io.BytesIO()
        with zipfile.ZipFile(output, "w") as copy:
            copy.comment = archive.comment
            for info in archive.infolist():
                copy.writestr(info, changed.get(info.filename) or archive.read(info))
    return output.getvalue()


def _complete(xml: bytes) -> bytes | None:
    """The part with the missing property elements added, or None if none was missing."""
    if b"oMath" not in xml:
        return None
    root = etree.fromstring(xml, _PARSER)
    added = False
    for name, prop in _PROPERTIES.items():
        for element in root.iter(_MATH + name):
            if element.find(_MATH + prop) is None:
                element.insert(0, etree.Element(_MATH + prop))
                added = True
    if not added:
        return None
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
