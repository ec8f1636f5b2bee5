"""python -m bench.search_quality [--labeled DIR] [--cache FILE] [--recipe NAME:OVERLAP:MARKUP ...] [--json OUT]

Does a way of cutting documents into chunks still let search find them? Chunking decides how many
windows the Embed stage embeds (its cost) and what each vector stands for (search quality), so a
change of chunk size, overlap or of what the model reads is measured here before it becomes a
default.

The documents are the labelled real files (`../shared/corpus/labeled`), converted by the pipeline's
own converter (the conversion cache of `bench.fit_classifier --cache` is shared). Queries are made
from the documents themselves, the same for every recipe, deterministically (no random state):

- `passage`: up to `--passages` (default 8) stretches of 6-12 words from prose lines of each document (lines of at least 8
  words, mostly letters, not table rows), the kind of thing a user remembers and types;
- `heading`: each document's first Markdown heading of 2-12 words.

Each query is embedded once; for each recipe every document is chunked and embedded with the
production code (transforms.embed.Embedder and the default MiniLM backend, one thread), documents
are ranked by their best chunk's cosine, and the report gives recall@1, recall@5 and the mean
reciprocal rank of the query's own document, with the chunks, tokens and embedding CPU seconds
the recipe costs. A query whose words occur in several documents (a template shared by a source)
can rightly rank another document first, so the figures compare recipes; they are not absolute.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time

import numpy as np

from bench.fit_classifier import DEFAULT_LABELED, convert_folder
from transforms.embed import Embedder
from transforms.records import Document

DEFAULT_RECIPES = ("before:32:keep:0", "strip:32:strip:0", "default:0:strip", "overlap0-nosnap:0:strip:0")
_WORD = re.compile(r"\S+")


def _stable_order(items: list[str]) -> list[str]:
    """A fixed pseudo-random order (md5 of each item): the same queries on every machine and run."""
    return sorted(items, key=lambda s: hashlib.md5(s.encode("utf-8")).hexdigest())


def _prose_lines(text: str) -> list[list[str]]:
    lines = []
    for line in text.splitlines():
        if "|" in line or line.lstrip().startswith(("#", "<!--")):
            continue
        words = _WORD.findall(line)
        letters = sum(ch.isalpha() for ch in line)
        if len(words) >= 8 and letters >= 0.6 * len(line.strip()):
            lines.append(words)
    return lines


def make_queries(docs: list[dict], passages: int = 8) -> list[tuple[str, int, str]]:
    """(kind, index of the document, query text) for every usable document."""
    queries = []
    for i, doc in enumerate(docs):
        text = doc.get("text") or ""
        lines = _stable_order([" ".join(words) for words in _prose_lines(text)])
        for words in (line.split() for line in lines[:passages]):
            # a stretch of at most 12 words from the middle of the line: not the line verbatim
            n = min(12, max(6, len(words) - 2))
            start = (len(words) - n) // 2
            queries.append(("passage", i, " ".join(words[start:start + n])))
        for line in text.splitlines():
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
                if 2 <= len(heading.split()) <= 12:
                    queries.append(("heading", i, heading))
                    break
    return queries


def score(doc_of_chunk: np.ndarray, chunk_vectors: np.ndarray, query_vectors: np.ndarray,
          targets: list[int], n_docs: int) -> dict:
    """recall@1, recall@5 and MRR of each query's own document, documents ranked by best chunk."""
    sims = query_vectors @ chunk_vectors.T                          # queries x chunks
    best = np.full((len(targets), n_docs), -2.0, dtype=np.float32)  # queries x documents
    for d in range(n_docs):
        cols = np.flatnonzero(doc_of_chunk == d)
        if len(cols):
            best[:, d] = sims[:, cols].max(axis=1)
    ranks = np.array([1 + int(np.sum(best[q] > best[q, t])) for q, t in enumerate(targets)])
    return {"queries": len(targets), "recall_at_1": round(float(np.mean(ranks == 1)), 3),
            "recall_at_5": round(float(np.mean(ranks <= 5)), 3), "mrr": round(float(np.mean(1.0 / ranks)), 3)}


def run_recipe(backend, docs: list[dict], size: int, overlap: int, strip_markup: bool, snap: int | None):
    embedder = Embedder(backend, size, overlap, max_chunks=512, strip_markup=strip_markup, snap=snap)
    chunked = []
    for i, d in enumerate(docs):
        doc = Document(id=str(i), paths=[d["file"]], text=d.get("text") or "")
        embedder.chunk(doc)
        chunked.append(doc)
    tokens = sum(len(backend.token_offsets(c.embed_text or c.text)) for doc in chunked for c in doc.chunks)
    cpu = time.process_time()
    embedder.embed_batch(chunked)
    cpu = time.process_time() - cpu
    vectors = np.stack([c.vector for doc in chunked for c in doc.chunks])
    owner = np.array([i for i, doc in enumerate(chunked) for _ in doc.chunks])
    return owner, vectors, {"chunks": len(owner), "tokens_embedded": tokens, "embed_cpu_s": round(cpu, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labeled", default=DEFAULT_LABELED)
    parser.add_argument("--cache", help="JSON-lines file of converted texts (shared with bench.fit_classifier)")
    parser.add_argument("--chunk-tokens", type=int, default=200)
    parser.add_argument("--passages", type=int, default=8, help="passage queries per document (at most)")
    parser.add_argument("--recipe", action="append",
                        help=f"NAME:OVERLAP:keep|strip (markup)[:SNAP] (SNAP: tokens to look back for a line or "
                             f"sentence end; default the Embedder's); repeatable; default {' '.join(DEFAULT_RECIPES)}")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transforms.backends import load_embedder
    from transforms.config import StageConfig

    docs = [d for d in convert_folder(args.labeled, args.cache) if d.get("text")]
    queries = make_queries(docs, args.passages)
    backend = load_embedder(StageConfig(model_threads=1))
    query_vectors = backend.embed([q for _, _, q in queries])
    kinds = sorted({k for k, _, _ in queries})
    print(f"{len(docs)} documents, {len(queries)} queries "
          f"({', '.join(f'{sum(1 for q in queries if q[0] == k)} {k}' for k in kinds)}); backend {backend.name}",
          file=sys.stderr)
    results = {}
    for recipe in args.recipe or DEFAULT_RECIPES:
        name, overlap, markup, *snap = recipe.split(":")
        snap = int(snap[0]) if snap else None
        owner, vectors, cost = run_recipe(backend, docs, args.chunk_tokens, int(overlap), markup == "strip", snap)
        row = dict(cost, overlap=int(overlap), markup=markup, snap=snap)
        for kind in kinds + ["all"]:
            sel = [j for j, q in enumerate(queries) if kind in ("all", q[0])]
            row[kind] = score(owner, vectors, query_vectors[sel], [queries[j][1] for j in sel], len(docs))
        results[name] = row
        print(f"  {name:<12} chunks {row['chunks']:>5} tokens {row['tokens_embedded']:>7} embed CPU {row['embed_cpu_s']:>5} s  "
              + "  ".join(f"{k}: r@1 {row[k]['recall_at_1']:.3f} r@5 {row[k]['recall_at_5']:.3f} mrr {row[k]['mrr']:.3f}"
                          for k in kinds + ["all"]), file=sys.stderr)
    report = {"documents": len(docs), "queries": len(queries), "chunk_tokens": args.chunk_tokens, "recipes": results}
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
