"""python -m pipeline.search "QUERY" [--category C] [--from DATE --to DATE] [--field key=value]
[--limit N] [--offset N] [--json]

Hybrid search over the processed documents: full-text ranking and semantic similarity of the
query's embedding to the documents' chunks, fused by reciprocal rank. Filters apply inside both
searches. An empty query ("") with filters lists the matching documents, newest first.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import threading

from pipeline import cli, store

MAX_LIMIT = 100


def iso_date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def key_value(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {value!r}")
    return key.strip(), val.strip()


_query_embedders: dict = {}
_query_embedders_lock = threading.Lock()


def query_embedder(dsn: str):
    """The embedder that made the store's vectors (recorded by each run), loaded once per process."""
    with _query_embedders_lock:
        if dsn not in _query_embedders:
            from transforms.backends import load_query_embedder

            _query_embedders[dsn] = load_query_embedder(store.stored_embedder(dsn))
        return _query_embedders[dsn]


def embed_query(query: str, dsn: str):
    """The query's vector from the same model that embedded the chunks."""
    if not query.strip():
        return None
    return query_embedder(dsn).embed([query])[0]


def run_search(dsn: str, query: str, *, category=None, date_from=None, date_to=None, fields=None,
               limit=10, offset=0, embedder=None, opensearch=None) -> list[dict]:
    """Hybrid search in PostgreSQL, or in OpenSearch when `opensearch` (OpenSearchSettings) is given;
    the same filters, pagination and rows either way."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise ValueError("offset must be >= 0")
    vector = (embedder(query) if embedder else embed_query(query, dsn)) if query.strip() else None
    if opensearch is not None:
        from pipeline.search_opensearch import backend

        return backend(opensearch).search(query, vector, category=category, date_from=date_from,
                                          date_to=date_to, fields=fields, limit=limit, offset=offset)
    return store.search(dsn, query, vector, category=category, date_from=date_from, date_to=date_to,
                        fields=fields, limit=limit, offset=offset)


def format_results(results: list[dict], offset: int) -> str:
    if not results:
        return "No documents found."
    lines = []
    for n, r in enumerate(results, start=offset + 1):
        score = f"score {r['score']:.4f}  " if r["score"] is not None else ""
        lines.append(f"{n:>3}. {r['title'] or r['filename']}")
        lines.append(f"     {score}{r['category'] or 'other'} ({r['confidence'] or 0:.2f})  "
                     f"date {r['doc_date'] or '-'}  id {r['id'][:12]}")
        lines.append(f"     {r['path']}")
        key_fields = {k: v for k, v in (r["fields"] or {}).items() if v not in (None, [], "")}
        if key_fields:
            lines.append("     " + "; ".join(f"{k}: {v}" for k, v in list(key_fields.items())[:4]))
        snippet = " ".join((r["snippet"] or "").split())
        lines.append(f"     \"{snippet[:200]}{'...' if len(snippet) > 200 else ''}\"")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.search", description=__doc__.splitlines()[0])
    parser.add_argument("query", help='search words (websearch syntax: "exact phrase", -exclude, or)')
    parser.add_argument("--category", help="only this category")
    parser.add_argument("--from", dest="date_from", type=iso_date, help="document date on or after (YYYY-MM-DD)")
    parser.add_argument("--to", dest="date_to", type=iso_date, help="document date on or before (YYYY-MM-DD)")
    parser.add_argument("--field", action="append", type=key_value, default=[],
                        help="metadata field equals value, e.g. currency=EUR (repeatable)")
    parser.add_argument("--limit", type=int, default=10, help=f"results per page (1-{MAX_LIMIT}, default %(default)s)")
    parser.add_argument("--offset", type=int, default=0, help="results to skip (pagination)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    cli.add_store_args(parser)
    from pipeline import search_opensearch
    search_opensearch.add_args(parser)
    args = parser.parse_args(argv)
    opensearch = search_opensearch.settings_from_args(args)
    # Needed with OpenSearch too: PostgreSQL records which model embedded the vectors, and the
    # query must be embedded by the same one.
    dsn = cli.dsn_from_args(args)
    results = run_search(dsn, args.query, category=args.category, date_from=args.date_from,
                         date_to=args.date_to, fields=dict(args.field), limit=args.limit, offset=args.offset,
                         opensearch=opensearch)
    print(cli.to_json(results) if args.json else format_results(results, args.offset))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main))
