"""Embed stage: split a document's text into token windows and embed each window.

Windows are cut on the embedding model's own tokenizer, so every chunk fits the model (no silent
truncation) and chunks overlap by a few tokens so a sentence cut at a boundary is still found.

Windows that are not language (encoded blobs, digit dumps, table filler: transforms.chunk_filter)
are not embedded, and identical chunk texts in one model call are embedded once and share the
vector: embedding is the costliest stage of a CPU run, so what it skips is what a run saves.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

from transforms.chunk_filter import non_text_reason
from transforms.records import Chunk, Document


def chunk_text(text: str, offsets: list[tuple[int, int]], size: int, overlap: int,
               max_chunks: int, reject: Callable[[str], str | None] | None = None,
               skipped: Counter | None = None) -> list[Chunk]:
    """Cut `text` into windows of `size` tokens overlapping by `overlap` tokens.

    `offsets` is the character span of every token. Chunk text is the original text between the
    first and last token of the window, so nothing is lost to detokenisation. A window for which
    `reject` names a reason is left out (counted in `skipped` by reason) and does not count
    towards `max_chunks`: an email's base64 attachment must not use up the cap before its text.
    Kept chunks are numbered without gaps.
    """
    if size <= 0 or overlap < 0 or overlap >= size:
        raise ValueError(f"bad chunk size/overlap: {size}/{overlap}")
    if not offsets:
        offsets = [(0, len(text))] if text.strip() else []
    step = size - overlap
    chunks: list[Chunk] = []
    start = 0
    while start < len(offsets) and len(chunks) < max_chunks:
        window = offsets[start:start + size]
        piece = text[window[0][0]:window[-1][1]].strip()
        reason = reject(piece) if piece and reject else None
        if reason:
            if skipped is not None:
                skipped[reason] += 1
        elif piece:
            chunks.append(Chunk(index=len(chunks), text=piece, start_token=start))
        if start + size >= len(offsets):
            break
        start += step
    return chunks


class Embedder:
    """Chunks and embeds documents with any backend that has `token_offsets` and `embed`."""

    def __init__(self, backend, chunk_tokens: int, chunk_overlap: int, max_chunks: int,
                 skip_non_text: bool = True):
        self.backend = backend
        self.size = min(chunk_tokens, backend.max_tokens)
        self.overlap = chunk_overlap
        self.max_chunks = max_chunks
        self.reject = non_text_reason if skip_non_text else None

    def chunk(self, doc: Document) -> Counter:
        """Cut the document into chunks; returns how many windows were skipped, by reason."""
        text = doc.text or ""
        skipped: Counter = Counter()
        doc.chunks = chunk_text(text, self.backend.token_offsets(text), self.size, self.overlap,
                                self.max_chunks, reject=self.reject, skipped=skipped)
        return skipped

    def embed_batch(self, docs: list[Document]) -> int:
        """Embed the chunks of several documents in one model call (batching is where speed is).

        Identical chunk texts (a footer on every page, a repeated table row) are embedded once and
        share the vector; every chunk is still stored. Returns how many chunks reused a vector."""
        pieces = [c for d in docs for c in d.chunks]
        if not pieces:
            return 0
        unique = list(dict.fromkeys(c.text for c in pieces))
        vectors = dict(zip(unique, self.backend.embed(unique)))
        for chunk in pieces:
            chunk.vector = vectors[chunk.text]
        return len(pieces) - len(unique)

