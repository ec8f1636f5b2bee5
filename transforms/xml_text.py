"""XML documents: which kind a file is, and the text of one docling has no reader for.

An XML file read as plain text puts its markup into the index: the JATS article of the real corpus
(a PubMed Central paper, named .txt) is half tags by size, and its 183,588 characters made 346
embedding windows of mostly element names and attributes. Docling reads two kinds of XML document
itself, recognised by their DOCTYPE as docling recognises them: JATS journal articles and USPTO
patents, which become Markdown with headings, authors, abstract and tables (the JATS article: 92,950
characters). Any other XML is reduced to the text of its elements, one element per line, without
markup; what is not well-formed XML, or declares entities, stays plain text.
"""
from __future__ import annotations

import re

# DOCTYPE markers of the XML kinds docling converts (docling's own content check, lower-cased).
DOCLING_KINDS = {
    "jats": ("jats-journalpublishing", "jats-archive"),
    "uspto": ("us-patent-application-v4", "us-patent-grant-v4", "us-grant-025",
              "patent-application-publication"),
}
XML_EXTENSIONS = (".xml", ".nxml", ".svg")   # names that say XML even without a declaration
_DOCTYPE = re.compile(rb"<!doctype\s[^>]*>", re.IGNORECASE)


def looks_like_xml(head: bytes, ext: str) -> bool:
    """Whether a text file's first bytes (leading whitespace stripped) open an XML document: an XML
    declaration or a DOCTYPE, or any element when the name says XML (an SVG drawing's text is its
    labels; its path data and styles are attributes, left out)."""
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()  # a UTF-8 byte-order mark first
    return start.startswith((b"<?xml", b"<!doctype")) or (ext in XML_EXTENSIONS and start.startswith(b"<"))


def docling_kind(head: bytes) -> str | None:
    """'jats' or 'uspto' when the DOCTYPE in the file's first bytes names a kind docling reads."""
    match = _DOCTYPE.search(head)
    if match is None:
        return None
    doctype = match.group().decode("ascii", errors="replace").lower()
    for kind, markers in DOCLING_KINDS.items():
        if any(marker in doctype for marker in markers):
            return kind
    return None


class EntityDeclared(ValueError):
    """An entity declaration: refused, as defusedxml refuses it (expansion bombs, external files)."""


def guarded_parser():
    """An expat parser that raises EntityDeclared at any entity declaration or external reference:
    nothing is expanded or fetched. Parse errors raise expat.ExpatError."""
    from xml.parsers import expat

    def refuse(*_):
        raise EntityDeclared

    parser = expat.ParserCreate()
    parser.EntityDeclHandler = parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    return parser


def element_text(data: bytes) -> str | None:
    """The text of every element, one element per line, in document order, no markup; None when
    `data` is not well-formed XML or declares entities (none is ever expanded or fetched, as with
    defusedxml). Streamed through expat: a 63 MB XML file of 600,000 records took 3.0 CPU s and
    +34 MB, where a parsed tree (ElementTree) took 8.7 s and +485 MB."""
    from xml.parsers import expat

    lines: list[str] = []
    pending: list[str] = []

    def flush(*_):
        text = " ".join("".join(pending).split())
        pending.clear()
        if text:
            lines.append(text)

    parser = guarded_parser()
    parser.CharacterDataHandler = pending.append
    parser.StartElementHandler = parser.EndElementHandler = flush   # an element's edges end a line
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, EntityDeclared):
        return None
    flush()
    return "\n".join(lines)
