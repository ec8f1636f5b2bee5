"""A PDF's page count costs little, however many pages it has or claims to have (issue 19).

The page limit (--max-pages) is checked first, from the count pdfium reads in the page tree's root
(/Count): nothing that costs per page (the e-invoice attachment scan, docling, the OCR loop) runs
before it. Measured on 2 shared Intel Xeon cores (2026-12-01), a hand-written 100,000-page PDF
(13 MB, one shared empty content stream): generated in 0.2 s; refused in 0.03-0.06 s with ~30 MB
more peak RSS in-process (balanced or flat page tree alike), in 0.10 s and ~21 MB more RSS of the
converter process through the isolated converter. A page tree without a usable /Count is walked by pdfium:
0.4 s for the same 100,000 pages. No time is asserted here (speed targets live in bench/): a hang
would show as the converter's timeout reason instead of the page-limit one.
"""
import os

import psycopg
import pytest

from pipeline import run as run_module
from tests import docs
from tests.docs import convert
from transforms.config import StageConfig
from transforms.convert import ConversionError, Converter
from transforms.failures import is_deterministic
from transforms.isolate import IsolatedConverter
from transforms.records import Document

HUGE = 100_000
LIMIT = "PDF has 100000 pages, more than the limit of 2000 (--max-pages)"


@pytest.fixture(scope="module")
def converter():
    return Converter(StageConfig())


@pytest.mark.parametrize("fanout", [100, 0], ids=["balanced-tree", "flat-tree"])
def test_a_100000_page_pdf_is_refused_by_the_page_limit(converter, fanout):
    data = docs.many_pages_pdf_bytes(HUGE, fanout=fanout)
    with pytest.raises(ConversionError) as failure:
        convert(converter, "huge.pdf", data)
    assert str(failure.value) == LIMIT
    assert is_deterministic("convert", str(failure.value))  # a rerun does not open it again


def cyclic_page_tree_pdf() -> bytes:
    """A page tree whose inner node lists the root (and itself) among its kids, claiming 10**9 pages."""
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[4 0 R 3 0 R]/Count 1000000000>>",
               b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>",
               b"<</Type/Pages/Parent 2 0 R/Kids[2 0 R 4 0 R 3 0 R]/Count 7>>"]
    return docs.raw_pdf(objects)


def test_the_isolated_converter_refuses_it_too_well_within_its_timeout(tmp_path):
    path = docs.write(tmp_path, "huge.pdf", docs.many_pages_pdf_bytes(HUGE))
    converter = IsolatedConverter(StageConfig(convert_timeout=60))
    try:
        doc = Document(id="x", paths=[path], filename="huge.pdf")
        with pytest.raises(ConversionError) as failure:
            converter.convert(doc)
        assert str(failure.value) == LIMIT  # not "timeout: ..." nor a memory limit
        # A page tree that loops back on itself: a clear, deterministic reason, not a hang.
        path = docs.write(tmp_path, "cyclic.pdf", cyclic_page_tree_pdf())
        with pytest.raises(ConversionError) as failure:
            converter.convert(Document(id="c", paths=[path], filename="cyclic.pdf"))
        assert is_deterministic("convert", str(failure.value)), str(failure.value)
        # The converter process survived it and converts the next document.
        good = docs.write(tmp_path, "three.pdf", docs.many_pages_pdf_bytes(3, text="Quarterly report"))
        doc = Document(id="y", paths=[good], filename="three.pdf")
        converter.convert(doc)
        assert doc.pages == 3 and "Quarterly report" in doc.text
    finally:
        converter.close()


def test_a_page_tree_that_declares_more_pages_than_it_holds(converter):
    # Declared over the limit: refused by what the file itself declares, before anything is read.
    with pytest.raises(ConversionError, match="PDF has 100000 pages, more than the limit"):
        convert(converter, "liar.pdf", docs.many_pages_pdf_bytes(1, declared=HUGE, text="Only page"))
    # Declared under the limit: the pages that exist are read and counted (pdfium cannot load the
    # others; that used to fail the document with a bare "PdfiumError: Failed to load page.").
    doc = convert(converter, "liar.pdf", docs.many_pages_pdf_bytes(1, declared=500, text="Only page here"))
    assert doc.pages == 1 and "Only page here" in doc.text
    # Declared beyond what pdfium believes (over 1,048,575): it walks the tree and finds the real ones.
    doc = convert(converter, "liar.pdf", docs.many_pages_pdf_bytes(2, declared=10 ** 9, text="Two pages"))
    assert doc.pages == 2 and "Two pages" in doc.text
    # Nothing readable at all: a clear, deterministic reason.
    with pytest.raises(ConversionError) as failure:
        convert(converter, "empty-liar.pdf", docs.many_pages_pdf_bytes(1, declared=1500))
    assert str(failure.value).startswith("no text found in the pdf document")


@pytest.mark.slow
def test_the_pipeline_records_the_huge_pdf_as_failed_and_goes_on(tmp_path, pg_dsn):
    """Through the whole pipeline (in-memory runner, isolated converter): the 100,000-page PDF is one
    failed path with the page-limit reason, the document beside it completes."""
    folder = tmp_path / "in"
    docs.write(folder, "huge.pdf", docs.many_pages_pdf_bytes(HUGE))
    docs.write(folder, "letter.pdf", docs.many_pages_pdf_bytes(
        2, text="Dear Ms. Smith, thank you for your letter of 3 May. Yours sincerely, Bob Jones"))
    summary = run_module.run(["--input", str(folder), "--pg-dsn", pg_dsn, "--convert-timeout", "60",
                              "--runner", "FnApiRunner", "--direct_running_mode", "in_memory"])
    assert (summary["paths"], summary["completed"], summary["failed"]) == (2, 1, 1)
    with psycopg.connect(pg_dsn) as conn:
        rows = dict(conn.execute("SELECT i.path, d.error_stage || ': ' || d.error_message FROM inputs i "
                                 "JOIN documents d ON d.id = i.document_id WHERE i.status = 'failed'").fetchall())
    assert rows == {str(folder / "huge.pdf"): "convert: " + LIMIT}
    assert os.path.getsize(folder / "huge.pdf") > 10_000_000  # really the big file, not a small stand-in


def test_only_the_first_attachments_are_searched_for_an_e_invoice(monkeypatch):
    """A PDF with 100,000s of attachments must not cost per attachment (20,000 took 0.9 s); a real
    e-invoice PDF carries a handful, so only the first einvoice.MAX_ATTACHMENTS are looked at."""
    import io

    import pypdfium2 as pdfium

    from tests.test_einvoice import CII
    from transforms import einvoice

    def pdf_with(names):
        pdf = pdfium.PdfDocument.new()
        pdf.new_page(595, 842)
        for name in names:
            pdf.new_attachment(name).set_data(CII if name == "factur-x.xml" else b"<other/>")
        buffer = io.BytesIO()
        pdf.save(buffer)
        return pdfium.PdfDocument(buffer.getvalue())

    monkeypatch.setattr(einvoice, "MAX_ATTACHMENTS", 5)
    # pdfium lists attachments in the order of their names (a PDF's name tree is sorted).
    before, after = [f"a-{i}.xml" for i in range(8)], [f"z-{i}.xml" for i in range(8)]
    assert einvoice.from_pdf(pdf_with(["factur-x.xml", *after]))["number"] == "RE-2024-0815"
    assert einvoice.from_pdf(pdf_with([*before[:4], "factur-x.xml", *after]))["number"] == "RE-2024-0815"
    assert einvoice.from_pdf(pdf_with([*before, "factur-x.xml"])) is None  # beyond the first 5: not looked at
