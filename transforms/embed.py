"""Embed stage: split a document's text into token windows and embed each window.

Windows are cut on the embedding model's own tokenizer, so every chunk fits the model (no silent
truncation), and a window ends at a line or sentence end among its last tokens when there is one,
so a sentence is rarely cut and consecutive windows need not overlap (`--chunk-overlap` still adds
an overlap; measured by bench.search_quality, see docs/benchmarks.md "Chunking").

docling's Markdown carries markup that holds no words: `<!-- image -->` for every picture (a slide
deck has thousands), table borders and separator rows (`| --- |`), rules and dot leaders. The model
would read each `|`, `-` and `.` of it as a token, so a window of 200 tokens held fewer words and a
document needed more windows: windows count words only, and the model reads the window without
that markup (`Chunk.embed_text`); the stored chunk text is the original span, markup included. A
table cell repeating the cell before it in its row (docling writes a cell merged across columns
once per column) is treated the same way.

Windows that are not language (encoded blobs, digit dumps, table filler: transforms.chunk_filter)
are not embedded, and identical chunk texts in one model call are embedded once and share the
vector: embedding is the costliest stage of a CPU run, so what it skips is what a run saves.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Callable

from transforms.chunk_filter import non_text_reason
from transforms.records import Chunk, Document


# Markup of docling's Markdown that holds no words: its comments (`<!-- image -->`, one per
# picture), table borders with their separator cells (`|`, `| --- |`, `|:---:|`), and runs of three
# or more of one punctuation mark (rules `-----`, `=====`, dot leaders `.......` of a table of
# contents). One dash, one dot or one colon of a sentence stays text.
MARKUP = re.compile(r"<!--.{0,80}?-->|\|(?:[ \t]*:?-{3,}:?[ \t]*\|)*|([-=_.~*#·…])\1{2,}")
_SPACES = re.compile(r"\s+")


# A Markdown table row: docling writes a cell merged across columns once per column it spans (a
# spreadsheet's heading over five columns is five copies in the row). Repeats add no words to
# search by, and they made a real spreadsheet's text twice as long: a cell equal to the cell before
# it in the same row is masked like markup (stored, not counted, not embedded).
_TABLE_ROW = re.compile(r"^\|.*\|[ \t]*$", re.MULTILINE)
_CELL_BORDER = re.compile(r"(?<!\\)\|")  # a pipe not escaped as \| inside a cell


def markup_mask(text: str) -> bytearray | None:
    """One byte per character of `text`, 1 where it is markup (MARKUP) or a table cell repeating
    the one before it in its row; None when there is none."""
    mask = None
    for match in MARKUP.finditer(text):
        if mask is None:
            mask = bytearray(len(text))
        mask[match.start():match.end()] = b"\x01" * (match.end() - match.start())
    for row in _TABLE_ROW.finditer(text):
        for start, end in _repeated_cells(row.group(), row.start()):
            if mask is None:
                mask = bytearray(len(text))
            mask[start:end] = b"\x01" * (end - start)
    return mask


def _repeated_cells(row: str, at: int) -> list[tuple[int, int]]:
    """Spans (in the text, `at` being the row's start) of the row's cells equal to the cell before."""
    borders = [m.start() for m in _CELL_BORDER.finditer(row)]
    spans = []
    previous = None
    for left, right in zip(borders, borders[1:]):
        cell = row[left + 1:right].strip()
        if cell and cell == previous:
            spans.append((at + left + 1, at + right))
        previous = cell
    return spans


def _without_markup(text: str, start: int, end: int, mask: bytearray) -> str:
    """text[start:end] as the model should read it: markup replaced by spaces, spaces collapsed."""
    piece = "".join(" " if mask[i] else text[i] for i in range(start, end))
    return _SPACES.sub(" ", piece).strip()


def _ends_unit(text: str, offsets: list[tuple[int, int]], i: int) -> bool:
    """Whether token i ends a line or a sentence (., !, ? or ; before a space)."""
    end = offsets[i][1]
    following = offsets[i + 1][0] if i + 1 < len(offsets) else len(text)
    if "\n" in text[end:following]:
        return True
    return text[end - 1] in ".!?;" and (end == len(text) or text[end].isspace())


def chunk_text(text: str, offsets: list[tuple[int, int]], size: int, overlap: int,
               max_chunks: int, reject: Callable[[str], str | None] | None = None,
               skipped: Counter | None = None, strip_markup: bool = True, snap: int = 0) -> list[Chunk]:
    """Cut `text` into windows of `size` tokens overlapping by `overlap` tokens.

    With `snap` > 0 a window that would end inside a line or sentence ends instead after the last
    line or sentence end among its last `snap` tokens (when there is one), and the next window
    starts there: a sentence is then cut only when it is longer than that, so no overlap is
    needed to find it whole.

    `offsets` is the character span of every token. With `strip_markup`, tokens made only of
    markup (MARKUP) are not counted: a window holds `size` tokens of words, and its `embed_text`
    is the window without the markup (None when it had none). Chunk text is the original text
    between the first and last counted token of the window, so nothing is lost to detokenisation.
    A window for which `reject` names a reason (judged on what the model would read) is left out
    (counted in `skipped` by reason) and does not count towards `max_chunks`: an email's base64
    attachment must not use up the cap before its text. Kept chunks are numbered without gaps;
    `start_token` is the index in `offsets` of the window's first token.
    """
    if size <= 0 or overlap < 0 or overlap >= size:
        raise ValueError(f"bad chunk size/overlap: {size}/{overlap}")
    if not offsets:
        offsets = [(0, len(text))] if text.strip() else []
    mask = markup_mask(text) if strip_markup else None
    if mask is None:
        counted = range(len(offsets))
    else:
        counted = [i for i, (a, b) in enumerate(offsets) if b > a and 0 in mask[a:b]]
    chunks: list[Chunk] = []
    start = 0
    while start < len(counted) and len(chunks) < max_chunks:
        stop = min(start + size, len(counted))  # the window is counted[start:stop]
        if snap > 0 and stop < len(counted) and not _ends_unit(text, offsets, counted[stop - 1]):
            for k in range(stop - 2, max(start, stop - 1 - snap), -1):
                if _ends_unit(text, offsets, counted[k]):
                    stop = k + 1
                    break
        first, last = counted[start], counted[stop - 1]
        a, b = offsets[first][0], offsets[last][1]
        piece = text[a:b].strip()
        embed_text = None
        if mask is not None and 1 in mask[a:b]:
            embed_text = _without_markup(text, a, b, mask)
        reason = reject(embed_text or piece) if piece and reject else None
        if reason:
            if skipped is not None:
                skipped[reason] += 1
        elif piece:
            chunks.append(Chunk(index=len(chunks), text=piece, start_token=first, embed_text=embed_text))
        if stop >= len(counted):
            break
        start = max(start + 1, stop - overlap)
    return chunks


class Embedder:
    """Chunks and embeds documents with any backend that has `token_offsets` and `embed`."""

    def __init__(self, backend, chunk_tokens: int, chunk_overlap: int, max_chunks: int,
                 skip_non_text: bool = True, strip_markup: bool = True, snap: int | None = None):
        self.backend = backend
        self.size = min(chunk_tokens, backend.max_tokens)
        self.overlap = chunk_overlap
        self.max_chunks = max_chunks
        self.reject = non_text_reason if skip_non_text else None
        self.strip_markup = strip_markup
        # Windows end at a line or sentence end among their last tokens: an eighth of the window
        # (25 of 200), so a window keeps at least 7/8 of its size.
        self.snap = self.size // 8 if snap is None else snap

    def chunk(self, doc: Document) -> Counter:
        """Cut the document into chunks; returns how many windows were skipped, by reason."""
        text = doc.text or ""
        skipped: Counter = Counter()
        doc.chunks = chunk_text(text, self.backend.token_offsets(text), self.size, self.overlap,
                                self.max_chunks, reject=self.reject, skipped=skipped,
                                strip_markup=self.strip_markup, snap=self.snap)
        return skipped

    def embed_batch(self, docs: list[Document]) -> int:
        """Embed the chunks of several documents in one model call (batching is where speed is).

        Identical chunk texts (a footer on every page, a repeated table row) are embedded once and
        share the vector; every chunk is still stored. Returns how many chunks reused a vector."""
        pieces = [c for d in docs for c in d.chunks]
        if not pieces:
            return 0
        unique = list(dict.fromkeys(c.embed_text or c.text for c in pieces))
        vectors = dict(zip(unique, self.backend.embed(unique)))
        for chunk in pieces:
            chunk.vector = vectors[chunk.embed_text or chunk.text]
            chunk.embed_text = None  # read by the model; not stored, so not carried further
        return len(pieces) - len(unique)

