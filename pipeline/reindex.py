"""python -m pipeline.reindex --opensearch-url URL [--all | --new-index [--delete-old]]: fill
OpenSearch from PostgreSQL, the record of truth.

Default: the documents waiting for indexing (status index_pending: OpenSearch was down or refused
them) are indexed and become completed. --all: every completed document too (e.g. after enabling
OpenSearch on an existing store). --new-index: build new indices with the current mapping (index
templates), load every document into them, then move both aliases in one atomic request, so
searches never see a half-built index; the old indices are kept unless --delete-old.

Chunks and their vectors are read from PostgreSQL: nothing is converted or embedded again.
"""
from __future__ import annotations

import argparse
import sys
import time

from pgvector.psycopg import register_vector

from pipeline import cli, search_opensearch, store
from transforms import write_opensearch as wos
from transforms.records import COMPLETED, INDEX_PENDING, Chunk, Document
from transforms.write_postgres import PostgresWriter

DOCUMENT_COLUMNS = """id, paths, filename, size, mime, pages, category, confidence, metadata, text,
                      language, converter, run_id, processed_at"""


def read_batches(dsn: str, statuses: list[str], batch_size: int):
    """Documents (with chunks and vectors) of the given statuses, in id order, batch by batch."""
    last = ""
    with store.connect(dsn) as conn:
        register_vector(conn)
        while True:
            rows = conn.execute(
                f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE status = ANY(%s) AND id > %s "
                "ORDER BY id LIMIT %s", (statuses, last, batch_size)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            chunks: dict[str, list[Chunk]] = {}
            for doc_id, idx, text, vector in conn.execute(
                    "SELECT document_id, idx, text, embedding FROM chunks WHERE document_id = ANY(%s) "
                    "ORDER BY document_id, idx", ([r[0] for r in rows],)):
                chunks.setdefault(doc_id, []).append(Chunk(idx, text, 0, vector))
            docs, stamps = [], {}
            for (doc_id, paths, filename, size, mime, pages, category, confidence, metadata, text,
                 language, converter, run_id, processed_at) in rows:
                docs.append(Document(id=doc_id, paths=list(paths), size=size, status=INDEX_PENDING,
                                     filename=filename or "", mime=mime, pages=pages, text=text,
                                     language=language, converter=converter, category=category,
                                     confidence=confidence, metadata=metadata, chunks=chunks.get(doc_id, [])))
                stamps[doc_id] = ((processed_at.isoformat() if processed_at else None), run_id)
            yield docs, stamps
            conn.commit()


def stored_dimension(dsn: str) -> int:
    """The vectors' dimension as stored (the chunks column's type), which the knn_vector must match."""
    with store.connect(dsn) as conn:
        row = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass "
                           "AND attname = 'embedding'").fetchone()
        if row and row[0] > 0:
            return int(row[0])
        row = conn.execute("SELECT vector_dims(embedding) FROM chunks LIMIT 1").fetchone()
    if not row:
        raise ValueError("no vectors in the store and no dimension on chunks.embedding")
    return int(row[0])


def reindex(dsn: str, settings: wos.OpenSearchSettings, *, everything: bool = False, new_index: bool = False,
            delete_old: bool = False, batch_size: int = 200) -> dict:
    """Index documents from PostgreSQL into OpenSearch; returns counts and timings."""
    started = time.monotonic()
    layout = settings.layout
    client = settings.client(max_retries=2)
    writer = PostgresWriter(dsn, "reindex")
    statuses = [INDEX_PENDING, COMPLETED] if (everything or new_index) else [INDEX_PENDING]
    wos.ensure_indices(client, layout, stored_dimension(dsn))
    old_indices: dict[str, list[str]] = {}
    targets = None
    if new_index:
        # New indices from the templates, loaded without refreshes, then swapped in under the aliases.
        suffix = layout.new_suffix()
        targets = (f"{layout.documents}-{suffix}", f"{layout.chunks}-{suffix}")
        for index in targets:
            client.indices.create(index=index, body={"settings": {"index": {"refresh_interval": "-1"}}})
        for alias in layout.aliases:
            old_indices[alias] = sorted(client.indices.get_alias(name=alias))
        restore = {index: None for index in targets}
    else:
        restore = wos.relax_refresh(client, layout)
    indexer = wos.OpenSearchIndexer(settings, run_id="reindex", client=client, targets=targets)
    indexed, failed = [], {}
    try:
        for docs, stamps in read_batches(dsn, statuses, batch_size):
            outcome = indexer.write(docs, stamps)
            failed.update(outcome.failed)
            if new_index:
                indexed += outcome.indexed  # recorded once the aliases point at the new indices
            else:
                writer.record_indexing(outcome.indexed, outcome.failed)
                indexed += outcome.indexed
    finally:
        wos.restore_refresh(client, restore)
    if new_index:
        actions = []
        for alias, target in zip(layout.aliases, targets):
            actions += [{"remove": {"index": old, "alias": alias}} for old in old_indices[alias]]
            actions.append({"add": {"index": target, "alias": alias}})
        client.indices.update_aliases(body={"actions": actions})
        writer.record_indexing(indexed, failed)
        if delete_old:
            for olds in old_indices.values():
                for old in olds:
                    client.indices.delete(index=old)
    writer.close()
    client.close()
    seconds = time.monotonic() - started
    return {"indexed": len(indexed), "failed": len(failed), "failures": dict(list(failed.items())[:20]),
            "seconds": round(seconds, 2), "documents_per_second": round(len(indexed) / seconds, 1) if seconds else None,
            "aliases": {alias: list(targets)[i] for i, alias in enumerate(layout.aliases)} if targets else None,
            "old_indices": ({} if delete_old else old_indices) if new_index else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.reindex", description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", dest="everything", action="store_true",
                       help="index every completed document too, not only those waiting for indexing")
    which.add_argument("--new-index", action="store_true",
                       help="build new indices (current mapping) with every document, then switch the aliases")
    parser.add_argument("--delete-old", action="store_true", help="with --new-index: delete the old indices")
    parser.add_argument("--batch-size", type=int, default=200, help="documents read per batch (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    cli.add_store_args(parser)
    search_opensearch.add_args(parser)
    args = parser.parse_args(argv)
    settings = search_opensearch.settings_from_args(args)
    if settings is None:
        raise ValueError("--opensearch-url is required")
    from opensearchpy.exceptions import TransportError

    try:
        result = reindex(cli.dsn_from_args(args), settings, everything=args.everything,
                         new_index=args.new_index, delete_old=args.delete_old, batch_size=args.batch_size)
    except TransportError as exc:
        raise wos.OpenSearchError(f"OpenSearch at {wos.mask_url(settings.url)}: {wos.describe_error(exc)}") from None
    if args.json:
        print(cli.to_json(result))
    else:
        print(f"indexed {result['indexed']} documents into {wos.mask_url(settings.url)} in {result['seconds']} s"
              + (f", {result['failed']} failed (still waiting for indexing)" if result["failed"] else ""))
        for doc_id, reason in result["failures"].items():
            print(f"  {doc_id[:12]}  {reason}")
        if result["aliases"]:
            print("aliases now: " + ", ".join(f"{a} -> {i}" for a, i in result["aliases"].items()))
            olds = [i for v in (result["old_indices"] or {}).values() for i in v]
            if olds:
                print("old indices kept (delete with --delete-old next time, or DELETE /INDEX): " + ", ".join(olds))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main))
