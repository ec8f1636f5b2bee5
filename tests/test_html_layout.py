"""HTML tables used for layout read as blocks (transforms/html_layout.py), through docling itself."""
import pytest

from transforms.config import StageConfig
from transforms.convert import Converter
from transforms.html_layout import unwrap_layout_tables
from transforms.records import Document

# An order confirmation as shops write them: the page laid out by tables in tables, the items a
# data table inside. (Written for this test after the shape of real e-mail receipts.)
ORDER_EMAIL = b"""<html><head><meta charset="iso-8859-1"><title>Your order</title></head><body>
<table role="presentation" width="100%"><tr><td>
  <table><tr><td><h2>Order Confirmation</h2><p>Thank you for shopping with Example Shop.</p></td></tr></table>
  <table><tr><td>Order Placed:</td><td>February 7, 2016</td></tr>
         <tr><td>Order number:</td><td>166-7926740-5141621</td></tr></table>
  <table>
    <tr><th>Item</th><th>Price</th></tr>
    <tr><td>Casio watch</td><td>$11.87</td></tr>
    <tr><td>Sales tax</td><td>$1.13</td></tr>
  </table>
  <p>Grand Total: $13.00</p><p>Caf\xe9 voucher included</p>
</td></tr></table></body></html>"""

# A data table whose cells wrap their text in a paragraph, as word processors write HTML.
WORD_TABLE = b"""<html><body><table>
<tr><td><p>Name</p></td><td><p>Amount</p></td></tr>
<tr><td><p>Alpha</p></td><td><p>10</p></td></tr>
<tr><td><p>Beta</p></td><td><p>20</p></td></tr></table></body></html>"""


@pytest.fixture(scope="module")
def converter():
    return Converter(StageConfig(model_threads=1, ocr="off"))


def _text(converter, data: bytes) -> str:
    doc = Document(id="", paths=["page.html"], filename="page.html")
    converter.convert(doc, data)
    return doc.text


def test_an_order_email_laid_out_by_tables_reads_as_headings_lines_and_one_data_table(converter):
    text = _text(converter, ORDER_EMAIL)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert "## Order Confirmation" in lines
    # the label/value table and the items are data tables, and stay tables
    assert any(line.startswith("| Order Placed:") and "February 7, 2016" in line for line in lines)
    assert any(line.startswith("| Casio watch") and "$11.87" in line for line in lines)
    assert "Grand Total: $13.00" in lines
    assert "Café voucher included" in lines          # the page's own charset kept through the rewrite


def test_data_tables_and_pages_without_layout_tables_are_left_alone(converter):
    assert unwrap_layout_tables(WORD_TABLE) == WORD_TABLE
    assert "| Alpha" in _text(converter, WORD_TABLE)
    plain = b"<html><body><p>No tables here</p></body></html>"
    assert unwrap_layout_tables(plain) is plain


def test_a_page_of_deeply_nested_tables_still_gives_bytes_to_convert():
    deep = b"<table><tr><td>" * 3000 + b"x" + b"</td></tr></table>" * 3000
    assert isinstance(unwrap_layout_tables(deep), bytes)
