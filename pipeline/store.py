"""The PostgreSQL store: schema, migrations, and the queries shared by run, status and search.

One module owns the schema so every command sees the same tables:

- documents: one row per distinct content (id = sha256), with every path it was seen under;
- chunks:    the document's text windows with their embedding (pgvector, HNSW cosine index);
- inputs:    one row per input path: the path's latest outcome, run and document;
- runs:      one row per run: input, options (secrets masked), start/end, counts.
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row

SCHEMA_VERSION = 1
EMBEDDING_DIM = 384

# Each entry migrates from the previous version; applied in order inside one transaction.
MIGRATIONS: dict[int, str] = {
    1: f"""
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE documents (
        id            text PRIMARY KEY,
        paths         text[] NOT NULL,
        filename      text,
        size          bigint,
        mime          text,
        pages         integer,
        status        text NOT NULL,
        category      text,
        confidence    real,
        metadata      jsonb,
        text          text,
        language      text,
        converter     text,
        error_stage   text,
        error_message text,
        attempts      integer NOT NULL DEFAULT 1,
        run_id        text,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now(),
        processed_at  timestamptz
    );
    CREATE INDEX documents_status_idx ON documents (status);
    CREATE INDEX documents_category_idx ON documents (category);
    CREATE INDEX documents_run_idx ON documents (run_id);
    CREATE TABLE chunks (
        document_id text NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        idx         integer NOT NULL,
        text        text NOT NULL,
        embedding   vector({EMBEDDING_DIM}),
        PRIMARY KEY (document_id, idx)
    );
    CREATE INDEX chunks_embedding_idx ON chunks USING hnsw (embedding vector_cosine_ops);
    CREATE TABLE inputs (
        path         text PRIMARY KEY,
        document_id  text NOT NULL,
        run_id       text NOT NULL,
        status       text NOT NULL,
        duplicate_of text,
        updated_at   timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX inputs_run_idx ON inputs (run_id);
    CREATE INDEX inputs_document_idx ON inputs (document_id);
    CREATE TABLE runs (
        id          text PRIMARY KEY,
        input       text NOT NULL,
        options     jsonb,
        status      text NOT NULL,
        started_at  timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        counts      jsonb
    );
    """,
}


class StoreError(Exception):
    """The database cannot be used (unreachable, wrong schema); shown to the user as is."""


def mask_dsn(dsn: str) -> str:
    """A DSN safe to print or store: any password replaced by ***."""
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn, flags=re.IGNORECASE)


def connect(dsn: str, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {mask_dsn(dsn)}: {str(exc).strip()}") from exc


@contextmanager
def session(dsn: str):
    """A connection returning rows as dicts, closed on exit."""
    conn = connect(dsn, row_factory=dict_row)
    try:
        yield conn
    finally:
        conn.close()


def migrate(dsn: str) -> int:
    """Create or upgrade the schema; returns the version now in place."""
    with connect(dsn, autocommit=True) as conn:
        # One migrator at a time: two runs started together must not both create tables.
        conn.execute("SELECT pg_advisory_lock(hashtext('docpipe-migrate'))")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"the database schema is version {current}, newer than this "
                                 f"program's {SCHEMA_VERSION}: upgrade the program")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                with conn.transaction():
                    conn.execute(MIGRATIONS[version])
                    conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))
            return SCHEMA_VERSION
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('docpipe-migrate'))")


def schema_version(dsn: str) -> int:
    with connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
        if not exists:
            return 0
        return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


# -- runs ---------------------------------------------------------------------------------------

def start_run(dsn: str, run_id: str, input_spec: str, options: dict) -> None:
    with connect(dsn) as conn:
        conn.execute(
            "INSERT INTO runs (id, input, options, status) VALUES (%s, %s, %s, 'running')",
            (run_id, input_spec, json.dumps(options, default=str)))


def run_counts(dsn: str, run_id: str) -> dict:
    """Outcome counts of one run, from the inputs it recorded."""
    with session(dsn) as conn:
        rows = conn.execute(
            """
            SELECT i.status, i.duplicate_of IS NOT NULL AS duplicate, d.error_stage, d.category,
                   count(*) AS n
            FROM inputs i JOIN documents d ON d.id = i.document_id
            WHERE i.run_id = %s
            GROUP BY 1, 2, 3, 4
            """, (run_id,)).fetchall()
    counts = {"paths": 0, "documents": 0, "completed": 0, "failed": 0, "skipped_unchanged": 0,
              "duplicates": 0, "failed_by_stage": {}, "by_category": {}}
    for r in rows:
        n = r["n"]
        counts["paths"] += n
        if r["duplicate"]:
            counts["duplicates"] += n
            continue
        counts["documents"] += n
        if r["status"] == "completed":
            counts["completed"] += n
            counts["by_category"][r["category"] or "other"] = counts["by_category"].get(
                r["category"] or "other", 0) + n
        elif r["status"] == "failed":
            counts["failed"] += n
            stage = r["error_stage"] or "unknown"
            counts["failed_by_stage"][stage] = counts["failed_by_stage"].get(stage, 0) + n
        elif r["status"] == "skipped":
            counts["skipped_unchanged"] += n
    return counts


def finish_run(dsn: str, run_id: str, status: str, counts: dict) -> None:
    with connect(dsn) as conn:
        conn.execute("UPDATE runs SET status = %s, finished_at = now(), counts = %s WHERE id = %s",
                     (status, json.dumps(counts), run_id))
