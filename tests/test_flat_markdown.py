"""Markdown of flat docling documents written directly (transforms/flat_markdown.py): the same text,
byte for byte, as docling-core's serializer, on real PDFs (../shared/corpus, where present) and on
generated documents; anything else is left to docling."""
import glob
import io
import os

import pytest

from bench import corpus
from tests import docs
from transforms.config import StageConfig
from transforms.convert import Converter
from transforms.flat_markdown import flat_markdown

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus")


@pytest.fixture(scope="module")
def docling():
    return Converter(StageConfig(model_threads=1)).docling


def _layers():
    from docling_core.types.doc import ContentLayer

    return {ContentLayer.BODY, ContentLayer.FURNITURE}  # what transforms.convert exports


def _document(docling, name: str, data: bytes):
    from docling.datamodel.base_models import DocumentStream

    return docling.convert(DocumentStream(name=name, stream=io.BytesIO(data))).document


def _same_as_docling(document) -> bool | None:
    """None when the document is not flat (docling's serializer writes it); else True, once both
    Markdowns are asserted equal."""
    ours = flat_markdown(document, _layers())
    if ours is None:
        return None
    assert ours == document.export_to_markdown(included_content_layers=_layers())
    return True


def _real_pdfs() -> list[str]:
    found = [path for folder in ("real", "labeled")
             for path in glob.glob(os.path.join(SHARED, folder, "*.pdf"))]
    return sorted(found)[::3]  # every third: ~30 PDFs of all kinds (papers, forms, invoices, decks), ~10 s


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/corpus is not on this machine")
def test_real_pdfs_read_the_same_as_docling_writes_them(docling):
    agreed = 0
    for path in _real_pdfs():
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            document = _document(docling, "x.pdf", data)
        except Exception:  # a PDF docling cannot read is the converter's business, not this test's
            continue
        agreed += bool(_same_as_docling(document))
    assert agreed >= 20, agreed  # the native pipeline's documents are flat: nearly all take this path


def test_generated_pdfs_and_special_characters_read_the_same(docling):
    texts = ["Invoice no_42 <draft> & co: total 1_000 EUR", "line one\nline two\n\nnext paragraph"]
    for text in texts:
        assert _same_as_docling(_document(docling, "x.pdf", docs.pdf_bytes(text, pages=2)))
    for index in range(12):
        rel, data, row = corpus.generate_document(index, 7)
        if row["format"] == "pdf":
            assert _same_as_docling(_document(docling, "x.pdf", data))


def test_documents_with_structure_are_left_to_docling(docling):
    """A DOCX with a heading is not flat: docling's serializer writes it (and the converter's text
    is docling's)."""
    data = docs.docx_bytes("Quarterly report", ["Revenue grew by 4 %.", "Costs fell."])
    document = _document(docling, "x.docx", data)
    assert flat_markdown(document, _layers()) is None
    from transforms.records import Document

    doc = Document(id="x", paths=["x.docx"], filename="x.docx")
    Converter(StageConfig(model_threads=1)).convert(doc, data)
    assert doc.text == document.export_to_markdown(included_content_layers=_layers())
