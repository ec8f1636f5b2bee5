"""Markdown of a flat docling document, written directly (docling's serializer for anything else).

docling's native PDF pipeline gives a flat document: one plain text item per line of the PDF's
text layer, and its pictures, all children of the body. docling-core's Markdown serializer is
general (lists, tables, headings, inline groups, captions, meta) and costs about as much as
building the document: 4.05 CPU s of the 75 real PDFs' ~20 (AMD EPYC), against 0.18 s here for
the same text, byte for byte (tests/test_flat_markdown.py compares the two on real and generated
documents). Any document with something else in it (a heading, a list, a table, a caption,
formatting, a hyperlink, nesting) goes to docling's serializer.

What docling writes for these two kinds of item, and so what this writes (docling-core is pinned
in requirements.txt):
- a text item: its text, a single newline made a hard line break ("  \\n"), underscores escaped
  (outside image links), then &, < and > as HTML entities; nothing for an empty text;
- a picture: the placeholder "<!-- image -->";
- items joined by blank lines.
"""

from __future__ import annotations

import html
import re

IMAGE_PLACEHOLDER = "<!-- image -->"
_UNESCAPED_UNDERSCORE = re.compile(r"(?<!\\)_")
_IMAGE_LINK = re.compile(r"!\[.*?\]\((.*?)\)")


def export_markdown(document, layers) -> str:
    """The document's Markdown, as docling's export_to_markdown(included_content_layers=layers)
    writes it."""
    flat = flat_markdown(document, layers)
    if flat is None:
        return document.export_to_markdown(included_content_layers=layers)
    return flat


def flat_markdown(document, layers) -> str | None:
    """The Markdown of a flat document of plain texts and pictures; None for any other."""
    from docling_core.types.doc import DocItemLabel, PictureItem, TextItem

    parts = []
    for item, level in document.iterate_items(with_groups=True, included_content_layers=layers):
        if item is document.body:
            continue
        if level != 1 or item.children:
            return None
        if type(item) is TextItem:
            if item.label != DocItemLabel.TEXT or item.formatting is not None or item.hyperlink is not None:
                return None
            text = _text(item.text)
            if text:
                parts.append(text)
        elif type(item) is PictureItem:
            # (annotations read from the model's fields: the attribute is deprecated and warns)
            if (item.captions or item.footnotes or item.references or item.meta is not None
                    or item.__dict__.get("annotations")):
                return None
            parts.append(IMAGE_PLACEHOLDER)
        else:
            return None
    return "\n\n".join(parts)


def _text(text: str) -> str:
    text = "\n\n".join(paragraph.replace("\n", "  \n") for paragraph in text.split("\n\n"))
    return html.escape(_escape_underscores(text), quote=False)


def _escape_underscores(text: str) -> str:
    """Every underscore not already escaped gets a backslash, except inside image links."""
    pieces = []
    last = 0
    for link in _IMAGE_LINK.finditer(text):
        pieces.append(_UNESCAPED_UNDERSCORE.sub(r"\\_", text[last:link.start()]))
        pieces.append(link.group(0))
        last = link.end()
    pieces.append(_UNESCAPED_UNDERSCORE.sub(r"\\_", text[last:]))
    return "".join(pieces)
