"""Shares of the work of equal cost for local worker processes.

Beam's FnApiRunner (the local runner) does not balance work while a stage runs: it cuts a stage's
input into one fixed share per worker process, by count, and a worker that finishes its share early
stays idle. Documents differ in cost by a factor of a thousand (an OCR'd scan or a book against a
short email), so shares of equal count are not shares of equal work: over the 183 real files of
../shared/corpus one worker often ran 10-25 s alone at the end of a 95 s run. On the local runner
the graph therefore deals the documents into one lane per worker by estimated cost, largest first,
each to the lane with the least work so far (longest-processing-time-first), and groups them by
lane (pipeline.graph). Cluster runners balance work themselves and keep Beam's Reshuffle.

The estimate is read from the file without converting it: its format, its size and, for a local
PDF, its page count and how much text layer its first pages have (pdfium reads these without
parsing the rest). The constants are seconds of one core (AMD EPYC / Intel Xeon, 2026) for the
stage that dominates each kind: OCR of a page without text, embedding per character of text. Only
the ratios matter; on the measured costs of those 183 files, dealing by these estimates halves the
expected gap between two workers' work (docs/benchmarks.md).
"""
from __future__ import annotations

import heapq
import os
import re

from transforms.config import StageConfig
from transforms.convert import IMAGE_EXTENSIONS, text_layer_chars
from transforms.records import Document

# Seconds of one core, measured on the default backends (bench/results, docs/benchmarks.md).
PER_DOCUMENT = 0.05        # read, classify, extract, write: what every document pays
OCR_PAGE = 2.0             # a page without text layer: render, detect, recognise
PDF_PAGE = 0.05            # docling's parse of a page with a text layer
EMBED_PER_CHAR = 40e-6     # ~200-token windows at ~27 ms each, ~5 characters per token
PEEK_PAGES = 3             # pages of a PDF whose text layer is sampled
OCR_MIN_CHARS = StageConfig.ocr_min_chars_per_page  # fewer characters on a page: OCR reads it (default)

# Text in the file roughly as it reaches the embedder, per byte of the file.
TEXT_PER_BYTE = {".txt": 1.0, ".md": 1.0, ".csv": 1.0, ".json": 0.5, ".xml": 0.3, ".html": 0.3,
                 ".htm": 0.3, ".eml": 0.5, ".msg": 0.3}
# Office Open XML files are zips: the text is in a few XML parts, whose uncompressed size the zip's
# directory gives without inflating anything. Text per byte of those parts (the rest is markup; a
# spreadsheet's cells become a Markdown table, denser in text).
OOXML_TEXT_PARTS = re.compile(r"(word/(document|header\d*|footer\d*)|xl/sharedStrings|xl/worksheets/[^/]+"
                              r"|ppt/slides/slide\d+)\.xml$")
OOXML_TEXT_PER_XML_BYTE = {".docx": 0.1, ".pptx": 0.1, ".xlsx": 0.3}
# Other office files, or OOXML that cannot be sampled: text per byte of the file (pictures make most
# of a document's or a deck's bytes).
OFFICE_TEXT_PER_BYTE = {".docx": 0.2, ".xlsx": 1.0, ".pptx": 0.02, ".odt": 0.2, ".ods": 1.0,
                        ".odp": 0.02, ".doc": 0.2, ".xls": 0.3, ".ppt": 0.02, ".rtf": 0.2}
# A PDF that cannot be sampled (inside an archive, on a remote filesystem): bytes per page, and the
# share of its pages without text, as a mixed folder has them.
PDF_BYTES_PER_PAGE = 60_000
PDF_CHARS_PER_PAGE = 3_000
UNSAMPLED_SCAN_SHARE = 0.2


def estimate_cost(doc: Document) -> float:
    """Estimated seconds of one core that converting, embedding and classifying `doc` will take."""
    if not doc.is_pending:  # skipped (unchanged) or failed before: passes through for its record
        return 0.0
    ext = os.path.splitext(doc.filename or doc.primary_path)[1].lower()
    size = max(0, doc.size or 0)
    if ext in IMAGE_EXTENSIONS:
        return PER_DOCUMENT + OCR_PAGE
    if ext == ".pdf":
        return PER_DOCUMENT + _pdf_cost(doc, size)
    if ext in OOXML_TEXT_PER_XML_BYTE:
        xml = _ooxml_text_bytes(doc.primary_path)
        if xml is not None:
            return PER_DOCUMENT + xml * OOXML_TEXT_PER_XML_BYTE[ext] * EMBED_PER_CHAR
    if ext in OFFICE_TEXT_PER_BYTE:
        return PER_DOCUMENT + size * OFFICE_TEXT_PER_BYTE[ext] * EMBED_PER_CHAR
    return PER_DOCUMENT + size * TEXT_PER_BYTE.get(ext, 0.5) * EMBED_PER_CHAR


def _pdf_cost(doc: Document, size: int) -> float:
    sample = _sample_pdf(doc.primary_path)
    if sample == UNREADABLE:
        return 0.0  # encrypted or corrupt: the converter refuses it as fast
    if sample is None:
        pages = max(1, size // PDF_BYTES_PER_PAGE)
        scans = pages * UNSAMPLED_SCAN_SHARE
        chars = (pages - scans) * PDF_CHARS_PER_PAGE
    else:
        pages, sampled_chars, sampled_scans, sampled = sample
        scans = pages * sampled_scans / sampled
        chars = pages * sampled_chars / sampled
    return scans * OCR_PAGE + (pages - scans) * PDF_PAGE + chars * EMBED_PER_CHAR


def _local(path: str) -> bool:
    """A file of this machine's filesystem (not a member of a container, not a remote URL)."""
    return "!/" not in path and "://" not in path and os.path.isfile(path)


def _ooxml_text_bytes(path: str) -> int | None:
    """Uncompressed bytes of the text parts of a local DOCX/XLSX/PPTX, or None."""
    if not _local(path):
        return None
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist() if OOXML_TEXT_PARTS.search(info.filename))
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


UNREADABLE = (0, 0, 0, 0)


def _sample_pdf(path: str) -> tuple[int, int, int, int] | None:
    """(pages, text characters and pages without text among the first PEEK_PAGES, pages sampled),
    None when the file is not a local one (a member of an archive, a remote path: the caller guesses
    from its size), UNREADABLE when pdfium cannot open it (encrypted, corrupt)."""
    if not _local(path):
        return None
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(path)  # by path: pdfium reads the cross-reference table, not the file
    except (pdfium.PdfiumError, OSError):
        return UNREADABLE
    try:
        pages = len(pdf)
        chars = scans = sampled = 0
        for index in range(min(pages, PEEK_PAGES)):
            page = pdf[index]
            try:
                found = text_layer_chars(page)
            finally:
                page.close()
            chars += found
            scans += found < OCR_MIN_CHARS
            sampled += 1
        if not sampled:
            return None
        return pages, chars, scans, sampled
    except pdfium.PdfiumError:
        return None
    finally:
        pdf.close()


def deal(costed: list[tuple[float, Document]], lanes: int) -> list[tuple[int, Document]]:
    """(lane, document) for every document: largest estimate first, each to the lane with the least
    estimated work so far. Returned in the order of the documents' ids (content hashes), which is
    the order each lane then works in: the order within a lane changes nothing of when it ends, and
    documents of every size from the start keep the run's early progress rate and ETA honest
    (largest first, the first ETA would be several times too long)."""
    loads = [(0.0, lane) for lane in range(lanes)]  # a heap of (work so far, lane)
    dealt = []
    # Sorted on the estimate, then the id, so that equal estimates deal the same way every run.
    for cost, doc in sorted(costed, key=lambda item: (-item[0], item[1].id)):
        load, lane = heapq.heappop(loads)
        dealt.append((lane, doc))
        heapq.heappush(loads, (load + cost, lane))
    return sorted(dealt, key=lambda item: item[1].id)
