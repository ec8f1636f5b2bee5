"""Schema migrations of the store (pipeline.store), on the real embedded PostgreSQL: a database left at
an older schema version by an earlier release is upgraded in place, keeping its rows, and migrate()
run again changes nothing."""
import psycopg
import pytest

from pipeline import store
from pipeline.embedded import fresh_database


def _database_at(pg_server, name: str, version: int) -> str:
    """A fresh database built the way an earlier release left it: migrations 1..version applied."""
    dsn = fresh_database(pg_server, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        for v in range(1, version + 1):
            conn.execute(store.MIGRATIONS[v])
            conn.execute("INSERT INTO schema_version VALUES (%s)", (v,))
    return dsn


def _tables(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_v2_database_migrates_to_current_keeping_its_rows(pg_server):
    dsn = _database_at(pg_server, "store_v2_to_v3", 2)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO documents (id, paths, status) VALUES ('d1', '{/a.txt}', 'completed')")
        conn.execute("INSERT INTO runs (id, input, status) VALUES ('old-run', '/data', 'completed')")
        conn.execute("INSERT INTO settings (key, value) VALUES ('embedder', '{\"embedder\": \"minilm\"}')")
        assert "run_stage_stats" not in _tables(conn)
    assert store.schema_version(dsn) == 2
    # status and /metrics read a store that only pipeline.run migrates: no live figures, no error.
    assert store.stage_stats(dsn, ["old-run"]) == {}

    assert store.migrate(dsn) == store.SCHEMA_VERSION
    assert store.schema_version(dsn) == store.SCHEMA_VERSION
    with psycopg.connect(dsn) as conn:
        assert {"run_stage_stats", "corrections", "example_vectors", "uploads", "watched_files"} <= _tables(conn)
        assert conn.execute("SELECT id FROM documents").fetchall() == [("d1",)]
        assert conn.execute("SELECT id FROM runs").fetchall() == [("old-run",)]
        assert conn.execute("SELECT value->>'embedder' FROM settings").fetchone()[0] == "minilm"
    # A run from before v3 has no live stage figures; the new table answers with nothing, not an error.
    assert store.stage_stats(dsn, ["old-run"]) == {}


def test_migrate_is_idempotent(pg_server):
    dsn = _database_at(pg_server, "store_idempotent", 2)
    store.migrate(dsn)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO run_stage_stats (run_id, stage, documents_ok, ms_count, ms_sum, ms_max) "
                     "VALUES ('r', 'convert', 3, 3, 30.0, 12.5)")
    assert store.migrate(dsn) == store.SCHEMA_VERSION and store.migrate(dsn) == store.SCHEMA_VERSION
    with psycopg.connect(dsn) as conn:
        # Each version recorded once; the rows written after the upgrade are untouched.
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == \
            list(range(1, store.SCHEMA_VERSION + 1))
        assert conn.execute("SELECT documents_ok, ms_count, ms_sum, ms_max FROM run_stage_stats").fetchall() == \
            [(3, 3, 30.0, 12.5)]


def test_a_newer_schema_is_refused(pg_server):
    dsn = _database_at(pg_server, "store_newer", 3)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s)", (store.SCHEMA_VERSION + 1,))
    with pytest.raises(store.StoreError, match="newer than this program's"):
        store.migrate(dsn)
