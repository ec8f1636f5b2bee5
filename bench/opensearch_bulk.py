"""Bulk indexing throughput into OpenSearch: documents/s for several bulk sizes.

    python -m bench.opensearch_bulk [--docs N] [--url URL]

Without --url the target is osmem-server (an in-memory IMITATION of OpenSearch, started here on a
free loopback port): its figures measure this sink's own cost (serializing, batching, per-item
bookkeeping) plus an HTTP round trip, not a real cluster's indexing (no Lucene segments, no HNSW
graph). Run it with --url against a real cluster for real figures.

Documents are generated text (bench.corpus) with 4 chunks each whose vectors are random unit vectors
of the embedder's dimension (embedding them for real would only measure the model). Each bulk size
is measured on fresh indices; the figures are returned as a dict and printed as JSON.
"""
from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np

from bench import corpus
from transforms import write_opensearch as wos
from transforms.records import INDEX_PENDING, Chunk, Document, content_id

CHUNKS_PER_DOC = 4
# (actions per bulk, MB per bulk): the sink's default (500, 5) and smaller/larger ones around it.
BULK_SIZES = [(100, 5.0), (500, 5.0), (2000, 10.0)]


def documents(n: int, dimension: int, seed: int = 7) -> list[Document]:
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        r = random.Random(f"{seed}:{i}")
        category = corpus.CATEGORIES[i % len(corpus.CATEGORIES)]
        text = corpus.RENDERERS["txt"](corpus.GENERATORS[category](corpus.Ctx(r, "utf-8", short=False)), r).decode()
        vectors = rng.standard_normal((CHUNKS_PER_DOC, dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        step = max(1, len(text) // CHUNKS_PER_DOC)
        doc = Document(id=content_id(f"{i}:{text}".encode()), paths=[f"/bench/{i}.txt"], size=len(text),
                       status=INDEX_PENDING, filename=f"{i}.txt", mime="text/plain", text=text,
                       category=category, confidence=0.9,
                       metadata={"title": text.split("\n")[0][:80], "dates": [], "fields": {}})
        doc.chunks = [Chunk(j, text[j * step:(j + 1) * step], 0, vectors[j]) for j in range(CHUNKS_PER_DOC)]
        docs.append(doc)
    return docs


def measure(url: str, n_docs: int, dimension: int, batch_docs: int = 200, target: str | None = None) -> dict:
    docs = documents(n_docs, dimension)
    results = []
    for actions, mb in BULK_SIZES:
        settings = wos.OpenSearchSettings.from_env(url, index=f"bench-{actions}-{int(time.time() * 1000)}",
                                                   bulk_actions=actions, bulk_bytes=int(mb * 1024 * 1024))
        client = settings.client()
        previous = wos.start_run(settings, dimension)
        indexer = wos.OpenSearchIndexer(settings, client=client)
        for d in docs:
            d.status = INDEX_PENDING
        started = time.perf_counter()
        indexed = 0
        for start in range(0, len(docs), batch_docs):  # the pipeline hands the sink batches like this
            indexed += len(indexer.write(docs[start:start + batch_docs]).indexed)
        seconds = time.perf_counter() - started
        wos.finish_run(settings, previous)
        count = client.count(index=settings.layout.documents)["count"]
        client.indices.delete(index=f"{settings.index}-*")
        results.append({"bulk_actions": actions, "bulk_mb": mb, "documents": indexed, "in_index": count,
                        "chunks": indexed * CHUNKS_PER_DOC, "bulk_requests": indexer.sender.requests,
                        "seconds": round(seconds, 2), "documents_per_second": round(indexed / seconds, 1)})
        client.close()
    return {"target": target or wos.mask_url(url),
            "dimension": dimension, "chunks_per_document": CHUNKS_PER_DOC, "sink_batch_documents": batch_docs,
            "runs": results}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.opensearch_bulk", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="documents per measurement (default %(default)s)")
    parser.add_argument("--url", default=None, help="a real OpenSearch (default: start osmem-server here)")
    parser.add_argument("--dimension", type=int, default=384, help="vector dimension (default: MiniLM's 384)")
    args = parser.parse_args(argv)
    if args.url:
        figures = measure(args.url, args.docs, args.dimension)
    else:
        from osmem_server import OsmemServer

        with OsmemServer.start(japanese=False, addr="127.0.0.1:0") as server:
            figures = measure(server.url, args.docs, args.dimension, target="osmem-server (imitation)")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
