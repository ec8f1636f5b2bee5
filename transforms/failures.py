"""Which failures a rerun may trust: deterministic ones are not converted again (issue 19).

Content that failed to convert because of what it *is* (a corrupt or encrypted PDF, one over the
page limit, a format nobody reads) fails again, the same way, every time the same pipeline meets
the same bytes. A plain rerun therefore reports it as "failed before (unchanged)" without paying
for another conversion. Everything else is retried: timeouts, the memory limit, a crashed
converter, read errors (the file may be back), a failure of a later stage, and any failure
recorded by another version of the conversion (`pipeline_version`, stored with each document).
`--retry-failed` and `--reprocess` retry everything.

The classification is by the recorded message, so it applies to stores written before it existed
(their rows have no version, and so are retried once, then recorded with one).
"""
from __future__ import annotations

import functools
from importlib import metadata

from transforms.records import STAGE_CONVERT

# Bump when a change to conversion (transforms/convert.py, isolate.py) may turn a past
# deterministic failure into a success: every such failure is then converted again once.
# 2: the pictures of an office document without text are OCRed; 3: XML by its kind, an office file's
# notes and hidden slides (a deck of hidden slides had failed with "no text found"); 4: every page of
# a multi-page TIFF, photos turned by their EXIF orientation, pages a quarter turned read turned,
# HEIC and AVIF photos read (a fax whose first page is blank had failed with "no text found", an
# iPhone's photo with "unsupported file type image/heic"); 5: a PDF docling cannot convert is read from
# pdfium's text layer or by OCR (a boleto whose font names hold NUL bytes had failed with "docling could
# not convert").
CONVERT_VERSION = 5

# Messages of transforms.convert that depend only on the content (and the pipeline's version).
_DETERMINISTIC = (
    "corrupt",                                      # corrupt or unreadable PDF / image / ZIP container
    "encrypted pdf",
    "more than the limit of",                       # PDF over --max-pages (raise it, then --retry-failed)
    "unsupported",                                  # unsupported file type / OLE compound file
    "not a supported document format",
    "zip archive that is not",
    "no text found",
    "image is too large to decode",
    "unreadable e-invoice",
    "docling could not convert",                    # docling's own verdict, same for the same version
)
# Never deterministic, even if a message above also matches (e.g. "timeout: ... corrupt.pdf").
_TRANSIENT = ("timeout", "memory limit", "converter crashed")


@functools.cache
def pipeline_version() -> str:
    """The version of what decides a conversion's outcome: this project's conversion code and docling."""
    for package in ("docling-slim", "docling"):
        try:
            return f"convert-{CONVERT_VERSION} docling-{metadata.version(package)}"
        except metadata.PackageNotFoundError:
            continue
    return f"convert-{CONVERT_VERSION}"


def is_deterministic(stage: str | None, message: str | None) -> bool:
    """Whether a failure recorded with this stage and message would recur on the same content."""
    if stage != STAGE_CONVERT or not message:
        return False
    text = message.lower()
    if any(word in text for word in _TRANSIENT):
        return False
    return any(word in text for word in _DETERMINISTIC)
