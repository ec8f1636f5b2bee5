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


def _font_named_in_utf16_pdf() -> bytes:
    """A page in Helvetica and in a barcode font whose name was written in UTF-16, NUL bytes and all,
    into the name token ("/DZZZZZ+\\0C\\0o..."): a real boleto generator (PDFKit) wrote its fonts so.
    A NUL is white space in PDF, so the font's dictionary falls apart: docling's parser then cannot
    resolve the font and gives up the whole page; pdfium (and poppler) read the text regardless."""
    name = b"/DZZZZZ+" + b"".join(b"\x00" + bytes([c]) for c in b"Code2of5interleaved")
    to_unicode = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def "
                  b"1 begincodespacerange <0000><ffff> endcodespacerange 1 beginbfchar <0001><0041> endbfchar "
                  b"endcmap CMapName currentdict /CMap defineresource pop end end")
    content = b"BT /F1 14 Tf 72 720 Td (Boleto 1001 Valor R$ 110,00) Tj ET BT /F4 12 Tf 72 700 Td <0001> Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R /F4 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%b\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<<\n/Type /Font\n/Subtype /Type0\n/BaseFont %b\n/Encoding /Identity-H\n/DescendantFonts [7 0 R]\n"
        b"/ToUnicode 9 0 R\n>>" % name,
        b"<<\n/Type /Font\n/Subtype /CIDFontType2\n/BaseFont %b\n/CIDSystemInfo << /Registry (Adobe) "
        b"/Ordering (Identity) /Supplement 0 >>\n/FontDescriptor 8 0 R\n/W [0 [500]]\n>>" % name,
        b"<<\n/Type /FontDescriptor\n/FontName %b\n/Flags 4\n/FontBBox [0 0 415 878]\n/ItalicAngle 0\n"
        b"/Ascent 976\n/Descent 0\n/CapHeight 976\n/StemV 0\n>>" % name,
        b"<< /Length %d >>\nstream\n%b\nendstream" % (len(to_unicode), to_unicode),
    ]
    return docs.raw_pdf(objects, version=b"1.3")


def test_a_pdf_whose_page_docling_cannot_parse_is_read_from_its_text_layer(converter):
    doc = convert(converter, "boleto.pdf", _font_named_in_utf16_pdf())
    assert doc.converter == "pdfium-text"
    assert doc.text.startswith("Boleto 1001 Valor R$ 110,00")


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


def test_a_text_layer_docling_read_a_fraction_of_is_read_by_pdfium(monkeypatch):
    """docling's parser read an R vignette's 17 pages (a Debian package's, not in ../shared) as 8,202
    characters of glyph names and dingbats where pdfium reads 32,195 of words: too few symbols for
    text_layer.unreadable. Here docling's reading is cut to a tenth of the page (its parser cannot be
    made to misread a font we can generate): the text layer, read anyway to find pages to OCR, holds
    far more, and pdfium's reading replaces it. A page docling reads whole keeps docling's text."""
    words = "Structural change tests for linear regression models. " * 12
    converter = Converter(StageConfig())
    kept = convert(converter, "vignette.pdf", docs.pdf_bytes(words))
    assert kept.converter == "docling-native" and "Structural change" in kept.text

    real = converter._docling_convert

    def docling_reads_a_tenth(name, fmt, data):
        text, pages = real(name, fmt, data)
        return text[:len(text) // 10], pages

    monkeypatch.setattr(converter, "_docling_convert", docling_reads_a_tenth)
    doc = convert(converter, "vignette.pdf", docs.pdf_bytes(words))
    assert doc.converter == "pdfium-text"
    assert doc.text.count("Structural change") >= 10
