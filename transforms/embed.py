"""Embed stage: split a document's text into token windows and embed each window.

Windows are cut on the embedding model's own tokenizer, so every chunk fits the model (no silent
truncation) and chunks overlap by a few tokens so a sentence cut at a boundary is still found.
"""
from __future__ import annotations

from transforms.records import Chunk, Document


def chunk_text(text: str, offsets: list[tuple[int, int]], size: int, overlap: int,
               max_chunks: int) -> list[Chunk]:
    """Cut `text` into windows of `size` tokens overlapping by `overlap` tokens.

    `offsets` is the character span of every token. Chunk text is the original text between the
    first and last token of the window, so nothing is lost to detokenisation.
    """
    if size <= 0 or overlap < 0 or overlap >= size:
        raise ValueError(f"bad chunk size/overlap: {size}/{overlap}")
    if not offsets:
        return [Chunk(index=0, text=text.strip(), start_token=0)] if text.strip() else []
    step = size - overlap
    chunks: list[Chunk] = []
    start = 0
    while start < len(offsets) and len(chunks) < max_chunks:
        window = offsets[start:start + size]
        piece = text[window[0][0]:window[-1][1]].strip()
        if piece:
            chunks.append(Chunk(index=len(chunks), text=piece, start_token=start))
        if start + size >= len(offsets):
            break
        start += step
    return chunks


class Embedder:
    """Chunks and embeds documents with any backend that has `token_offsets` and `embed`."""

    def __init__(self, backend, chunk_tokens: int, chunk_overlap: int, max_chunks: int):
        self.backend = backend
        self.size = min(chunk_tokens, backend.max_tokens)
        self.overlap = chunk_overlap
        self.max_chunks = max_chunks

    def chunk(self, doc: Document) -> None:
        text = doc.text or ""
        doc.chunks = chunk_text(text, self.backend.token_offsets(text), self.size, self.overlap,
                                self.max_chunks)

    def embed_batch(self, docs: list[Document]) -> None:
        """Embed the chunks of several documents in one model call (batching is where speed is)."""
        pieces = [c for d in docs for c in d.chunks]
        if not pieces:
            return
        vectors = self.backend.embed([c.text for c in pieces])
        for chunk, vector in zip(pieces, vectors):
            chunk.vector = vector

