"""python -m bench.embed_speed [--input DIR] [--chunks N]: MiniLM chunks/s per precision on this CPU.

Prints the CPU model and the flags that decide `--embed-precision auto` (AMX, VNNI, AVX-512), then
embeds the same chunks (200-token windows of the text files under --input, by default the shared
corpus; else generated sentences) with each precision this CPU can run well, and reports chunks/s
and the cosine of each precision's vectors to float32. Short by design (the machines are shared):
about 100 chunks per precision, after a warm-up batch.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import time

import numpy as np

from transforms.backends.minilm import cpu_info, get_embedder, resolve_precision
from transforms.embed import chunk_text

DEFAULT_INPUT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus")
FLAGS = ("amx_bf16", "amx_int8", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512f", "avx2")


def sample_chunks(folder: str, n: int, tokenizer) -> list[str]:
    paths = sorted(p for ext in ("md", "txt", "tex", "html")
                   for p in glob.glob(os.path.join(folder, "**", f"*.{ext}"), recursive=True))
    chunks: list[str] = []
    for path in paths:
        text = open(path, encoding="utf-8", errors="replace").read()[:100000]
        chunks += [c.text for c in chunk_text(text, tokenizer.token_offsets(text), 200, 32, 6)]
        if len(chunks) >= n:
            break
    if not chunks:  # no corpus here: generated sentences of about 200 tokens
        rng = np.random.default_rng(7)
        words = "invoice payment contract party term delivery report result data model table value".split()
        chunks = [" ".join(rng.choice(words, 180)) for _ in range(n)]
    return chunks[:n]


def measure(precisions: list[str], chunks: list[str], threads: int, batch: int) -> dict:
    results, reference = {}, None
    for precision in precisions:
        model = get_embedder(threads=threads, batch_size=batch, precision=precision)
        model.embed(chunks[:batch])  # warm-up: first-call allocations and kernel selection
        start, cpu_start = time.perf_counter(), time.process_time()
        vectors = model.embed(chunks)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if reference is None:
            reference = vectors
        cosine = (reference * vectors).sum(axis=1)
        # chunks per CPU-second (all threads) as well: on a shared, busy machine wall time measures
        # the neighbours, CPU time still measures the arithmetic.
        results[precision] = {"chunks_per_s": round(len(chunks) / seconds, 1),
                              "chunks_per_cpu_s": round(len(chunks) / cpu, 1),
                              "cosine_to_fp32_mean": round(float(cosine.mean()), 4),
                              "cosine_to_fp32_min": round(float(cosine.min()), 4)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default=DEFAULT_INPUT, help="folder of text files to cut into chunks")
    parser.add_argument("--chunks", type=int, default=96)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args(argv)
    model, flags = cpu_info()
    print(f"CPU      {model or 'unknown'} ({os.cpu_count()} cores)")
    print(f"flags    {' '.join(f for f in FLAGS if f in flags) or '-'}")
    print(f"auto ->  {resolve_precision('auto')}")
    precisions = ["fp32", "int8"] + (["bf16"] if "amx_bf16" in flags else [])
    chunks = sample_chunks(args.input, args.chunks, get_embedder(threads=args.threads, precision="fp32"))
    results = measure(precisions, chunks, args.threads, args.batch)
    for precision, r in results.items():
        print(f"{precision:5}    {r['chunks_per_s']:6.1f} chunks/s  {r['chunks_per_cpu_s']:6.1f} per CPU-s   cosine to fp32 mean {r['cosine_to_fp32_mean']:.4f}"
              f" min {r['cosine_to_fp32_min']:.4f}")
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump({"cpu": model, "flags": sorted(f for f in FLAGS if f in flags), "threads": args.threads,
                       "chunks": len(chunks), "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
