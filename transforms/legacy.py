"""Old Office formats: Excel 97 .xls, Word .doc, PowerPoint .ppt, and .rtf.

- .xls: xlrd (pure Python, reads BIFF workbooks only), each sheet as a Markdown table.
- .doc, .ppt: LibreOffice headless (`soffice --headless --convert-to docx|pptx`), then docling like any
  DOCX/PPTX. Without LibreOffice they fail with a clear "install LibreOffice" reason;
  `pipeline.health` says whether it is there.
- .rtf: LibreOffice when installed (keeps tables), else striprtf (pure Python, text only).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SOFFICE_NAMES = ("soffice", "libreoffice")
SOFFICE_TIMEOUT = 100  # seconds; below the converter's own --convert-timeout default (120)
XLS_MAX_ROWS = 5000    # per sheet: a workbook of millions of cells is not a document to read


class LegacyError(Exception):
    """The message is the recorded reason."""


def soffice_path() -> str | None:
    """LibreOffice's executable, from $SOFFICE or the PATH."""
    if os.environ.get("SOFFICE") and os.path.exists(os.environ["SOFFICE"]):
        return os.environ["SOFFICE"]
    for name in SOFFICE_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def ole_format(data: bytes, filename: str) -> str | None:
    """'xls' | 'doc' | 'ppt' | 'msg' for an OLE compound file, from its streams; None if unknown."""
    import olefile

    try:
        with olefile.OleFileIO(data) as ole:
            streams = {"/".join(entry) for entry in ole.listdir()}
    except Exception:
        return None
    if any(s.startswith("__substg1.0_") for s in streams):
        return "msg"
    if "Workbook" in streams or "Book" in streams:
        return "xls"
    if "WordDocument" in streams:
        return "doc"
    if "PowerPoint Document" in streams:
        return "ppt"
    return None


def xls_to_markdown(data: bytes) -> tuple[str, int]:
    """(Markdown with one table per sheet, number of sheets)."""
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception as exc:
        raise LegacyError(f"unreadable .xls workbook: {type(exc).__name__}: {exc}") from exc
    parts = []
    try:
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            rows = []
            for r in range(min(sheet.nrows, XLS_MAX_ROWS)):
                cells = [_cell_text(book, sheet.cell(r, c)) for c in range(sheet.ncols)]
                if any(cells):
                    rows.append(cells)
            if not rows:
                continue
            width = max(len(r) for r in rows)
            # Trailing columns empty in every row are formatting, not data.
            while width > 1 and not any(len(r) >= width and r[width - 1] for r in rows):
                width -= 1
            rows = [(r + [""] * width)[:width] for r in rows]
            lines = [f"## {sheet.name}", "", "| " + " | ".join(rows[0]) + " |",
                     "|" + "---|" * width]
            lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
            if sheet.nrows > XLS_MAX_ROWS:
                lines.append(f"\n({sheet.nrows - XLS_MAX_ROWS} more rows not read)")
            parts.append("\n".join(lines))
            book.unload_sheet(index)
    finally:
        book.release_resources()
    return "\n\n".join(parts), book.nsheets


def _cell_text(book, cell) -> str:
    import xlrd

    if cell.ctype == xlrd.XL_CELL_EMPTY or cell.ctype == xlrd.XL_CELL_BLANK:
        return ""
    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            value = xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
            return value.date().isoformat() if value.time().isoformat() == "00:00:00" else value.isoformat(" ")
        except Exception:
            return str(cell.value)
    if cell.ctype == xlrd.XL_CELL_NUMBER:
        value = cell.value
        return str(int(value)) if float(value).is_integer() else repr(value)
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if cell.value else "FALSE"
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(cell.value, "#ERR")
    return " ".join(str(cell.value).replace("|", "\\|").split())


# LibreOffice is packaged in parts: each kind of document needs its application's library beside
# soffice (Debian's libreoffice-writer-nogui alone converts a .doc but "could not load" a .pptx).
_WRITER, _IMPRESS = ("Writer", "libswlo.so", "writer"), ("Impress", "libsdlo.so", "impress")
_COMPONENTS = {**dict.fromkeys(("doc", "docx", "rtf", "odt"), _WRITER), **dict.fromkeys(("ppt", "pptx", "odp"), _IMPRESS)}


def missing_component(ext: str) -> str | None:
    """The reason LibreOffice cannot read `.ext` files when its application for them is not installed
    (e.g. Impress for .ppt), None when it is or cannot be told (another layout than Linux's
    program folder: then LibreOffice's own message stands)."""
    soffice = soffice_path()
    if soffice is None or ext not in _COMPONENTS:
        return None
    program = os.path.dirname(os.path.realpath(soffice))
    name, library, package = _COMPONENTS[ext]
    if not os.path.exists(os.path.join(program, "libmergedlo.so")) and not os.path.exists(
            os.path.join(program, "libswlo.so")):
        return None   # not the program folder of a Linux LibreOffice: nothing to tell from
    if os.path.exists(os.path.join(program, library)):
        return None
    return (f"LibreOffice's {name} is not installed, so .{ext} files cannot be read "
            f"(Debian: apt-get install libreoffice-{package}-nogui)")


def soffice_reads(ext: str) -> bool:
    """Whether LibreOffice is installed with the application that reads `.ext` files."""
    return soffice_path() is not None and missing_component(ext) is None


def soffice_convert(data: bytes, source_ext: str, target_ext: str, timeout: float = SOFFICE_TIMEOUT) -> bytes:
    """Convert with LibreOffice headless in a private profile and folder; returns the new file's bytes."""
    soffice = soffice_path()
    if soffice is None:
        raise LegacyError(f"install LibreOffice to read .{source_ext} files (soffice not found; "
                          "Debian: apt-get install libreoffice-core libreoffice-writer libreoffice-impress)")
    missing = missing_component(source_ext)
    if missing:
        raise LegacyError(missing)
    with tempfile.TemporaryDirectory(prefix="docpipe-soffice-") as work:
        source = os.path.join(work, f"document.{source_ext}")
        with open(source, "wb") as fh:
            fh.write(data)
        # Own user profile per call: LibreOffice refuses to run twice on one profile (parallel workers).
        profile = "file://" + os.path.join(work, "profile")
        cmd = [soffice, f"-env:UserInstallation={profile}", "--headless", "--norestore",
               "--convert-to", target_ext, "--outdir", work, source]
        try:
            result = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise LegacyError(f"LibreOffice took longer than {timeout:g} s to convert the .{source_ext}") from None
        target = os.path.join(work, f"document.{target_ext}")
        if not os.path.exists(target):
            detail = " ".join((result.stderr or result.stdout or b"").decode("utf-8", "replace").split())[:300]
            raise LegacyError(f"LibreOffice could not convert the .{source_ext}: {detail or 'no output'}")
        with open(target, "rb") as fh:
            return fh.read()


def rtf_to_text(data: bytes) -> str:
    """RTF as plain text with striprtf (no LibreOffice needed)."""
    from striprtf.striprtf import rtf_to_text as strip

    try:
        return strip(data.decode("latin-1"), errors="ignore")
    except Exception as exc:
        raise LegacyError(f"unreadable RTF: {type(exc).__name__}: {exc}") from exc
