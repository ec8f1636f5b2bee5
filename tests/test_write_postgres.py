"""The PostgreSQL sink against the real embedded server: batched upserts that never duplicate."""
import numpy as np
import psycopg

from transforms.records import FAILED, SKIPPED, Chunk, Document
from transforms.write_postgres import PostgresWriter


def make_doc(doc_id, paths, n_chunks=2, **kw):
    doc = Document(id=doc_id, paths=paths, size=10, filename=paths[0].rsplit("/", 1)[-1], text="hello\x00 world",
                   category="invoice", confidence=0.9, metadata={"title": "t", "fields": {}}, **kw)
    rng = np.random.default_rng([ord(c) for c in doc_id])
    doc.chunks = [Chunk(index=i, text=f"chunk {i}", start_token=i, vector=rng.random(384, dtype=np.float32))
                  for i in range(n_chunks)]
    return doc


def counts(dsn):
    with psycopg.connect(dsn) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("documents", "chunks", "inputs"))


def test_batch_write_and_rewrite_is_idempotent(pg_dsn):
    writer = PostgresWriter(pg_dsn, "run-1")
    batch = [make_doc("a", ["/x/a.pdf", "/y/a-copy.pdf"], 3), make_doc("b", ["/x/b.pdf"], 1)]
    writer.write_batch(batch)
    assert counts(pg_dsn) == (2, 4, 3)
    # The same batch again (a retried bundle, or a rerun with --reprocess): nothing duplicated.
    writer.write_batch([make_doc("a", ["/x/a.pdf"], 2), make_doc("b", ["/x/b.pdf"], 1)])
    assert counts(pg_dsn) == (2, 3, 3)
    with psycopg.connect(pg_dsn) as conn:
        paths, status, attempts, text = conn.execute(
            "SELECT paths, status, attempts, text FROM documents WHERE id = 'a'").fetchone()
        dup = conn.execute("SELECT duplicate_of FROM inputs WHERE path = '/y/a-copy.pdf'").fetchone()[0]
        nearest = conn.execute("SELECT document_id FROM chunks ORDER BY embedding <=> "
                               "(SELECT embedding FROM chunks WHERE document_id='b') LIMIT 1").fetchone()[0]
    assert paths == ["/x/a.pdf", "/y/a-copy.pdf"] and status == "completed" and attempts == 2
    assert text == "hello world" and dup == "/x/a.pdf" and nearest == "b"


def test_failed_and_skipped_documents(pg_dsn):
    writer = PostgresWriter(pg_dsn, "run-1")
    failed = Document(id="f", paths=["/x/bad.pdf"], filename="bad.pdf").fail("convert", "corrupt PDF")
    writer.write_batch([failed, make_doc("a", ["/x/a.pdf"])])
    assert writer.completed_ids(["a", "f", "zzz"]) == {"a"}
    rerun = PostgresWriter(pg_dsn, "run-2")
    skipped = Document(id="a", paths=["/new/place/a.pdf"], status=SKIPPED)
    rerun.write_batch([skipped])
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT status, error_stage, error_message FROM documents WHERE id='f'").fetchone() == (
            FAILED, "convert", "corrupt PDF")
        assert conn.execute("SELECT paths, run_id FROM documents WHERE id='a'").fetchone() == (
            ["/new/place/a.pdf", "/x/a.pdf"], "run-1")
        assert conn.execute("SELECT status, run_id FROM inputs WHERE path='/new/place/a.pdf'").fetchone() == (
            SKIPPED, "run-2")
    assert counts(pg_dsn) == (2, 2, 3)


def test_bulk_load_defers_the_vector_index(pg_dsn):
    from pipeline import store

    def has_index():
        with psycopg.connect(pg_dsn) as conn:
            return conn.execute("SELECT to_regclass('chunks_embedding_idx') IS NOT NULL").fetchone()[0]

    store.drop_vector_index(pg_dsn)
    assert not has_index()
    PostgresWriter(pg_dsn, "bulk").write_batch([make_doc("a", ["/x/a.pdf"], 3), make_doc("b", ["/x/b.pdf"], 2)])
    assert store.create_vector_index(pg_dsn) >= 0 and has_index()
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = " ".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT document_id FROM chunks ORDER BY embedding <=> (SELECT embedding FROM chunks LIMIT 1) LIMIT 1"))
    assert "chunks_embedding_idx" in plan


def test_a_document_the_database_refuses_fails_alone(pg_dsn):
    # A lone surrogate (from a decoder, not from our converter, which replaces them) cannot be encoded
    # as UTF-8: the batch is written again one by one, and only that document fails, at the write stage.
    bad = make_doc("bad", ["/x/bad.eml"])
    bad.text = "broken \udd19 text"
    bad.metadata = {"title": "t \udd19", "fields": {}}
    odd = make_doc("odd", ["/x/odd.txt"])
    odd.metadata = {"fields": {"when": object()}}   # a value JSON cannot hold
    batch = [make_doc("a", ["/x/a.pdf"]), bad, make_doc("b", ["/x/b.pdf"]), odd]
    PostgresWriter(pg_dsn, "run-1").write_batch(batch)
    assert [d.status for d in batch] == ["completed", FAILED, "completed", FAILED]
    assert odd.error_stage == "write" and "TypeError" in odd.error_message
    with psycopg.connect(pg_dsn) as conn:
        stage, message, text = conn.execute(
            "SELECT error_stage, error_message, text FROM documents WHERE id = 'bad'").fetchone()
        inputs = dict(conn.execute("SELECT path, status FROM inputs").fetchall())
    assert stage == "write" and "refused" in message and "UnicodeEncodeError" in message and text is None
    assert inputs == {"/x/a.pdf": "completed", "/x/bad.eml": FAILED, "/x/b.pdf": "completed", "/x/odd.txt": FAILED}
    assert counts(pg_dsn) == (4, 4, 4)
