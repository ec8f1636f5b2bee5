"""The text of Word 97-2003 (.doc) and PowerPoint 97-2003 (.ppt) files without LibreOffice.

Both are OLE compound files (read with olefile, pure Python). What is read, from Microsoft's open
specifications [MS-DOC] and [MS-PPT]:

- .doc: the "WordDocument" stream's File Information Block names the table stream ("0Table" or
  "1Table") and where in it the piece table (Clx) lies; each piece is a run of the document's
  characters stored either as cp1252 bytes ("compressed") or UTF-16. The main text is its first
  `ccpText` characters. Field instructions (between the marks 0x13 and 0x14) are dropped and field
  results kept; paragraph marks become line breaks, a table's cells "a | b" and its rows lines.
- .ppt: the "PowerPoint Document" stream is a tree of records; the text of slides and notes is in
  TextCharsAtom (UTF-16) and TextBytesAtom (cp1252) records, read in stream order; the masters'
  placeholder prompts are skipped and each line is kept once.

Text only: no tables as Markdown tables, no pictures, no formatting. LibreOffice, where installed, still
converts them to DOCX/PPTX for docling (transforms/legacy.py), which keeps tables.
"""
from __future__ import annotations

import re
import struct


class OleTextError(Exception):
    """The message is the recorded reason."""


def _open(data: bytes):
    import olefile

    try:
        return olefile.OleFileIO(data)
    except Exception as exc:
        raise OleTextError(f"unreadable OLE compound file: {type(exc).__name__}: {exc}") from exc


def _stream(ole, name: str) -> bytes:
    if not ole.exists(name):
        raise OleTextError(f"no {name} stream: not a Word or PowerPoint 97-2003 file")
    return ole.openstream(name).read()


# -- Word ---------------------------------------------------------------------------------------

_FIB_FLAGS = 0x000A          # FibBase.flags: fEncrypted 0x0100, fWhichTblStm 0x0200
_FIB_CCP_TEXT = 0x004C       # FibRgLw97.ccpText: characters of the main document
_FIB_FC_CLX = 0x01A2         # FibRgFcLcb97.fcClx / lcbClx: the piece table in the table stream
# A table cell ends with 0x07 and its row with one more: cells become "a | b", rows lines.
_WORD_MARKS = str.maketrans({"\r": "\n", "\x07": " | ", "\x0b": "\n", "\x0c": "\n", "\x0e": "\n",
                             "\x1e": "-", "\x1f": "", "\xa0": " "})
_FIELD = re.compile(r"\x13[^\x13\x14\x15]*(?:\x14([^\x13\x15]*))?\x15")
_CONTROL = re.compile(r"[\x00-\x08\x10-\x1d]")


def doc_text(data: bytes) -> str:
    """The main text of a Word 97-2003 document."""
    with _open(data) as ole:
        word = _stream(ole, "WordDocument")
        if len(word) < _FIB_FC_CLX + 8:
            raise OleTextError("truncated WordDocument stream")
        ident, = struct.unpack_from("<H", word, 0)
        if ident != 0xA5EC:
            raise OleTextError("not a Word 97-2003 document (Word 6/95 and older are not read)")
        flags, = struct.unpack_from("<H", word, _FIB_FLAGS)
        if flags & 0x0100:
            raise OleTextError("encrypted .doc (password-protected): cannot be read")
        table = _stream(ole, "1Table" if flags & 0x0200 else "0Table")
    ccp_text, = struct.unpack_from("<i", word, _FIB_CCP_TEXT)
    fc_clx, lcb_clx = struct.unpack_from("<II", word, _FIB_FC_CLX)
    pieces = _piece_table(table[fc_clx:fc_clx + lcb_clx])
    chars, count = [], 0
    for cp_start, cp_end, fc, compressed in pieces:
        if count >= ccp_text:
            break
        n = min(cp_end - cp_start, ccp_text - count)
        if compressed:
            chars.append(word[fc:fc + n].decode("cp1252", "replace"))
        else:
            chars.append(word[fc:fc + 2 * n].decode("utf-16-le", "replace"))
        count += n
    return _clean_word("".join(chars))


def _piece_table(clx: bytes) -> list[tuple[int, int, int, bool]]:
    """(first cp, end cp, byte offset, compressed) of each piece, from the Clx's PlcPcd."""
    at = 0
    while at < len(clx) and clx[at] == 0x01:      # Prc: property modifiers, skipped
        size, = struct.unpack_from("<h", clx, at + 1)
        at += 3 + size
    if at + 5 > len(clx) or clx[at] != 0x02:
        raise OleTextError("no piece table in the .doc (damaged file)")
    lcb, = struct.unpack_from("<I", clx, at + 1)
    plc = clx[at + 5:at + 5 + lcb]
    n = (len(plc) - 4) // 12
    if n <= 0:
        raise OleTextError("empty piece table in the .doc")
    cps = struct.unpack_from(f"<{n + 1}I", plc, 0)
    pieces = []
    for i in range(n):
        fc_value, = struct.unpack_from("<I", plc, 4 * (n + 1) + 8 * i + 2)
        compressed = bool(fc_value & 0x40000000)
        fc = fc_value & 0x3FFFFFFF
        pieces.append((cps[i], cps[i + 1], fc // 2 if compressed else fc, compressed))
    return pieces


def _clean_word(text: str) -> str:
    previous = None
    while previous != text:          # nested fields: innermost first
        previous = text
        text = _FIELD.sub(lambda m: m.group(1) or "", text)
    text = _CONTROL.sub("", text.replace("\x07\x07", "\n").translate(_WORD_MARKS))
    lines = [" ".join(line.split()).strip(" |") for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# -- PowerPoint ---------------------------------------------------------------------------------

_TEXT_CHARS_ATOM, _TEXT_BYTES_ATOM = 0x0FA0, 0x0FA8
# Masters and handouts hold the placeholder prompts of every deck ("Click to edit Master title
# style", in the language of the program that saved it), not its text; so does the document's list
# of master texts (a SlideListWithText of instance 1).
_MAIN_MASTER, _HANDOUT, _SLIDE_LIST_WITH_TEXT = 0x03F8, 0x0FC9, 0x0FF0
_MAX_DEPTH = 32


def ppt_text(data: bytes) -> str:
    """The text of a PowerPoint 97-2003 deck: every text atom, in the order the file keeps them."""
    with _open(data) as ole:
        stream = _stream(ole, "PowerPoint Document")
        if ole.exists("EncryptedSummary"):
            raise OleTextError("encrypted .ppt (password-protected): cannot be read")
    texts: list[str] = []
    _ppt_records(stream, 0, len(stream), texts, 0)
    # Each line once: a slide's text is kept twice (in the slide list and in the slide's drawing).
    seen, lines = set(), []
    for text in texts:
        for line in text.replace("\r", "\n").replace("\x0b", "\n").split("\n"):
            line = " ".join(line.split())
            if any(ch.isalnum() for ch in line) and line not in seen:
                seen.add(line)
                lines.append(line)
    return "\n".join(lines)


def _ppt_records(stream: bytes, start: int, end: int, texts: list[str], depth: int) -> None:
    at = start
    while at + 8 <= end:
        ver_instance, rec_type, length = struct.unpack_from("<HHI", stream, at)
        body, at = at + 8, at + 8 + length
        if at > end:
            return                   # a damaged record: what was read so far stands
        if ver_instance & 0x000F == 0x000F:         # a container: its records follow
            masters = rec_type in (_MAIN_MASTER, _HANDOUT) or (rec_type == _SLIDE_LIST_WITH_TEXT
                                                                and ver_instance >> 4 == 1)
            if depth < _MAX_DEPTH and not masters:
                _ppt_records(stream, body, at, texts, depth + 1)
        elif rec_type == _TEXT_CHARS_ATOM:
            texts.append(stream[body:at].decode("utf-16-le", "replace"))
        elif rec_type == _TEXT_BYTES_ATOM:
            texts.append(stream[body:at].decode("cp1252", "replace"))
