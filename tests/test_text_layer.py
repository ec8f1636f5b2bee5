"""Text layers that cannot be read, and the shape of PDF pages (real docling, pdfium and rapidocr)."""
import pytest

from tests import docs
from tests.docs import convert
from transforms import text_layer
from transforms.config import StageConfig
from transforms.convert import Converter, is_landscape


@pytest.fixture(scope="module")
def converter():
    return Converter(StageConfig())


# What docling's parser made of a French CV whose fonts have no usable encoding (a LaTeX class's
# example output): glyph names and dingbats where "Enseignant en Mathématiques / Jean DUPONT" stood.
GARBLED = "❊♥a115❡✐❣♥❛♥a116 ❡♥ ▼❛a116❤a233♠❛a116✐a113✉❡a115\n\n❏❡❛♥ ❉❯a80❖◆❚\n\n✸✱ a114✉❡ ❞❡ ❧❛ ❧✐❜❡a114a116a233"


@pytest.mark.parametrize("text", [
    "Enseignant en Mathématiques. Jean Dupont, 3 rue de la Liberté, 33000 Bordeaux.",
    "Уважаемый коллега, направляю вам отчёт за третий квартал.",
    "请求书 番号 2024-117 合計金額 ¥12,000 (税込)",
    "فاتورة رقم ١٢٣ بتاريخ ٢٠٢٤",
    "Let ∑ x_i ≤ 1 and ∀ε > 0 ∃δ: |x − y| < δ ⇒ |f(x) − f(y)| < ε.",
    "☐ Yes ☐ No ☑ I agree  ✓ signed — see page 2 →",
    "| Item | Qty | Price |\n|---|---|---|\n| Widget | 2 | 4.50 € |\n\n<!-- image -->\n\n<!-- image -->",
])
def test_text_in_any_script_maths_and_check_boxes_is_readable(text):
    assert not text_layer.unreadable(text)


def test_glyph_names_and_dingbats_are_unreadable():
    assert text_layer.unreadable_share(GARBLED) > 0.4
    assert text_layer.unreadable("GLYPH<c=3,font=/AAAAAH+CMR10> GLYPH<c=7,font=/AAAAAH+CMR10> ab")
    assert text_layer.unreadable("\ufffd\ufffd\ufffd\ufffd ok")
    assert not text_layer.unreadable("") and not text_layer.unreadable(None)


def test_pdfium_reads_a_text_layer_page_by_page():
    import pypdfium2 as pdfium

    text = text_layer.pdfium_text(pdfium.PdfDocument(docs.pdf_bytes("Invoice INV-7 dated 2024-01-02", pages=2)))
    assert text.split("\n\n") == ["Invoice INV-7 dated 2024-01-02"] * 2


def _symbols_over_a_scan(words: str) -> bytes:
    """A page whose text layer is all dingbats (the core font ZapfDingbats draws "a" as ✁) over a
    picture of real words: a text layer no reader can make words of, on a page OCR can read."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.image(docs.text_image(words, size=(1240, 1754)), x=0, y=0, w=210)
    pdf.set_font("zapfdingbats", size=8)
    pdf.set_xy(10, 280)
    pdf.cell(0, 4, "Curriculum vitae de Jean Dupont enseignant")
    return bytes(pdf.output())


def test_a_text_layer_no_reader_can_read_is_replaced_by_ocr(converter):
    doc = convert(converter, "cv.pdf", _symbols_over_a_scan("DELIVERY NOTE 7781\nShipped to Lyon"))
    assert doc.converter == "ocr"
    assert "7781" in doc.text and "Lyon" in doc.text
    assert not text_layer.unreadable(doc.text)


def test_landscape_pages_are_told_from_portrait_ones(converter):
    import pypdfium2 as pdfium
    from fpdf import FPDF

    def pdf_of(orientations: str) -> bytes:
        pdf = FPDF()
        pdf.set_font("helvetica", size=20)
        for orientation in orientations:
            pdf.add_page(orientation=orientation)
            pdf.cell(0, 10, "Agenda: results and next steps")
        return bytes(pdf.output())

    assert is_landscape(pdfium.PdfDocument(pdf_of("PLLL")))      # a portrait title page, then slides
    assert not is_landscape(pdfium.PdfDocument(pdf_of("PPL")))   # a report with one wide table
    assert convert(converter, "talk.pdf", pdf_of("LLL")).landscape is True
    assert convert(converter, "memo.pdf", pdf_of("P")).landscape is False
