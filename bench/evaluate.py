"""python -m bench.evaluate --corpus DIR [--pg-dsn DSN | --data-dir DIR]: how right the results are.

Two modes. `--labeled DIR [-- PIPELINE OPTIONS]` is the headline: it runs the pipeline over real,
labelled documents and scores them (bench/evaluate_real.py; `--labeled DIR --help` for its options).
`--corpus DIR`, below, is the regression check on a generated corpus.

Compares what the pipeline stored for each file of a generated corpus with its `truth.jsonl`:
classification accuracy and confusion matrix, extraction accuracy per field (exact match after
normalising dates, amounts and names), and chunk coverage (share of each text's characters that
some chunk holds).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict


from pipeline import store


def load_truth(corpus: str) -> dict[str, dict]:
    truth = {}
    with open(os.path.join(corpus, "truth.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            truth[os.path.abspath(os.path.join(corpus, row["file"]))] = row
    return truth


def normalise(value):
    """Compare like a user would: case, spacing and punctuation at the ends do not matter."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return round(float(value), 2)
    if isinstance(value, list):
        return sorted(normalise(v) for v in value)
    return re.sub(r"\s+", " ", str(value)).strip(" .,;:").casefold()


def fetch_results(dsn: str, paths: list[str]) -> dict[str, dict]:
    with store.session(dsn) as conn:
        rows = conn.execute(
            """
            SELECT i.path, d.status, d.category, d.confidence, d.metadata, d.text, d.error_stage,
                   d.error_message,
                   (SELECT coalesce(array_agg(c.text ORDER BY c.idx), '{}') FROM chunks c
                     WHERE c.document_id = d.id) AS chunks
            FROM inputs i JOIN documents d ON d.id = i.document_id
            WHERE i.path = ANY(%s)
            """, (paths,)).fetchall()
    return {r["path"]: r for r in rows}


def coverage(text: str, chunks: list[str]) -> float:
    """Share of the text's non-space characters found inside some chunk (chunks are text spans)."""
    if not text:
        return 0.0
    covered = [False] * len(text)
    cursor = 0
    for chunk in chunks:
        start = text.find(chunk, max(0, cursor - len(chunk)))
        if start < 0:
            start = text.find(chunk)
        if start < 0:
            continue
        for i in range(start, start + len(chunk)):
            covered[i] = True
        cursor = start + len(chunk)
    total = sum(1 for ch in text if not ch.isspace())
    hit = sum(1 for ch, c in zip(text, covered) if c and not ch.isspace())
    return hit / total if total else 1.0


def evaluate(corpus: str, dsn: str) -> dict:
    truth = load_truth(corpus)
    results = fetch_results(dsn, list(truth))
    confusion: dict[str, Counter] = defaultdict(Counter)
    field_hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: list[dict] = []
    coverages = []
    statuses = Counter()
    for path, expected in truth.items():
        got = results.get(path)
        statuses[got["status"] if got else "missing"] += 1
        predicted = (got or {}).get("category") or ("failed" if got else "missing")
        confusion[expected["category"]][predicted] += 1
        fields = ((got or {}).get("metadata") or {}).get("fields") or {}
        for name, value in expected.get("fields", {}).items():
            if value is None:
                continue
            key = f"{expected['category']}.{name}"
            ok = normalise(fields.get(name)) == normalise(value)
            field_hits[key][0] += ok
            field_hits[key][1] += 1
            if not ok and len(misses) < 200:
                misses.append({"file": expected["file"], "field": key, "expected": value,
                               "got": fields.get(name)})
        if got and got["text"]:
            coverages.append(coverage(got["text"], got["chunks"]))
    total = sum(statuses.values())
    correct = sum(confusion[c][c] for c in confusion)
    field_total = sum(n for _, n in field_hits.values())
    field_correct = sum(h for h, _ in field_hits.values())
    return {
        "documents": total,
        "statuses": dict(statuses),
        "classification_accuracy": round(correct / total, 4) if total else None,
        "confusion": {k: dict(v) for k, v in sorted(confusion.items())},
        "field_accuracy": round(field_correct / field_total, 4) if field_total else None,
        "fields": {k: {"accuracy": round(h / n, 4), "n": n} for k, (h, n) in sorted(field_hits.items())},
        "chunk_coverage_mean": round(sum(coverages) / len(coverages), 4) if coverages else None,
        "chunk_coverage_min": round(min(coverages), 4) if coverages else None,
        "field_misses_sample": misses[:40],
    }


def format_report(report: dict) -> str:
    lines = [f"Documents: {report['documents']}  statuses: {report['statuses']}",
             f"Classification accuracy: {report['classification_accuracy']}", "Confusion (rows = truth):"]
    labels = sorted({p for row in report["confusion"].values() for p in row} | set(report["confusion"]))
    width = max(len(label) for label in labels) + 1
    lines.append(" " * width + " ".join(f"{label[:7]:>7}" for label in labels))
    for truth, row in report["confusion"].items():
        lines.append(f"{truth:<{width}}" + " ".join(f"{row.get(label, 0):>7}" for label in labels))
    lines.append(f"Extraction field accuracy: {report['field_accuracy']}")
    for name, f in report["fields"].items():
        lines.append(f"  {name:<32} {f['accuracy']:.3f}  (n={f['n']})")
    lines.append(f"Chunk coverage: mean {report['chunk_coverage_mean']}, min {report['chunk_coverage_min']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own = argv[:argv.index("--")] if "--" in argv else argv
    if any(a == "--labeled" or a.startswith("--labeled=") for a in own):
        from bench import evaluate_real
        return evaluate_real.main(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Real labelled documents instead: --labeled DIR "
                                            "(--labeled DIR --help lists its options).")
    parser.add_argument("--corpus", required=True, help="folder written by `python -m bench.corpus`")
    parser.add_argument("--pg-dsn", default=os.environ.get("PG_DSN"))
    parser.add_argument("--data-dir", default=".docpipe", help="embedded PostgreSQL folder (no --pg-dsn)")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.pg_dsn:
        dsn = args.pg_dsn
    else:
        from pipeline import embedded
        dsn = embedded.start(args.data_dir)
    report = evaluate(args.corpus, dsn)
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
