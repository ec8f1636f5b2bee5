"""Reading order for PDF pages whose text layer is stored out of order.

docling's native PDF pipeline keeps the order in which the PDF's content stream draws its lines
(it has no layout or reading-order model). For most PDFs that is the reading order: word processors
and LaTeX draw a page top to bottom, column by column. Report generators, invoicing systems and form
tools often do not: they draw the address block bottom up, a value before its label, a table column
by column. On such a page "Invoice Date:" ends up lines away from "20-10-2015", and a page's first
line is a footer or the last line of an address, so extraction and the classifier's "start of the
document" read the wrong things.

A page is reordered only when its stream order is visibly not a reading order: at least a fifth of
the moves from one line to the next go backwards (up without going to a new column on the right, or
leftwards within a line). A page read column by column, or one a two-column paper draws in order,
moves backwards a few times at most and is left as drawn. A reordered page is read as a person
scans a form: line by line from the top, left to right within a line (the order `pdftotext -layout`
gives), so a label and its value, and a table's row, come together. Pages of right-to-left scripts
are left alone (their lines run the other way).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

BACKWARD_SHARE = 0.2   # share of backward moves from which a page's stream order is not a reading order
MIN_BACKWARD = 3       # and at least this many (a 4-line page with one odd move is not scrambled)
SAME_LINE_OVERLAP = 0.5  # two boxes share a line when they overlap by half the smaller one's height
_RTL_LETTERS = re.compile(r"[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]")
_LETTERS = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Box:
    """A line's box on its page, in points from the page's top-left corner."""
    left: float
    top: float
    right: float
    bottom: float

    @property
    def height(self) -> float:
        return max(1.0, self.bottom - self.top)


def _same_line(a: Box, b: Box) -> bool:
    overlap = min(a.bottom, b.bottom) - max(a.top, b.top)
    return overlap >= SAME_LINE_OVERLAP * min(a.height, b.height)


def is_backward(a: Box, b: Box) -> bool:
    """Reading `b` right after `a` goes backwards: leftwards on the same line, or up the page
    without moving to a column to the right of `a`."""
    if _same_line(a, b):
        return b.right <= a.left + 1
    went_up = b.top < a.top - 0.5 * min(a.height, b.height)
    new_column = b.left >= a.right - 1
    return went_up and not new_column


def backward_moves(boxes: list[Box]) -> int:
    return sum(is_backward(a, b) for a, b in zip(boxes, boxes[1:]))


def is_scrambled(boxes: list[Box]) -> bool:
    """The drawing order of these lines is not a reading order (see the module's docstring)."""
    if len(boxes) < 2:
        return False
    backward = backward_moves(boxes)
    return backward >= MIN_BACKWARD and backward >= BACKWARD_SHARE * (len(boxes) - 1)


def line_by_line(boxes: list[Box]) -> list[int]:
    """Indices of `boxes` line by line from the top, left to right within a line. A line is the
    boxes that share it with its first (topmost) box: a union would grow down the page."""
    by_middle = sorted(range(len(boxes)), key=lambda i: ((boxes[i].top + boxes[i].bottom) / 2, boxes[i].left))
    lines: list[list[int]] = []
    for i in by_middle:
        if lines and _same_line(boxes[lines[-1][0]], boxes[i]):
            lines[-1].append(i)
        else:
            lines.append([i])
    return [i for line in lines for i in sorted(line, key=lambda j: boxes[j].left)]


def is_right_to_left(texts: list[str]) -> bool:
    joined = "".join(texts)
    letters = len(_LETTERS.findall(joined))
    return letters > 0 and len(_RTL_LETTERS.findall(joined)) >= 0.3 * letters


def page_order(boxes: list[Box], texts: list[str]) -> list[int] | None:
    """The order to read a page's lines in, or None to keep the order they were drawn in."""
    if not is_scrambled(boxes) or is_right_to_left(texts):
        return None
    return line_by_line(boxes)


def reorder_scrambled_pages(document) -> int:
    """Put the lines of each scrambled page of a flat docling document (the native PDF pipeline's:
    plain texts and pictures, all children of the body) in reading order. Returns how many pages
    were reordered; a document of any other shape is left as it is."""
    from docling_core.types.doc import TextItem

    children = list(document.body.children)
    entries = []   # (page number, box, text, child reference) in drawing order
    for ref in children:
        item = ref.resolve(document)
        if item.children or not item.prov or item.prov[0].page_no not in document.pages:
            return 0
        prov = item.prov[0]
        height = document.pages[prov.page_no].size.height
        bbox = prov.bbox.to_top_left_origin(height)
        if isinstance(item, TextItem):
            entries.append((prov.page_no, Box(bbox.l, bbox.t, bbox.r, bbox.b), item.text, ref))
        else:   # a picture is placed by its top edge: its height would put it on many lines at once
            entries.append((prov.page_no, Box(bbox.l, bbox.t, bbox.r, bbox.t + 1), "", ref))
    if [e[0] for e in entries] != sorted(e[0] for e in entries):
        return 0   # pages interleaved: not the shape this reads
    reordered, start, ordered = 0, 0, []
    while start < len(entries):
        end = start
        while end < len(entries) and entries[end][0] == entries[start][0]:
            end += 1
        page = entries[start:end]
        order = page_order([e[1] for e in page], [e[2] for e in page])
        if order is not None:
            reordered += 1
            page = [page[i] for i in order]
        ordered.extend(e[3] for e in page)
        start = end
    if reordered:
        document.body.children = ordered
    return reordered
