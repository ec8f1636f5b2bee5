"""Search latency on a store of N documents: median and p95 over a fixed set of queries.

The store is filled with N generated documents (real text, rendered as plain text by bench.corpus)
with four chunks each whose vectors are random unit vectors: embedding 40,000 chunks for real would
take half an hour on two cores, and random high-dimensional vectors are the hardest case for an
HNSW index, so the vector half of the measurement is conservative. Queries are embedded with the
real model; both the store's time and the time including the query embedding are reported.
"""
from __future__ import annotations

import random
import statistics
import time

import numpy as np

from bench import corpus
from pipeline import store
from transforms.records import Chunk, Document
from transforms.write_postgres import PostgresWriter

QUERIES = [
    "invoice total due bank transfer", "consulting services agreement termination", "quarterly revenue report",
    "curriculum vitae software engineer", "dear customer thank you for your letter", "deep learning experiments",
    "application form signature", "receipt paid by card", "confidentiality governing law",
    "project status risks next steps", "annual software licence", "employment history education skills",
]


def generated_text(i: int, seed: int) -> tuple[str, str]:
    r = random.Random(f"{seed}:{i}")
    category = corpus.CATEGORIES[i % len(corpus.CATEGORIES)]
    doc = corpus.GENERATORS[category](corpus.Ctx(r, "utf-8", short=False))
    return category, corpus.RENDERERS["txt"](doc, r).decode("utf-8")


def fill(dsn: str, n: int, seed: int = 17, batch: int = 500) -> float:
    """Write n documents; returns seconds taken."""
    rng = np.random.default_rng(seed)
    writer = PostgresWriter(dsn, "search-bench")
    started = time.monotonic()
    for start in range(0, n, batch):
        docs = []
        for i in range(start, min(n, start + batch)):
            category, text = generated_text(i, seed)
            vectors = rng.standard_normal((4, 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            quarter = max(1, len(text) // 4)
            doc = Document(id=f"s{i:07d}", paths=[f"/bench/search/{i}.txt"], filename=f"{i}.txt", text=text,
                           category=category, confidence=0.9, language="en",
                           metadata={"title": text.splitlines()[0][:100], "fields": {"date": f"2024-01-{i % 28 + 1:02d}"}})
            doc.chunks = [Chunk(index=k, text=text[k * quarter:(k + 1) * quarter], start_token=0, vector=vectors[k])
                          for k in range(4)]
            docs.append(doc)
        writer.write_batch(docs)
    writer.close()
    return time.monotonic() - started


def measure(dsn: str, rounds: int = 5) -> dict:
    from transforms.backends.minilm import get_embedder

    embedder = get_embedder()
    vectors = {q: embedder.embed([q])[0] for q in QUERIES}
    store.search(dsn, QUERIES[0], vectors[QUERIES[0]])  # warm the connection path and caches
    db_ms, total_ms, filtered_ms = [], [], []
    for _ in range(rounds):
        for q in QUERIES:
            t0 = time.perf_counter()
            vector = embedder.embed([q])[0]
            t1 = time.perf_counter()
            store.search(dsn, q, vector, limit=10)
            t2 = time.perf_counter()
            store.search(dsn, q, vectors[q], category="invoice", date_from="2024-01-05", limit=10)
            t3 = time.perf_counter()
            db_ms.append((t2 - t1) * 1000)
            total_ms.append((t2 - t0) * 1000)
            filtered_ms.append((t3 - t2) * 1000)

    def summary(values):
        values = sorted(values)
        return {"median_ms": round(statistics.median(values), 1),
                "p95_ms": round(values[int(0.95 * (len(values) - 1))], 1), "n": len(values)}
    return {"store_only": summary(db_ms), "with_query_embedding": summary(total_ms),
            "filtered_store_only": summary(filtered_ms)}


def run(server_dsn: str, n: int) -> dict:
    from pipeline.embedded import fresh_database

    dsn = fresh_database(server_dsn, "bench_search")
    store.migrate(dsn)
    seconds = fill(dsn, n)
    return {"documents": n, "chunks": 4 * n, "fill_seconds": round(seconds, 1), **measure(dsn)}
