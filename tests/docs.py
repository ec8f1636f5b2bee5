"""Small real documents for tests, written with the same libraries users' documents come from.

Only what a test needs and the labelled benchmark corpus (bench.corpus) does not give: exact texts,
and the broken inputs (corrupt, encrypted, empty, renamed) the pipeline must survive.
"""
from __future__ import annotations

import datetime
import io
import os

INVOICE_TEXT = """Northwind Traders GmbH
Invoice No.: INV-2024-0042
Invoice date: 15 March 2024
Due date: 14.04.2024
Bill to: Contoso Ltd, 1 Main Street, Springfield
Description Qty Unit price Amount
Consulting services 10 EUR 120.00 EUR 1,200.00
Subtotal EUR 1,200.00
VAT 19% EUR 228.00
Total due: EUR 1,428.00
Payment terms: net 30 days. Bank: IBAN DE89 3704 0044 0532 0130 00"""

CONTRACT_TEXT = """SERVICE AGREEMENT
This Service Agreement is entered into by and between Acme Corporation ("Client") and Globex Ltd ("Contractor").
Effective Date: January 1, 2024
1. Services. The Contractor shall provide software maintenance services to the Client.
2. Fees. The Client shall pay the fees set out in Schedule A within thirty days.
3. Term and termination. Either party may terminate this agreement with ninety days written notice.
4. Confidentiality. Each party shall keep the other party's confidential information secret.
5. Governing law. This agreement is governed by the laws of the State of New York.
IN WITNESS WHEREOF, the parties have executed this Agreement as of the Effective Date."""

RESUME_TEXT = """Jane Doe
jane.doe@example.com | +44 20 7946 0958
Professional summary: Senior software engineer with ten years of experience building data platforms.
Work experience
2019 - present: Lead Engineer, Initech. Built the company's document search platform.
2014 - 2019: Software Engineer, Hooli. Developed ETL pipelines in Python and SQL.
Education: M.Sc. Computer Science, University of Edinburgh, 2014
Skills: Python, PostgreSQL, Apache Beam, Kubernetes, leadership"""


def pdf_bytes(text: str, pages: int = 1) -> bytes:
    """A born-digital PDF (text layer) with `text` on each page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))  # same bytes every time
    pdf.set_font("helvetica", size=11)
    for _ in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 6, text.encode("latin-1", "replace").decode("latin-1"))
    return bytes(pdf.output())


def raw_pdf(objects: list[bytes], version: bytes = b"1.4") -> bytes:
    """A PDF written object by object (object 1 the catalog), with a correct cross-reference table:
    for structures no PDF library would write (broken fonts, cyclic page trees)."""
    out, offsets = bytearray(b"%PDF-" + version + b"\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def encrypted_pdf_bytes() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="confidential")
    pdf.set_encryption(owner_password="owner", user_password="secret")
    return bytes(pdf.output())


def many_pages_pdf_bytes(pages: int, fanout: int = 100, declared: int | None = None, text: str = "") -> bytes:
    """A PDF of `pages` pages in ~0.2 s, written by hand (fpdf2 needs minutes for 100,000 pages): one
    shared content stream (empty, or `text` in Helvetica), a balanced page tree of `fanout` kids per
    node (0: one flat /Kids array). `declared` puts another /Count in the root node, as a broken or
    hostile file would."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}

    def emit(number: int, body: bytes) -> None:
        offsets[number] = len(out)
        out.extend(b"%d 0 obj\n%b\nendobj\n" % (number, body))

    # Objects: 1 catalog, 2 root of the page tree, 3 the content stream, then pages and inner nodes.
    leaves = list(range(4, 4 + pages))
    parent: dict[int, int] = {}
    inner: list[tuple[int, list[int], int]] = []  # (object, kids, pages below)
    below = dict.fromkeys(leaves, 1)
    level, next_number = leaves, 4 + pages
    while fanout and len(level) > fanout:
        upper = []
        for i in range(0, len(level), fanout):
            kids = level[i:i + fanout]
            parent.update(dict.fromkeys(kids, next_number))
            below[next_number] = sum(below[k] for k in kids)
            inner.append((next_number, kids, below[next_number]))
            upper.append(next_number)
            next_number += 1
        level = upper
    parent.update(dict.fromkeys(level, 2))
    emit(1, b"<</Type/Catalog/Pages 2 0 R>>")
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1", "replace")
    stream = b"BT /F1 12 Tf 72 700 Td (%b) Tj ET" % escaped if text else b""
    emit(3, b"<</Length %d>>stream\n%b\nendstream" % (len(stream), stream))
    resources = b"<</Font<</F1<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>>>>>" if text else b"<<>>"
    for leaf in leaves:
        emit(leaf, b"<</Type/Page/Parent %d 0 R/MediaBox[0 0 612 792]/Contents 3 0 R/Resources%b>>"
             % (parent[leaf], resources))
    refs = lambda kids: b" ".join(b"%d 0 R" % k for k in kids)  # noqa: E731
    for number, kids, count in inner:
        emit(number, b"<</Type/Pages/Parent %d 0 R/Kids[%b]/Count %d>>" % (parent[number], refs(kids), count))
    emit(2, b"<</Type/Pages/Kids[%b]/Count %d>>" % (refs(level), pages if declared is None else declared))
    xref = len(out)
    out.extend(b"xref\n0 %d\n0000000000 65535 f \n" % next_number)
    out.extend(b"".join(b"%010d 00000 n \n" % offsets[n] for n in range(1, next_number)))
    out.extend(b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (next_number, xref))
    return bytes(out)


def text_image(text: str, size=(1240, 700)):
    """A PIL image of `text` in black on white, like a scan."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=34)
    y = 40
    for line in text.splitlines():
        draw.text((50, y), line, fill="black", font=font)
        y += 48
    return image


def png_bytes(text: str) -> bytes:
    buf = io.BytesIO()
    text_image(text).save(buf, format="PNG")
    return buf.getvalue()


def scanned_pdf_bytes(text: str) -> bytes:
    """An image-only PDF: no text layer, so only OCR can read it."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.image(text_image(text, size=(1240, 1754)), x=0, y=0, w=210)
    return bytes(pdf.output())


def bomb_png_bytes() -> bytes:
    """A 30,000 x 30,000 pixel PNG in a few kilobytes: decoding it would take gigabytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (30000, 30000), 1).save(buffer, "PNG")
    return buffer.getvalue()


def docx_bytes(title: str, paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for para in paragraphs:
        document.add_paragraph(para)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def write(folder, name: str, data: bytes | str) -> str:
    path = os.path.join(str(folder), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def write_bad_inputs(folder, too_big: int) -> str:
    """One good letter and twelve bad inputs (empty, garbage, corrupt, truncated, encrypted, renamed,
    too big, too many pages for --max-pages 50, a PNG bomb, deep HTML, a broken link, a non-UTF-8
    name); `too_big` bytes of text for the file meant to pass --max-file-size. Returns the good path.
    Used by tests/test_end_to_end.py and bench/hostile_rerun.py."""
    folder = str(folder)
    good = write(folder, "good.txt", "Dear Ms. Smith, thank you for your letter. Yours sincerely, Bob Jones")
    write(folder, "empty.pdf", b"")
    write(folder, "garbage.pdf", bytes(range(256)) * 40)
    write(folder, "junk.docx", b"PK\x03\x04" + b"\x00not a zip" * 100)
    write(folder, "too-big.txt", "x" * too_big)
    write(folder, "blank.png", png_bytes(""))
    write(folder, "deep.html", "<html><body>" + "<div>" * 5000 + "deep" + "</div>" * 5000 + "</body></html>")
    write(folder, "docx-named.pdf", docx_bytes("Renamed", ["A Word file with a .pdf name."]))
    invoice = pdf_bytes(INVOICE_TEXT)
    write(folder, "truncated.pdf", invoice[: len(invoice) // 2])
    write(folder, "encrypted.pdf", encrypted_pdf_bytes())
    write(folder, "many-pages.pdf", pdf_bytes("Page after page.", pages=60))
    write(folder, "bomb.png", bomb_png_bytes())
    os.symlink(os.path.join(folder, "nowhere.pdf"), os.path.join(folder, "broken-link.pdf"))
    with open(os.fsencode(folder) + b"/caf\xe9-latin1.txt", "wb") as fh:  # not a UTF-8 file name
        fh.write(b"Quarterly report: revenue grew by ten percent.")
    return good


def convert(converter, name: str, data: bytes):
    """A Document converted from `data` by `converter` (transforms.convert.Converter) under `name`."""
    from transforms.records import Document

    doc = Document(id="x", paths=[name], filename=name)
    converter.convert(doc, data)
    return doc


def mixed_folder(folder) -> dict[str, str]:
    """A folder of mixed formats with bad inputs; returns {filename: expected status}."""
    expected = {
        "invoice.pdf": "completed",
        "contract.docx": "completed",
        "resume.html": "completed",
        "notes.md": "completed",
        "table.csv": "completed",
        "letter.txt": "completed",
        "copy-of-invoice.pdf": "completed",   # same bytes as invoice.pdf: one document, two paths
        "scan.png": "completed",
        "corrupt.pdf": "failed",
        "empty.txt": "failed",
        "encrypted.pdf": "failed",
    }
    invoice = pdf_bytes(INVOICE_TEXT)
    write(folder, "invoice.pdf", invoice)
    write(folder, "sub/copy-of-invoice.pdf", invoice)
    write(folder, "contract.docx", docx_bytes("Service Agreement", CONTRACT_TEXT.splitlines()[1:]))
    write(folder, "resume.html", "<html><head><title>Jane Doe</title></head><body>"
          + "".join(f"<p>{line}</p>" for line in RESUME_TEXT.splitlines()) + "</body></html>")
    write(folder, "notes.md", "# Meeting notes\n\n- Budget approved\n- Next review on 2024-05-02\n")
    write(folder, "table.csv", "id,name,amount\n1,alpha,10.5\n2,beta,20\n3,gamma,30\n")
    write(folder, "letter.txt", "Dear Mr. Smith,\n\nThank you for your letter of 3 May 2024. "
          "We are pleased to confirm your appointment.\n\nYours sincerely,\nMary Major\n")
    write(folder, "scan.png", png_bytes("RECEIPT\nCorner Cafe\nTotal paid: 12.50 EUR"))
    write(folder, "corrupt.pdf", invoice[: len(invoice) // 3])
    write(folder, "empty.txt", b"")
    write(folder, "encrypted.pdf", encrypted_pdf_bytes())
    return expected
