"""Work shared by the local runner's worker processes as they go, in an order that ends evenly.

Beam's FnApiRunner (the local runner) does not balance work while a stage runs: it cuts a stage's
input into one fixed share per worker process, by count, and a worker that finishes its share early
stays idle. Documents differ in cost by a factor of a thousand (an OCR'd scan or a book against a
short email), so shares of equal count are not shares of equal work: over the 183 real files of
../shared/corpus one worker often ran 10-25 s alone at the end of a 95 s run. Fixed shares of equal
*estimated* work (dealt largest first) halved that, but the estimate's error stayed: one worker
still ran ~7 s alone at the end.

So on the local runner every worker gets the whole list of documents (pipeline.graph, ShareIntoLanes)
and takes the next one that no other worker has taken yet: a claim is a file created in a directory
of the run's (`claim`), which exactly one process can create. A worker that is done early takes what
the other would have done later, as a queue would, and the order of the list (`share_order`) puts the
cheapest documents last, so the workers end within one cheap document of each other. Cluster runners
balance work themselves and keep Beam's Reshuffle.

The estimate is read from the file without converting it: its format, its size and, for a local
PDF, its page count and how much text layer its first pages have (pdfium reads these without
parsing the rest). The constants are seconds of one core (AMD EPYC / Intel Xeon, 2026) for the
stage that dominates each kind: OCR of a page without text, embedding per character of text. Only
the ratios matter: the estimate only decides which documents are cheap enough to go last.
"""
from __future__ import annotations

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


# The documents whose estimates add up to this share of the run's estimated work go last, cheapest
# last of all: a worker that finds the shared list used up then waits for the other only for one of
# these (see share_order).
CHEAP_END_SHARE = 0.02


def share_order(costed: list[tuple[float, Document]]) -> list[Document]:
    """The order in which the local workers take documents from their shared list (pipeline.graph):
    the documents' ids (content hashes, so sizes come mixed from the start and the first progress
    lines' rate and ETA are near the run's), except that the cheapest documents, which together
    hold CHEAP_END_SHARE of the estimated work, come last, the most costly of them first. A worker
    that takes the last documents then finishes at most one cheap document after the other, which
    an error of the estimate cannot change: an image's OCR costs 0.5-3.5 s by how much text it
    holds, and no cheap reading of the file tells which.

    Simulated on the measured costs of the 183 real files (one process): two workers taking from
    this order end 0.2 core-seconds apart on average over random subsets of 120 (p90 0.06), against
    3.8 (p90 8.2) for fixed shares dealt by the same estimates, and 0.9 (p90 2.7) for this list in
    id order."""
    budget = CHEAP_END_SHARE * sum(cost for cost, _ in costed)
    cheap_end, spent = [], 0.0
    for cost, doc in sorted(costed, key=lambda item: (item[0], item[1].id)):
        if spent + cost > budget:
            break
        cheap_end.append(doc)
        spent += cost
    last = {doc.id for doc in cheap_end}
    first = sorted((doc for _, doc in costed if doc.id not in last), key=lambda doc: doc.id)
    return first + cheap_end[::-1]


def claim(claims_dir: str, doc_id: str) -> bool:
    """True for the one caller, of any local process, that claims `doc_id` first in `claims_dir`:
    creating a file that must not exist is atomic on a local filesystem."""
    try:
        os.close(os.open(os.path.join(claims_dir, doc_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True
