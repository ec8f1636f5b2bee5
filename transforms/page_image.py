"""The first page of a document as a small PNG, for classifiers that look at the page (vision models).

Only PDFs and images have a page to look at without a layout engine; other formats (DOCX, HTML,
text, ...) get no image and are classified from their text alone. Rendering never fails a
document: a page that cannot be rendered just means no image.
"""
from __future__ import annotations

import io
import logging

log = logging.getLogger(__name__)


def first_page_png(data: bytes, fmt: str, max_side: int) -> bytes | None:
    """PNG bytes of the first page with its longest side at most `max_side` pixels, or None."""
    try:
        image = _pdf_first_page(data, max_side) if fmt == "pdf" else _image_first_frame(data) if fmt == "image" else None
        if image is None:
            return None
        image.thumbnail((max_side, max_side))  # no-op when already small enough
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG", optimize=True)
        return out.getvalue()
    except Exception as exc:  # an image is a hint for the classifier, never a reason to fail
        log.info("no page image: %s: %s", type(exc).__name__, exc)
        return None


def _pdf_first_page(data: bytes, max_side: int):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        if len(pdf) == 0:
            return None
        page = pdf[0]
        try:
            # Render straight at the target size: a full-resolution render only to shrink it wastes time.
            scale = max_side / max(page.get_width(), page.get_height(), 1)
            return page.render(scale=min(scale, 4.0)).to_pil()
        finally:
            page.close()
    finally:
        pdf.close()


def _image_first_frame(data: bytes):
    from PIL import ImageOps

    from transforms.convert import open_image

    image = open_image(data)
    image.seek(0)  # the first frame of a multi-page TIFF or an animated GIF
    image.load()
    ImageOps.exif_transpose(image, in_place=True)  # a photo as it is shown, not as it was stored
    return image
