"""Requests per document and measured throughput of the Ollama backends, against the test server.

    python -m bench.ollama_throughput [--docs 40] [--max-inflight 4] [--embed-batch-size 32]
                                      [--chat-s 2.0 --generate-s 3.0 --embed-s 0.05 --parallel 4]

Generated documents (bench.corpus, plain text, all categories) go through what one worker does with
`--classifier ollama --extractor ollama --embedder ollama`: chunk and embed (16 documents per Embed
call, as the graph batches them), classify, extract.
The server is bench.ollama_server on loopback (MiniLM embeddings, rule-based answers, no model
time), so the measured throughput is the ceiling of the client and this machine, not of a model.

What carries over to a real deployment is the number of requests per document (by endpoint) and
the tokens they carry. With those, the number of Ollama servers a job needs is

    servers = documents x sum(requests per document x model seconds per request) / (parallel x seconds available)

where model seconds per request and parallel slots (OLLAMA_NUM_PARALLEL) come from the real server
and model. `capacity_500k` applies that formula with the --chat-s/--generate-s/--embed-s/--parallel
given (defaults are placeholders to replace with a measurement on the target hardware, e.g. from
`ollama run MODEL --verbose` or this pipeline's `ollama_request_ms` metric): they are inputs, not
measurements.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time

from bench import corpus
from bench.ollama_server import EMBED_MODEL, TEXT_MODEL, VISION_MODEL, OllamaTestServer


EMBED_GROUP = 16  # documents per Embed call: the graph's BatchForEmbedding max_batch_size


def documents(n: int, seed: int):
    from transforms.records import Document

    out = []
    for i in range(n):
        r = random.Random(f"{seed}:{i}")
        category = corpus.CATEGORIES[i % len(corpus.CATEGORIES)]
        text = corpus.RENDERERS["txt"](corpus.GENERATORS[category](corpus.Ctx(r, "utf-8", short=False)), r)
        out.append((category, Document(id=str(i), paths=[f"doc{i}.txt"], text=text.decode("utf-8"))))
    return out


def servers_needed(requests_per_doc: dict, seconds_per_request: dict, parallel: int, docs: int,
                   hours: float) -> dict:
    seconds_per_doc = sum(requests_per_doc[e] * seconds_per_request[e] for e in requests_per_doc)
    total = docs * seconds_per_doc / parallel
    return {"model_seconds_per_document": round(seconds_per_doc, 3), "documents": docs, "hours": hours,
            "servers": math.ceil(total / (hours * 3600)), "assumed_seconds_per_request": seconds_per_request,
            "assumed_parallel_per_server": parallel}


def run(n_docs: int = 40, max_inflight: int = 4, embed_batch_size: int = 32, seed: int = 11,
        chat_s: float = 2.0, generate_s: float = 3.0, embed_s: float = 0.05, parallel: int = 4) -> dict:
    from transforms.backends import ollama
    from transforms.classify import load_categories
    from transforms.embed import Embedder

    docs = documents(n_docs, seed)
    with OllamaTestServer(parallel=8) as server:
        server.embed(["warm up"])  # the server's model load is not the client's time
        client = ollama.OllamaClient(server.url, timeout=120, retries=3, max_inflight=max_inflight)
        embedder = ollama.OllamaEmbedder(client, EMBED_MODEL, embed_batch_size)
        chunker = Embedder(embedder, 200, 32, 512)
        classifier = ollama.OllamaClassifier(client, VISION_MODEL, load_categories(), 0.3)
        extractor = ollama.OllamaExtractor(client, TEXT_MODEL)
        client.stats.clear()
        client.latencies_ms.clear()
        chunks = correct = 0
        started = time.perf_counter()
        for start in range(0, n_docs, EMBED_GROUP):
            group = docs[start:start + EMBED_GROUP]
            for _, doc in group:
                chunker.chunk(doc)
                chunks += len(doc.chunks)
            chunker.embed_batch([doc for _, doc in group])  # as the Embed step: one call per batch of documents
            for truth, doc in group:
                doc.category, doc.confidence = classifier.classify(doc)
                correct += doc.category == truth
                doc.metadata = extractor.extract(doc)
        seconds = time.perf_counter() - started
        stats = dict(client.stats)
        latencies = sorted(client.latencies_ms)
        client.close()
    per_doc = {e: round(stats.get(f"{e}_requests", 0) / n_docs, 3) for e in ("chat", "generate", "embed")}
    result = {
        "server": "bench.ollama_server (loopback, MiniLM embeddings, rule-based answers, no model time)",
        "documents": n_docs, "chunks_per_document": round(chunks / n_docs, 2),
        "max_inflight": max_inflight, "embed_batch_size": embed_batch_size,
        "requests_per_document": per_doc, "requests_per_document_total": round(sum(per_doc.values()), 3),
        "seconds": round(seconds, 2), "documents_per_second": round(n_docs / seconds, 2),
        "requests_per_second": round(stats.get("requests", 0) / seconds, 1),
        "latency_ms_p50": latencies[len(latencies) // 2] if latencies else None,
        "latency_ms_p95": latencies[int(len(latencies) * 0.95)] if latencies else None,
        "latency_ms_mean": round(statistics.mean(latencies), 1) if latencies else None,
        "retries": stats.get("retries", 0), "failed_requests": stats.get("failed_requests", 0),
        "invalid_answers": stats.get("invalid_answers", 0),
        "test_server_category_agreement": round(correct / n_docs, 3),
    }
    result["capacity_500k"] = servers_needed(per_doc, {"chat": chat_s, "generate": generate_s, "embed": embed_s},
                                             parallel, 500_000, 24.0)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--max-inflight", type=int, default=4)
    parser.add_argument("--embed-batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--chat-s", type=float, default=2.0, help="assumed model seconds per classification")
    parser.add_argument("--generate-s", type=float, default=3.0, help="assumed model seconds per extraction")
    parser.add_argument("--embed-s", type=float, default=0.05, help="assumed model seconds per embed request")
    parser.add_argument("--parallel", type=int, default=4, help="assumed parallel requests per server")
    args = parser.parse_args(argv)
    result = run(args.docs, args.max_inflight, args.embed_batch_size, args.seed, args.chat_s, args.generate_s,
                 args.embed_s, args.parallel)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
