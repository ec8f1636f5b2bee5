"""python -m bench.report RESULT.json: the benchmark figures as Markdown (for docs/benchmarks.md),
with a capacity table for 500,000 documents computed from the measured throughput."""
from __future__ import annotations

import json
import math
import sys

TARGET_DOCS = 500_000


def capacity_rows(docs_per_second_per_machine: float, cores_per_machine: int) -> list[str]:
    per_core = docs_per_second_per_machine / cores_per_machine
    hours_one_machine = TARGET_DOCS / docs_per_second_per_machine / 3600
    cores_for_24h = TARGET_DOCS / (per_core * 24 * 3600)
    return [
        f"| throughput per core | {per_core:.2f} documents/s |",
        f"| 500K documents on one {cores_per_machine}-core machine | {hours_one_machine:.0f} hours |",
        # Whole cores and machines, rounded up: 2.65 cores is 3 cores, i.e. 2 two-core machines.
        f"| cores needed to finish 500K in 24 hours | {math.ceil(cores_for_24h)} "
        f"({math.ceil(math.ceil(cores_for_24h) / cores_per_machine)} such machines) |",
    ]


def render(r: dict) -> str:
    p, q = r["pipeline"], r["quality"]
    m = r["machine"]
    lines = [
        f"Measured {r['started']} on {m['cpus']} cores, {m['memory_gb']} GB, Python {m['python']}, "
        f"Beam {m['versions']['apache_beam']}, torch {m['versions']['torch']}, docling {m['versions']['docling']}; "
        f"{r['corpus']['documents']} generated documents, {r['workers']} worker processes.",
        "",
        "| figure | value | target |", "|---|---|---|",
        f"| end-to-end throughput | {p['documents_per_second']:.2f} documents/s ({p['wall_seconds']:.0f} s) | >= 6 without AMX |",
    ]
    if "ceiling" in r:
        c = r["ceiling"]
        lines += [f"| plain-loop ceiling (same functions, no Beam) | {c['documents_per_second']:.2f} documents/s | |",
                  f"| efficiency (pipeline / ceiling) | {r['efficiency']:.2f} | >= 0.85 |"]
    if "scaling" in r and "speedup" in r["scaling"]:
        s = r["scaling"]
        all_workers = s["workers_%d" % r["workers"]]
        lines.append(f"| {r['workers']} workers vs 1 ({s['documents']} documents) | {s['speedup']:.2f}x "
                     f"({s['workers_1']['documents_per_second']:.2f} -> {all_workers['documents_per_second']:.2f} "
                     "documents/s) | >= 1.7x |")
    mem = p["memory"]
    lines += [f"| peak memory per worker (worker + its converter process), RSS | {mem['peak_mb_max']:.0f} MB | |"]
    if mem.get("peak_pss_mb_max"):
        lines.append(f"| the same as PSS (library pages shared by the two processes counted once) | "
                     f"{mem['peak_pss_mb_max']:.0f} MB | <= 1200 MB |")
    lines += [f"| largest single process | {mem['largest_process_mb']:.0f} MB | |",
              f"| memory growth, first to last tenth of the run | {mem['growth_pct_max']:.1f} % | <= 10 % |"]
    if "rerun" in r:
        lines.append(f"| rerun of the unchanged corpus | {r['rerun']['wall_seconds']:.1f} s, "
                     f"{r['rerun']['speedup_vs_first']:.0f}x faster | >= 20x |")
    if "sink" in r:
        s = r["sink"]
        lines += [f"| PostgreSQL sink, batched ({s['batched']['batch_size']} documents x 4 chunks per transaction, "
                  f"vector index built after: {s['batched']['index_build_seconds']} s for {s['batched']['documents']} documents) | "
                  f"{s['batched']['documents_per_second']:.0f} documents/s | >= 2000 |",
                  f"| PostgreSQL sink, batched, HNSW index maintained on insert | "
                  f"{s['batched_live_index']['documents_per_second']:.0f} documents/s | |",
                  f"| PostgreSQL sink, one transaction per document | {s['one_per_transaction']['documents_per_second']:.0f} "
                  f"documents/s ({s['speedup']:.1f}x slower) | batched >= 10x |"]
    if "search" in r:
        s = r["search"]
        lines += [f"| search latency, {s['documents']} documents (store) | median {s['store_only']['median_ms']} ms, "
                  f"p95 {s['store_only']['p95_ms']} ms | p95 < 100 ms |",
                  f"| search latency with category+date filters | median {s['filtered_store_only']['median_ms']} ms, "
                  f"p95 {s['filtered_store_only']['p95_ms']} ms | |",
                  f"| search latency including the query embedding | median {s['with_query_embedding']['median_ms']} ms, "
                  f"p95 {s['with_query_embedding']['p95_ms']} ms | |"]
    if "opensearch" in r:
        o = r["opensearch"]
        lines += [f"| OpenSearch sink into {o['target']}, bulks of {run['bulk_actions']} actions / {run['bulk_mb']:g} MB "
                  f"({run['documents']} documents x {o['chunks_per_document']} chunks) | "
                  f"{run['documents_per_second']:.0f} documents/s | |" for run in o["runs"]]
    if "ollama" in r:
        o = r["ollama"]
        per = o["requests_per_document"]
        lines += [f"| Ollama backends: requests per document (chat {per['chat']}, generate {per['generate']}, "
                  f"embed {per['embed']}) | {o['requests_per_document_total']} | |",
                  f"| Ollama backends against the loopback test server (no model time: client and HTTP cost) | "
                  f"{o['documents_per_second']:.2f} documents/s, {o['requests_per_second']} requests/s | |"]
    lines += [f"| classification accuracy | {q['classification_accuracy']:.3f} | >= 0.95 |",
              f"| extraction field accuracy | {q['field_accuracy']:.3f} | >= 0.90 |",
              f"| chunk coverage of the text | {q['chunk_coverage_mean']:.3f} | |"]
    if "ceiling" in r:
        c = r["ceiling"]
        lines += ["", "Where the time goes (plain loop, CPU seconds per document, all workers):", "",
                  "| stage | ms per document | share |", "|---|---|---|"]
        lines += [f"| {stage} | {c['ms_per_document'][stage]} | {100 * c['stage_share'].get(stage, 0):.1f} % |"
                  for stage in c["ms_per_document"]]
    lines += ["", "Classification confusion (rows: truth, columns: predicted):", "",
              "| truth | " + " | ".join(sorted({k for row in q["confusion"].values() for k in row})) + " |"]
    columns = sorted({k for row in q["confusion"].values() for k in row})
    lines.append("|---" * (len(columns) + 1) + "|")
    for truth, row in q["confusion"].items():
        lines.append(f"| {truth} | " + " | ".join(str(row.get(c, 0)) for c in columns) + " |")
    lines += ["", "Extraction accuracy per field:", "", "| field | accuracy | n |", "|---|---|---|"]
    lines += [f"| {name} | {f['accuracy']:.3f} | {f['n']} |" for name, f in q["fields"].items()]
    lines += ["", f"Capacity for {TARGET_DOCS:,} documents from the measured end-to-end throughput:", "",
              "| | |", "|---|---|"] + capacity_rows(p["documents_per_second"], m["cpus"])
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        print(render(json.load(fh)))
