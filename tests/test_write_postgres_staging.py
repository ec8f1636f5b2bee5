"""The sink's staged path (COPY into per-connection TEMP tables, then one set-based upsert) against
the row-by-row statements it replaces for batches of 2+ documents: same rows, same semantics, on the
real embedded PostgreSQL; and its staging tables across batches and after a reconnect."""
import numpy as np
import psycopg

from transforms.records import SKIPPED, Chunk, Document
from transforms.write_postgres import PostgresWriter

NON_UTF8 = b"/x/caf\xe9.pdf".decode("utf-8", "surrogateescape")


def doc(doc_id, paths, n_chunks=2, text="body text", **kw):
    d = Document(id=doc_id, paths=list(paths), size=10, filename=paths[0].rsplit("/", 1)[-1], text=text,
                 category="invoice", confidence=0.75, mime="application/pdf", pages=2, language="en",
                 converter="docling-native", metadata={"title": f"T {doc_id}", "fields": {"n": 1}}, **kw)
    rng = np.random.default_rng([ord(c) for c in doc_id] + [n_chunks])
    d.chunks = [Chunk(index=i, text=f"chunk\x00 {i} of {doc_id}", start_token=i, vector=rng.random(384, dtype=np.float32))
                for i in range(n_chunks)]
    return d


def batches():
    """A history exercising every rule: inserts, re-processing (fewer chunks), failures, skips that
    only add paths, duplicate paths, NUL characters, a non-UTF-8 path, no metadata, one id twice."""
    failed = Document(id="f", paths=["/x/bad.pdf"], filename="bad.pdf").fail("convert", "corrupt\x00 PDF")
    bare = Document(id="m", paths=["/x/m.txt"], filename="m.txt", text="no metadata")
    yield [doc("a", ["/x/a.pdf", "/y/a-copy.pdf"], 3, text="hello\x00 world"), doc("b", [NON_UTF8]), failed, bare]
    yield [doc("a", ["/z/a.pdf"], 1, text="hello\x00 again"), doc("c", ["/x/c.pdf"], 4),
           Document(id="b", paths=["/new/b.pdf", NON_UTF8], status=SKIPPED)]
    # The same id twice in one batch (chunkless, as a retried failure would be): the second row
    # updates the first, as the row-by-row statements do.
    yield [Document(id="g", paths=["/x/g1.pdf"], filename="g1.pdf").fail("read", "gone"),
           Document(id="g", paths=["/x/g2.pdf"], filename="g2.pdf").fail("read", "gone again"),
           doc("c", ["/x/c.pdf"], 2)]


def snapshot(dsn):
    """Every row of the three tables, without the timestamps."""
    with psycopg.connect(dsn) as conn:
        docs = conn.execute(
            "SELECT id, paths, filename, size, mime, pages, status, category, confidence, metadata, text, "
            "language, converter, error_stage, error_message, attempts, run_id, tsv::text, doc_date, "
            "processed_at IS NOT NULL FROM documents ORDER BY id").fetchall()
        chunks = conn.execute("SELECT document_id, idx, text, embedding::text FROM chunks "
                              "ORDER BY document_id, idx").fetchall()
        inputs = conn.execute("SELECT path, document_id, run_id, status, duplicate_of FROM inputs "
                              "ORDER BY path").fetchall()
    return docs, chunks, inputs


def write_history(dsn, staged_min_batch):
    for i, batch in enumerate(batches()):
        writer = PostgresWriter(dsn, f"run-{i}")
        writer.staged_min_batch = staged_min_batch
        writer.write_batch(batch)
        writer.close()


def test_staged_writes_the_same_rows_as_row_by_row(pg_server, pg_dsn):
    from pipeline import store
    from pipeline.embedded import fresh_database

    other = fresh_database(pg_server, "t_staging_row_by_row")
    store.migrate(other)
    write_history(pg_dsn, staged_min_batch=1)       # every batch staged
    write_history(other, staged_min_batch=10 ** 9)  # every batch row by row (the earlier writer)
    staged, row_by_row = snapshot(pg_dsn), snapshot(other)
    assert staged == row_by_row
    docs, chunks, inputs = staged
    by_id = {d[0]: d for d in docs}
    # The rules themselves, so the comparison cannot pass on two equally wrong writers.
    assert by_id["a"][1] == ["/x/a.pdf", "/y/a-copy.pdf", "/z/a.pdf"] and by_id["a"][15] == 2
    assert by_id["a"][10] == "hello again" and [c for c in chunks if c[0] == "a"] == [
        ("a", 0, "chunk 0 of a", chunks[0][3])]
    assert by_id["b"][1] == ["/new/b.pdf", "/x/caf\\xe9.pdf"] and by_id["b"][16] == "run-0"
    assert by_id["g"][1] == ["/x/g1.pdf", "/x/g2.pdf"] and by_id["g"][15] == 2
    assert by_id["g"][14] == "gone again" and by_id["f"][14] == "corrupt PDF"
    assert by_id["m"][9] is None and by_id["c"][15] == 2 and len([c for c in chunks if c[0] == "c"]) == 2
    assert ("/y/a-copy.pdf", "a", "run-0", "completed", "/x/a.pdf") in inputs
    assert ("/new/b.pdf", "b", "run-1", "skipped", None) in inputs


def test_staging_tables_are_reused_and_recreated_after_a_reconnect(pg_dsn):
    writer = PostgresWriter(pg_dsn, "run-1", backoff=0.05)
    writer.staged_min_batch = 2  # small batches here; by default only batches of 32+ are staged

    def staging():
        conn = writer.conn
        with conn.transaction():
            return (conn.info.backend_pid,
                    conn.execute("SELECT 'docpipe_stage_documents'::regclass::oid").fetchone()[0],
                    conn.execute("SELECT count(*) FROM docpipe_stage_documents").fetchone()[0]
                    + conn.execute("SELECT count(*) FROM docpipe_stage_inputs").fetchone()[0])

    writer.write_batch([doc("a", ["/x/a.pdf"]), doc("b", ["/x/b.pdf"])])
    pid, table, left = staging()
    assert left == 0  # emptied at commit
    writer.write_batch([doc("c", ["/x/c.pdf"]), doc("d", ["/x/d.pdf"])])
    assert staging() == (pid, table, 0)  # same session, same table
    # The server drops the writer's session (a restart, a fail-over, an idle timeout): the retry
    # reconnects, and the new session needs its own staging tables.
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    writer.write_batch([doc("e", ["/x/e.pdf"]), doc("a", ["/x/a2.pdf"], 1)])
    new_pid, _, left = staging()
    assert new_pid != pid and left == 0
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 5
        assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 9
        assert conn.execute("SELECT paths, attempts FROM documents WHERE id = 'a'").fetchone() == (
            ["/x/a.pdf", "/x/a2.pdf"], 2)
    writer.close()


def test_by_default_only_large_batches_are_staged(pg_dsn):
    def has_staging(writer):
        with writer.conn.transaction():
            return writer.conn.execute("SELECT to_regclass('pg_temp.docpipe_stage_documents') IS NOT NULL").fetchone()[0]

    small = PostgresWriter(pg_dsn, "run-1")
    small.write_batch([doc(f"s{i}", [f"/x/s{i}.pdf"], 1) for i in range(small.staged_min_batch - 1)])
    large = PostgresWriter(pg_dsn, "run-1")
    large.write_batch([doc(f"l{i}", [f"/x/l{i}.pdf"], 1) for i in range(large.staged_min_batch)])
    assert not has_staging(small) and has_staging(large)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 2 * large.staged_min_batch - 1
    small.close()
    large.close()


def test_a_staged_batch_with_a_refused_document_writes_the_others(pg_dsn):
    # 40 documents take the COPY path; one of them holds text UTF-8 cannot encode (a lone surrogate).
    docs = [doc(f"d{i}", [f"/x/d{i}.pdf"]) for i in range(40)]
    docs[17].text = "bad \udd19"
    writer = PostgresWriter(pg_dsn, "run-1")
    assert len(docs) >= writer.staged_min_batch
    writer.write_batch(docs)
    with psycopg.connect(pg_dsn) as conn:
        by_status = dict(conn.execute("SELECT status, count(*) FROM documents GROUP BY status").fetchall())
        stage = conn.execute("SELECT error_stage FROM documents WHERE id = 'd17'").fetchone()[0]
    assert by_status == {"completed": 39, "failed": 1} and stage == "write"
