"""Reading order of PDF pages drawn out of order (transforms/reading_order.py): the rule on boxes,
then real conversions (docling's native pipeline) of a generated PDF drawn bottom up and of a real
statistical report from ../shared (skipped where absent)."""
import os

import pytest

from transforms.config import StageConfig
from transforms.convert import Converter
from transforms.reading_order import Box, is_scrambled, line_by_line, page_order
from transforms.records import Document

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus")


def _column(lines: int, left: float = 50, width: float = 200, top: float = 100) -> list[Box]:
    return [Box(left, top + 14 * i, left + width, top + 14 * i + 10) for i in range(lines)]


def test_a_page_drawn_top_down_or_column_by_column_is_kept():
    one_column = _column(30)
    assert not is_scrambled(one_column)
    two_columns = _column(30, left=50) + _column(30, left=320)   # a paper: left column, then right
    assert page_order(two_columns, ["word"] * 60) is None
    # a table read column by column: down a column, up to the next one on the right
    table = _column(5, left=50, width=60) + _column(5, left=150, width=60) + _column(5, left=250, width=60)
    assert not is_scrambled(table)


def test_a_page_drawn_bottom_up_or_values_before_labels_is_read_line_by_line():
    bottom_up = list(reversed(_column(10)))
    assert is_scrambled(bottom_up)
    assert page_order(bottom_up, ["word"] * 10) == list(range(9, -1, -1))
    # each value drawn before its label, on the same line: "20-10-2015", "Invoice Date:"
    labels = _column(6, left=50, width=80)
    values = _column(6, left=150, width=80)
    drawn = [box for pair in zip(values, labels) for box in pair]
    assert is_scrambled(drawn)
    order = line_by_line(drawn)
    assert [drawn[i] for i in order] == [box for pair in zip(labels, values) for box in pair]


def test_right_to_left_pages_are_left_as_drawn():
    drawn = list(reversed(_column(10)))
    assert page_order(drawn, ["שלום עולם"] * 10) is None
    assert page_order(drawn, ["مرحبا بالعالم"] * 10) is None


def _bottom_up_invoice_pdf() -> bytes:
    """An invoice whose lines are drawn from the bottom of the page up, each value before its label,
    as some invoicing systems write them."""
    from fpdf import FPDF

    rows = [("ACME Hosting AG", ""), ("Invoice No.", "30064443"), ("Invoice Date:", "7 May 2014"),
            ("Customer No.", "47774"), ("Description", "Amount"), ("Mail hosting, May", "34.73"),
            ("Total EUR", "34.73"), ("Payment within 14 days", "")]
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for i in reversed(range(len(rows))):
        label, value = rows[i]
        y = 30 + 10 * i
        if value:
            pdf.text(120, y, value)
        pdf.text(20, y, label)
    return bytes(pdf.output())


@pytest.fixture(scope="module")
def converter():
    return Converter(StageConfig(model_threads=1, ocr="off"))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_pdf_drawn_bottom_up_converts_in_reading_order(converter):
    doc = Document(id="", paths=["bottom-up.pdf"], filename="bottom-up.pdf")
    converter.convert(doc, _bottom_up_invoice_pdf())
    lines = _lines(doc.text)
    assert lines[0] == "ACME Hosting AG"
    assert lines[lines.index("Invoice Date:") + 1] == "7 May 2014"
    assert lines[lines.index("Total EUR") + 1] == "34.73"
    assert lines[-1] == "Payment within 14 days"


def test_a_real_report_drawn_column_by_column_reads_row_by_row(converter):
    path = os.path.join(SHARED, "labeled", "report__tabula__argentina_diputados_voting_record.pdf")
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent: the shared corpus is not on this machine")
    doc = Document(id="", paths=[path], filename=os.path.basename(path))
    with open(path, "rb") as fh:
        converter.convert(doc, fh.read())
    lines = _lines(doc.text)
    # A voting record: a member's name, party, province and vote are one row of the table. Drawn
    # column by column on its first page, the name was far from the vote.
    name = lines.index("ABDALA de MATARAZZO, Norma Amanda")
    assert lines[name + 1:name + 4] == ["Frente Cívico por Santiago", "Santiago del Estero", "AFIRMATIVO"]
