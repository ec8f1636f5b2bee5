"""Parquet out (pipeline.run --parquet-out) and export (pipeline.export): real runs into the embedded
PostgreSQL, files read back with pyarrow and DuckDB, vectors compared with the store's (pgvector)."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from pgvector.psycopg import register_vector

from pipeline import export
from tests.test_portable import dask_cluster, portable_services  # noqa: F401 (fixtures)
from pipeline import run as run_module
from transforms import parquet
from transforms.records import Chunk, Document


def read_dataset(root, table: str) -> pa.Table:
    return pads.dataset(f"{root}/{table}", format="parquet", partitioning="hive").to_table()


def store_rows(dsn: str):
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        documents = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, run_id, category, status, paths, text FROM documents").fetchall()}
        chunks = {(r[0], r[1]): (r[2], np.asarray(r[3].to_numpy(), dtype=np.float32)) for r in conn.execute(
            "SELECT document_id, idx, text, embedding FROM chunks").fetchall()}
    return documents, chunks


def check_against_store(root, dsn: str, dimension: int = 384, run_filter: str | None = None) -> tuple[int, int]:
    """Every document and chunk of the store (of one run, if given) is in the files, once, with its
    partition (run, category), and each vector equals the store's bit for bit."""
    documents, chunks = store_rows(dsn)
    if run_filter:
        documents = {k: v for k, v in documents.items() if v[0] == run_filter}
        chunks = {k: v for k, v in chunks.items() if k[0] in documents}
    docs = read_dataset(root, "documents")
    # Types as written down in the README (partition columns come from the folder names).
    for field in parquet.DOCUMENT_SCHEMA:
        assert docs.schema.field(field.name).type == field.type, field.name
    assert docs.num_rows == len(documents) and len(set(docs.column("id").to_pylist())) == len(documents)
    for row in docs.to_pylist():
        run_id, category, status, paths, text = documents[row["id"]]
        assert (row["run_id"], row["category"]) == (run_id, category)
        assert row["status"] == ("failed" if status == "failed" else "completed")
        assert row["paths"] == paths and row["text"] == text
        if row["metadata"] is not None:
            assert isinstance(json.loads(row["metadata"]), dict)
    table = read_dataset(root, "chunks")
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), dimension)
    assert table.schema.field("idx").type == pa.int32()
    assert table.num_rows == len(chunks)
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, dimension)
    for i, (doc_id, idx, text) in enumerate(zip(table.column("document_id").to_pylist(),
                                                table.column("idx").to_pylist(), table.column("text").to_pylist())):
        stored_text, stored_vector = chunks[(doc_id, idx)]
        assert text == stored_text
        assert np.array_equal(vectors[i], stored_vector), (doc_id, idx)
    # DuckDB reads the same files, partitions as columns, a document without category as NULL.
    pattern = f"{root}/documents/*/*/*.parquet"
    by_category = dict(duckdb.sql(f"SELECT coalesce(category, '<null>'), count(*) FROM read_parquet('{pattern}', "
                                  "hive_partitioning = true) GROUP BY ALL").fetchall())
    expected: dict[str, int] = {}
    for _, category, *_ in documents.values():
        expected[category or "<null>"] = expected.get(category or "<null>", 0) + 1
    assert by_category == expected
    [(chunk_rows, dims)] = duckdb.sql(f"SELECT count(*), min(len(embedding)) FROM read_parquet("
                                      f"'{root}/chunks/*/*/*.parquet')").fetchall()
    assert chunk_rows == len(chunks) and (dims == dimension or not chunks)
    return docs.num_rows, table.num_rows


def test_run_writes_parquet_and_export_writes_the_same_from_the_store(tmp_path, pg_dsn):
    from bench.corpus import write_corpus

    corpus = tmp_path / "corpus"
    write_corpus(corpus, 6, seed=11, scanned_share=0, log=open("/dev/null", "w"))
    (corpus / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")  # fails at convert
    out = tmp_path / "lake"
    summary = run_module.run(["--input", str(corpus / "docs"), "--pg-dsn", pg_dsn, "--run-id", "pq run/1",
                              "--parquet-out", str(out), "--direct_num_workers=2"])
    assert summary["documents"] == 7 and summary["failed"] == 1
    # Partitioned by run (escaped as Hive does) and category; the failed document has none.
    run_dir = out / "documents" / "run_id=pq%20run%2F1"
    assert (run_dir / f"category={parquet.NULL_PARTITION}").is_dir()
    import pyarrow.parquet as pq  # a category no document has: no folder, no empty file
    assert all(pq.ParquetFile(f).metadata.num_rows > 0 for f in out.rglob("*.parquet"))
    assert all(f.name.startswith("part-") and f.suffix == ".parquet" for f in run_dir.rglob("*") if f.is_file())
    documents, chunks = check_against_store(out, pg_dsn)
    assert documents == 7 and chunks > 6
    failed = [r for r in read_dataset(out, "documents").to_pylist() if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error_stage"] == "convert" and failed[0]["category"] is None
    done = [r for r in read_dataset(out, "documents").to_pylist() if r["status"] == "completed"]
    assert all(dict(r["timings"]).get("convert", 0) > 0 for r in done)  # per-stage milliseconds

    # A second run skips the completed documents (earlier runs' output: not written again) and tries
    # the failed one again: only that one is in the second run's partition.
    again = run_module.run(["--input", str(corpus / "docs"), "--pg-dsn", pg_dsn, "--run-id", "pq2",
                            "--parquet-out", str(out), "--direct_num_workers=1"])
    assert again["skipped_unchanged"] == 6
    second = [r for r in read_dataset(out, "documents").to_pylist() if r["run_id"] == "pq2"]
    assert [(r["status"], r["category"]) for r in second] == [("failed", None)]

    # The export writes what the store holds, in the same layout, from server-side cursors.
    lake = tmp_path / "export"
    result = export.export_parquet(pg_dsn, str(lake), document_batch=2, chunk_batch=5)  # many batches
    assert result["documents"] == 7 and result["chunks"] == chunks
    assert check_against_store(lake, pg_dsn) == (7, chunks)
    with pytest.raises(ValueError, match="already holds Parquet files"):
        export.export_parquet(pg_dsn, str(lake))

    # Filters: a category, a time in the future, through the command line.
    invoices = tmp_path / "invoices"
    assert export.main(["--out", str(invoices), "--category", "invoice", "--pg-dsn", pg_dsn, "--json"]) == 0
    table = read_dataset(invoices, "documents")
    assert set(table.column("category").to_pylist()) <= {"invoice"}
    future = export.export_parquet(pg_dsn, str(tmp_path / "none"), since="2999-01-01")
    assert future["documents"] == 0 and future["files"] == 0
    with pytest.raises(ValueError, match="--since"):
        export.main(["--out", str(tmp_path / "x"), "--since", "last tuesday", "--pg-dsn", pg_dsn])


def test_write_parquet_branch_alone(tmp_path):
    """The Beam branch alone (TestPipeline): Documents made here, partitions and vectors checked after
    the round trip."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from transforms.write_parquet import ParquetSettings, WriteParquet

    rng = np.random.default_rng(0)
    docs = []
    for i in range(5):
        doc = Document(id=f"d{i}", paths=[f"/in/d{i}.txt"], status="pending", category=["invoice", "letter"][i % 2],
                       text=f"text {i}", confidence=0.5, metadata={"fields": {"n": i}}, timings={"convert": 1.5})
        doc.chunks = [Chunk(j, f"chunk {j}", 0, rng.standard_normal(8).astype(np.float32)) for j in range(3)]
        docs.append(doc)
    docs.append(Document(id="bad", paths=["/in/bad\udce9.pdf"]).fail("convert", "corrupt"))  # non-UTF-8 name
    settings = ParquetSettings(path=str(tmp_path), dimension=8, categories=("invoice", "letter", "other"))
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _ = p | beam.Create([docs[:3], docs[3:]]) | WriteParquet(settings, "r1")
    folders = sorted({f.parent.relative_to(tmp_path).as_posix() for f in tmp_path.rglob("*.parquet")})
    assert folders == [f"chunks/run_id=r1/category={c}" for c in ("invoice", "letter")] + [
        f"documents/run_id=r1/category={c}" for c in (parquet.NULL_PARTITION, "invoice", "letter")]
    documents = read_dataset(tmp_path, "documents").to_pylist()
    assert {d["id"]: d["status"] for d in documents} == {**{f"d{i}": "completed" for i in range(5)}, "bad": "failed"}
    assert next(d for d in documents if d["id"] == "bad")["paths"] == ["/in/bad\\xe9.pdf"]
    chunks = read_dataset(tmp_path, "chunks")
    got = {(d, i): np.asarray(v, dtype=np.float32) for d, i, v in zip(
        chunks.column("document_id").to_pylist(), chunks.column("idx").to_pylist(),
        chunks.column("embedding").to_pylist())}
    assert len(got) == 15
    for doc in docs[:5]:
        for c in doc.chunks:
            assert np.array_equal(got[(doc.id, c.index)], c.vector)


def test_partition_names_and_pgvector_binary_decoding(pg_dsn):
    assert parquet.partition_value("report") == "report"
    assert parquet.partition_value("a b/c=d") == "a%20b%2Fc%3Dd"
    assert parquet.partition_value(None) == parquet.NULL_PARTITION
    vectors = np.random.default_rng(1).standard_normal((4, 384)).astype(np.float32)
    with psycopg.connect(pg_dsn) as conn:
        register_vector(conn)
        conn.execute("CREATE TEMP TABLE v (i int, e vector(384))")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO v VALUES (%s, %s)", [(i, v) for i, v in enumerate(vectors)])
        # Without asking pgvector's loader: raw binary, as the export reads it.
        raw = [bytes(r[0]) for r in conn.cursor(binary=True).execute("SELECT vector_send(e) FROM v ORDER BY i").fetchall()]
    assert np.array_equal(export.vectors_from_binary(raw, 384), vectors)


def test_a_local_parquet_folder_is_refused_when_workers_run_elsewhere():
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline import launch
    from pipeline.options import DocPipelineOptions

    remote = ["--profile", "flink-k8s", "--input", "s3://bucket/inbox/", "--pg-dsn", "postgresql://u@db.example/docs"]

    def check(argv):
        options = PipelineOptions(launch.apply_profile(argv))
        launch.check_remote(options, options.view_as(DocPipelineOptions))

    with pytest.raises(launch.LaunchError, match="--parquet-out /lake is a folder on this machine"):
        check(remote + ["--parquet-out", "/lake"])
    check(remote + ["--parquet-out", "s3://bucket/lake"])
    check(remote + ["--parquet-out", "/shared/lake", "--input-is-shared"])


def _documents_for_runners():
    rng = np.random.default_rng(7)
    batches = []
    for b in range(3):
        batch = []
        for i in range(4):
            doc = Document(id=f"d{b}-{i}", paths=[f"/in/{b}-{i}.txt"], status="completed",
                           category=["invoice", "letter", None][i % 3], text=f"text {b} {i}")
            if doc.category is None:
                doc.fail("convert", "corrupt")
            else:
                doc.chunks = [Chunk(j, f"chunk {j}", 0, rng.standard_normal(8).astype(np.float32)) for j in range(2)]
            batch.append(doc)
        batches.append(batch)
    return batches


def _write_on(options_argv, root):
    """The Beam branch alone on another runner; its rows and vectors read back."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.write_parquet import ParquetSettings, WriteParquet

    batches = _documents_for_runners()
    settings = ParquetSettings(path=str(root), dimension=8, categories=("invoice", "letter", "other"))
    with beam.Pipeline(options=PipelineOptions(options_argv)) as p:
        _ = p | beam.Create(batches) | WriteParquet(settings, "r")
    documents = read_dataset(root, "documents").to_pylist()
    assert sorted(d["id"] for d in documents) == sorted(d.id for batch in batches for d in batch)
    chunks = read_dataset(root, "chunks")
    got = {(d, i): v for d, i, v in zip(chunks.column("document_id").to_pylist(), chunks.column("idx").to_pylist(),
                                        chunks.column("embedding").to_pylist())}
    expected = {(d.id, c.index): c.vector for batch in batches for d in batch for c in d.chunks}
    assert set(got) == set(expected)
    assert all(np.array_equal(np.asarray(got[k], dtype=np.float32), v) for k, v in expected.items())


@pytest.mark.slow
def test_parquet_branch_on_the_portable_runner(tmp_path, portable_services):
    """What Flink and Spark also do: the job service and an EXTERNAL worker pool, workers elsewhere."""
    _write_on(portable_services, tmp_path)


@pytest.mark.slow
def test_whole_run_with_parquet_out_on_a_dask_cluster(tmp_path, pg_dsn, dask_cluster):
    """pipeline.run on Dask with --parquet-out: WriteParquetFiles in the main line (Beam's file sink
    cannot work in this graph on Beam 2.77's DaskRunner); files equal the store, nothing twice."""
    from bench.corpus import write_corpus

    corpus = tmp_path / "corpus"
    write_corpus(corpus, 4, seed=5, scanned_share=0, log=open("/dev/null", "w"))
    out = tmp_path / "lake"
    summary = run_module.run(["--input", str(corpus / "docs"), "--pg-dsn", pg_dsn, "--profile", "dask",
                              f"--dask_client_address={dask_cluster.scheduler_address}", "--dask_npartitions=2",
                              "--parquet-out", str(out)])
    assert summary["status"] == "completed" and summary["completed"] == 4
    assert check_against_store(out, pg_dsn)[0] == 4
    assert not list(out.rglob("beam-temp-*"))
