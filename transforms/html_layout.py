"""HTML tables used for layout, read as the blocks they lay out.

E-mail receipts, order confirmations and invoice templates place their content with tables: a
table holding the page, a row holding the header, a cell holding an address block and another the
totals. docling reads every table as data, and a table cell as one line of text, so a whole order
confirmation came out as one Markdown table cell ("| Order Placed: February 7, 2016 Amazon.com order
number: 166-... Order Total: $11.94 Shipped on ... Grand Total: $11.94 ... |"): nothing to tell a
label from the next, no heading, no paragraph, one search chunk.

A table is taken for layout when it says so (`role="presentation"`), when it holds another table,
when it has one row or every row has at most one cell, or when a cell holds a heading (cells of
several paragraphs or lines are not enough: data tables have those too). Its table tags become
divisions, so docling reads its cells as paragraphs, headings and lists, and the data tables inside
(an order's item lines, a totals block) stay tables. A layout cell of words only becomes an inline
span, so a row of them reads as one line ("Grand Total: $11.94", an item and its price). A data
table whose cells each wrap their text in one paragraph, as word processors write HTML, is left a
table.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_TABLE_TAGS = ("table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "colgroup", "col")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_LISTS = ("ul", "ol", "dl", "blockquote")
_BLOCKS = ("p", "div", "section", "article", "header", "footer", "address", "hr")
MAX_TABLES = 2000   # a page of more tables than this is left as it is (a generated or hostile page)


class _Tables:
    """Each table's own rows, cells and nested tables, found in one pass over the page (asking each
    table for its descendants costs the square of the nesting depth)."""

    def __init__(self, soup):
        self.tables = soup.find_all("table")
        self.layout_ids: set[int] = set()
        self.own: dict[int, list] = {id(t): [] for t in self.tables}   # rows, cells, ... of the table itself
        self.cells: dict[int, list] = {id(t): [] for t in self.tables}
        rows: dict[int, list] = {id(t): [] for t in self.tables}
        table_of, cell_of = {}, {}
        for tag in soup.descendants:
            if getattr(tag, "name", None) is None:
                continue
            parent = tag.parent
            table_of[id(tag)] = parent if parent.name == "table" else table_of.get(id(parent))
            cell_of[id(tag)] = parent if parent.name in ("td", "th") else cell_of.get(id(parent))
            table = table_of[id(tag)]
            if table is None:
                continue
            if tag.name == "table":
                self.layout_ids.add(id(table))            # it holds another table
            elif tag.name in _TABLE_TAGS:
                self.own[id(table)].append(tag)
                if tag.name == "tr":
                    rows[id(table)].append(tag)
                elif tag.name in ("td", "th") and tag.parent.name == "tr":
                    self.cells[id(table)].append(tag)
            elif tag.name in _HEADINGS and cell_of[id(tag)] is not None:
                self.layout_ids.add(id(table_of[id(cell_of[id(tag)])]))   # a cell holds a heading
        for table in self.tables:
            role = (table.get("role") or "").strip().lower()
            cells_per_row = [len(row.find_all(["td", "th"], recursive=False)) for row in rows[id(table)]]
            # one row is blocks side by side (a logo and the invoice's number, two addresses), not data
            if role in ("presentation", "none") or len(cells_per_row) <= 1 or all(n <= 1 for n in cells_per_row):
                self.layout_ids.add(id(table))

    def layout(self) -> list:
        return [t for t in self.tables if id(t) in self.layout_ids]


def _holds_blocks(cell) -> bool:
    return cell.find(("table", *_HEADINGS, *_LISTS, *_BLOCKS, "br")) is not None


def unwrap_layout_tables(data: bytes) -> bytes:
    """The HTML with its layout tables turned into divisions; `data` itself when it has none, or
    when it cannot be parsed (docling then reads it, and reports what is wrong with it)."""
    if b"<table" not in data.lower():
        return data
    try:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(data, "html.parser")
        tables = _Tables(soup)
        layout = tables.layout()
        if not layout or len(tables.tables) > MAX_TABLES:
            return data
        for table in layout:
            for tag in [table, *tables.own[id(table)]]:   # a nested table is its own decision
                if tag.name in ("td", "th") and not _holds_blocks(tag):
                    # a cell of words stays on its row's line: "Grand Total:" "$11.94", an item and its price
                    tag.name = "span"
                    tag.append(" ")
                else:
                    tag.name = "div"
                for attribute in ("colspan", "rowspan", "role"):
                    tag.attrs.pop(attribute, None)
        # encode() writes the charset it encodes in into the page's <meta charset>
        return soup.encode("utf-8")
    except (RecursionError, ValueError, TypeError, AttributeError) as exc:   # a pathological page
        log.debug("layout tables left as they are: %s: %s", type(exc).__name__, exc)
        return data
