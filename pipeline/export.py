"""python -m pipeline.export --format parquet --out PATH: what earlier runs wrote, as Parquet.

Same tables and layout as `pipeline.run --parquet-out` (transforms/parquet.py):
PATH/{documents,chunks}/run_id=RUN/category=CATEGORY/part-export-*.parquet, where RUN is the run that
last wrote the document. Rows stream from server-side cursors in batches, so memory stays bounded by
the batch size whatever the store holds; each batch becomes one row group per partition it touches.
PATH may be any Beam filesystem path (local, gs://, s3://, with that filesystem's extra installed).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

import numpy as np

from pipeline import cli, store
from transforms import parquet

DOCUMENT_BATCH = 500     # documents carry their whole text: keep batches modest
CHUNK_BATCH = 5000       # 5,000 x 384 float32 = 7.7 MB of vectors per batch
ROWS_PER_FILE = 1_000_000  # a partition's file is closed and a new one started past this many rows

DOCUMENT_COLUMNS = """d.id, d.paths, d.filename, d.size, d.mime, d.pages, d.language, d.converter, d.confidence,
    d.metadata::text AS metadata, d.text, d.status, d.error_stage, d.error_message, d.processed_at,
    d.run_id, d.category"""


def filters(categories: list[str] | None, since: str | None, runs: list[str] | None) -> tuple[str, list]:
    """WHERE clause on documents `d` and its parameters (bound, never formatted into the SQL)."""
    clauses, params = [], []
    if categories:
        clauses.append("d.category = ANY(%s)")
        params.append(list(categories))
    if since:
        clauses.append("coalesce(d.processed_at, d.updated_at) >= %s")
        params.append(parse_since(since))
    if runs:
        clauses.append("d.run_id = ANY(%s)")
        params.append(list(runs))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def parse_since(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since: not an ISO date or time: {value!r} (e.g. 2026-11-30 or 2026-11-30T08:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def vectors_from_binary(values: list[bytes], dimension: int) -> np.ndarray:
    """pgvector's binary form (int16 dimension, int16 unused, then big-endian float32s) for a whole
    batch at once: the 4-byte header takes the place of one float, dropped after the reshape."""
    block = np.frombuffer(b"".join(values), dtype=">f4").reshape(len(values), dimension + 1)
    return block[:, 1:].astype(np.float32)


class PartitionedWriter:
    """One open Parquet file per (table, run, category) partition, rolled over past ROWS_PER_FILE."""

    def __init__(self, root: str, dimension: int, stamp: str, codec: str = "zstd"):
        self.root = root.rstrip("/")
        self.dimension = dimension
        self.stamp = stamp
        self.codec = codec
        self.open: dict[tuple, list] = {}  # key -> [ParquetWriter, file, rows written]
        self.files: list[str] = []
        self.rows = {parquet.DOCUMENTS: 0, parquet.CHUNKS: 0}

    def write(self, table: str, run_id: str | None, category: str | None, data) -> None:
        import pyarrow.parquet as pq
        from apache_beam.io.filesystems import FileSystems

        key = (table, run_id, category)
        entry = self.open.get(key)
        if entry is not None and entry[2] >= ROWS_PER_FILE:
            self._close(key)
            entry = None
        if entry is None:
            sequence = sum(1 for f in self.files if f.startswith(parquet.partition_dir(self.root, *key) + "/"))
            path = f"{parquet.partition_dir(self.root, *key)}/part-export-{self.stamp}-{sequence:05d}.parquet"
            handle = FileSystems.create(path)
            entry = self.open[key] = [pq.ParquetWriter(handle, parquet.schema_for(table, self.dimension),
                                                       compression=self.codec,
                                                       use_dictionary=parquet.DICTIONARY_COLUMNS[table]), handle, 0]
            self.files.append(path)
        entry[0].write_table(data)
        entry[2] += data.num_rows
        self.rows[table] += data.num_rows

    def _close(self, key) -> None:
        writer, handle, _ = self.open.pop(key)
        writer.close()
        handle.close()

    def close(self) -> None:
        for key in list(self.open):
            self._close(key)


def _grouped(rows: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row.pop("run_id"), row.pop("category")), []).append(row)
    return groups


def export_parquet(dsn: str, out: str, categories=None, since=None, runs=None,
                   document_batch: int = DOCUMENT_BATCH, chunk_batch: int = CHUNK_BATCH) -> dict:
    """Write the store's documents and chunks (filtered) under `out`; returns counts, files, timing."""
    from apache_beam.io.filesystems import FileSystems

    where, params = filters(categories, since, runs)
    existing = FileSystems.match([f"{out.rstrip('/')}/*/run_id=*/category=*/*.parquet"])[0].metadata_list
    if existing:
        raise ValueError(f"--out {out} already holds Parquet files ({len(existing)}, e.g. {existing[0].path}): "
                         "export into an empty folder (a second export would duplicate the rows)")
    started = time.perf_counter()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    with store.connect(dsn) as conn:
        dimension = store.embedding_dim(conn) or store.EMBEDDING_DIM
        writer = PartitionedWriter(out, dimension, stamp)
        try:
            # Named (server-side) cursors: PostgreSQL hands rows over in batches; the client never
            # holds more than one batch. Binary, so that vectors arrive as pgvector's bytes.
            with conn.transaction(), conn.cursor(name="export_documents") as cur:
                cur.itersize = document_batch
                cur.execute(f"SELECT {DOCUMENT_COLUMNS} FROM documents d{where}", params)
                names = [c.name for c in cur.description]
                while rows := cur.fetchmany(document_batch):
                    records = [dict(zip(names, row)) for row in rows]
                    for record in records:
                        record["timings"] = None  # per-document stage times are not kept in the store
                    for (run_id, category), group in _grouped(records).items():
                        writer.write(parquet.DOCUMENTS, run_id, category, parquet.documents_table(group))
            with conn.transaction(), conn.cursor(name="export_chunks", binary=True) as cur:
                cur.itersize = chunk_batch
                chunk_where = (f"{where} AND" if where else " WHERE") + " c.embedding IS NOT NULL"
                cur.execute("SELECT c.document_id, c.idx, c.text, c.embedding, d.run_id, d.category "
                            f"FROM chunks c JOIN documents d ON d.id = c.document_id{chunk_where}", params)
                while rows := cur.fetchmany(chunk_batch):
                    vectors = vectors_from_binary([r[3] for r in rows], dimension)
                    groups: dict[tuple, list[int]] = {}
                    for i, row in enumerate(rows):
                        groups.setdefault((row[4], row[5]), []).append(i)
                    for (run_id, category), members in groups.items():
                        table = parquet.chunks_table(
                            [{"document_id": rows[i][0], "idx": rows[i][1], "text": rows[i][2],
                              "embedding": vectors[i]} for i in members], dimension)
                        writer.write(parquet.CHUNKS, run_id, category, table)
        finally:
            writer.close()
    seconds = time.perf_counter() - started
    total = writer.rows[parquet.DOCUMENTS] + writer.rows[parquet.CHUNKS]
    sizes = {}
    for table in (parquet.DOCUMENTS, parquet.CHUNKS):
        paths = [f for f in writer.files if f"/{table}/run_id=" in f]
        sizes[table] = sum(m.size_in_bytes for match in FileSystems.match(paths) for m in match.metadata_list)
    return {"out": out, "documents": writer.rows[parquet.DOCUMENTS], "chunks": writer.rows[parquet.CHUNKS],
            "files": len(writer.files), "bytes": sizes, "seconds": round(seconds, 3),
            "rows_per_second": round(total / seconds, 1) if seconds else None, "dimension": dimension}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.export", description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("parquet",), default="parquet", help="output format (parquet)")
    parser.add_argument("--out", required=True, help="folder to write (local, gs://, s3://); must hold no export yet")
    parser.add_argument("--category", action="append", help="only documents of this category (repeatable)")
    parser.add_argument("--since", help="only documents processed at or after this ISO date/time (UTC if no zone)")
    parser.add_argument("--run", action="append", help="only documents last written by this run (repeatable)")
    parser.add_argument("--json", action="store_true", help="machine-readable summary")
    cli.add_store_args(parser)
    args = parser.parse_args(argv)
    if args.since:
        parse_since(args.since)  # a bad value fails before the database starts
    out = args.out
    from apache_beam.io.filesystems import FileSystems
    if FileSystems.get_scheme(out) is None:
        import os
        out = os.path.abspath(out)
    result = export_parquet(cli.dsn_from_args(args), out, args.category, args.since, args.run)
    if args.json:
        print(cli.to_json(result))
    else:
        mb = {k: v / 1e6 for k, v in result["bytes"].items()}
        print(f"Exported {result['documents']} documents ({mb['documents']:.1f} MB) and {result['chunks']} chunks "
              f"({mb['chunks']:.1f} MB, {result['dimension']}-dimensional float32) into {result['files']} files "
              f"under {out} in {result['seconds']:.1f} s ({result['rows_per_second'] or 0:,.0f} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main))
