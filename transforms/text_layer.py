"""Is a PDF's extracted text readable? And pdfium's reading of a text layer, to fall back on.

Some PDFs embed fonts whose glyphs are not mapped to characters the usual way (a Type 3 or dingbat
font without a ToUnicode map, often in older LaTeX output): docling's parser then writes glyph
names and symbols ("❊♥a115❡✐❣♥❛♥a116" for "Enseignant en Mathématiques") while pdfium, reading the
same page through the font's encoding, may still get the words. Text like that is worse than none:
the classifier, the extraction rules, the language detector and search all read it as content.

A text is unreadable when over a quarter of its characters (spaces and docling's picture markers
aside) are symbols (Unicode category So: dingbats, arrows, box drawing), private-use or unassigned
code points, U+FFFD or docling-parse's GLYPH<...> placeholders. Prose in any script, tables, maths
(∑, ≤ are Sm, not So) and the odd emoji or check box stay far below that; the garbled CV that
prompted this (docs/benchmarks.md) is at 46 %.
"""
from __future__ import annotations

import re
import unicodedata

UNREADABLE_SHARE = 0.25
_MARKERS = re.compile(r"<!--.*?-->", re.S)          # docling's picture placeholders are not content
_GLYPH_NAMES = re.compile(r"GLYPH<[^>]{0,80}>")      # docling-parse's unmapped glyphs
_UNREADABLE_CATEGORIES = {"So", "Co", "Cn", "Cs"}
SAMPLE_CHARS = 20000  # enough to judge a document; a long one costs no more


def unreadable_share(text: str | None) -> float:
    """Share of the non-space characters of `text` that no reader could make words of."""
    sample = _MARKERS.sub(" ", (text or "")[:SAMPLE_CHARS])
    glyphs = sum(len(m) for m in _GLYPH_NAMES.findall(sample))
    sample = _GLYPH_NAMES.sub(" ", sample)
    chars = [ch for ch in sample if not ch.isspace()]
    if not chars and not glyphs:
        return 0.0
    bad = sum(1 for ch in chars if ch == "\ufffd" or unicodedata.category(ch) in _UNREADABLE_CATEGORIES)
    return (bad + glyphs) / (len(chars) + glyphs)


def unreadable(text: str | None) -> bool:
    return unreadable_share(text) > UNREADABLE_SHARE


def page_text(page) -> str:
    """The text layer of one pypdfium2 page, as pdfium reads it."""
    textpage = page.get_textpage()
    try:
        return textpage.get_text_range()
    finally:
        textpage.close()


def pdfium_text(pdf) -> str:
    """The text layer of every page of an open pypdfium2 document, as pdfium reads it: plain lines in
    drawing order, pages apart by a blank line (no headings or tables: only for text docling could
    not read). A page that cannot be loaded ends the text there."""
    import pypdfium2 as pdfium

    pages = []
    for index in range(len(pdf)):
        try:
            page = pdf[index]
        except pdfium.PdfiumError:
            break
        try:
            text = page_text(page)
        finally:
            page.close()
        lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        pages.append("\n".join(line for line in lines if line))
    return "\n\n".join(page for page in pages if page)
