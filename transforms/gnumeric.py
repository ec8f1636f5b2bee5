"""Gnumeric workbooks (.gnumeric: gzip-compressed XML): each sheet as a Markdown table.

Docling has no reader for them, and read as any other XML (transforms.xml_text) a workbook's text
comes out in the order Gnumeric writes its cells, which is not the order of the sheet: Debian's
invoice template gave "Invoice #" next to a formula and its number twenty lines further on. Here
the cells are put back on their rows and columns, so a label and its value share a table row as
they do on screen, and the classifier and the extractor see the same table they see for an XLSX.

A formula cell holds only its expression ("=sum(M36,M37)"): Gnumeric does not save the computed
value, and computing it is a spreadsheet engine's work. Such a cell is left empty rather than
filled with the formula's text, which is no value a reader of the sheet ever sees.
"""
from __future__ import annotations

import re

from transforms import xml_text

MIME = "application/x-gnumeric"
# The root element of a workbook, in the namespaces of Gnumeric's XML formats (1.0 to today's v10).
_WORKBOOK = re.compile(rb"<(?:\w+:)?Workbook\b[^>]*gnum", re.IGNORECASE)


def is_workbook(head: bytes) -> bool:
    """Whether an XML file's first bytes open a Gnumeric workbook."""
    return _WORKBOOK.search(head) is not None


def workbook_text(data: bytes) -> str | None:
    """Each sheet as a heading with its name and a Markdown table of its non-empty rows and columns;
    None when `data` is not well-formed XML (or declares entities)."""
    from xml.parsers import expat

    sheets: list[tuple[str, dict[tuple[int, int], str]]] = []
    path: list[str] = []          # local names of the open elements
    text: list[str] = []          # character data of the element being read
    cell: dict = {}               # attributes of the open <Cell>

    def local(name: str) -> str:
        return name.rsplit(":", 1)[-1]

    def start(name, attrs):
        name = local(name)
        if name == "Sheet":
            sheets.append(("", {}))
        elif name == "Cell" and sheets:
            cell.clear()
            cell.update(attrs)
        path.append(name)
        text.clear()

    def end(name):
        name = local(name)
        parent = path[-2] if len(path) > 1 else ""
        value = "".join(text).strip()
        if name == "Name" and parent == "Sheet" and sheets and not sheets[-1][0]:
            sheets[-1] = (value, sheets[-1][1])
        elif name in ("Cell", "Content") and cell and value:
            # Gnumeric 1.0 writes <Cell><Content>v</Content></Cell>, later versions <Cell>v</Cell>
            if not (value.startswith("=") and "ValueType" not in cell):   # a formula, value unsaved
                try:
                    sheets[-1][1][(int(cell["Row"]), int(cell["Col"]))] = value
                except (KeyError, ValueError):
                    pass
        if name == "Cell":
            cell.clear()
        path.pop()
        text.clear()

    parser = xml_text.guarded_parser()   # entities refused, as for any XML
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, xml_text.EntityDeclared):
        return None
    parts = []
    for number, (name, cells) in enumerate(sheets, start=1):
        if cells:
            parts.append(f"## {name or f'Sheet {number}'}\n\n{_markdown_table(cells)}")
    return "\n\n".join(parts)


def _markdown_table(cells: dict[tuple[int, int], str]) -> str:
    """The cells as a Markdown table: rows in order, only the columns that hold something, the first
    row as the header (as docling writes a sheet)."""
    columns = sorted({col for _, col in cells})
    rows = sorted({row for row, _ in cells})

    def line(row: int) -> str:
        values = (cells.get((row, col), "").replace("|", "\\|").replace("\n", " ") for col in columns)
        return "| " + " | ".join(values) + " |"

    lines = [line(rows[0]), "|" + "---|" * len(columns)]
    lines.extend(line(row) for row in rows[1:])
    return "\n".join(lines)
