"""The PostgreSQL store: schema, migrations, and the queries shared by run, status and search.

One module owns the schema so every command sees the same tables:

- documents: one row per distinct content (id = sha256), with every path it was seen under;
- chunks:    the document's text windows with their embedding (pgvector, HNSW cosine index);
- inputs:    one row per input path: the path's latest outcome, run and document;
- runs:      one row per run: input, options (secrets masked), start/end, counts;
- settings:  the store's own settings (the embedder that made its vectors);
- run_stage_stats: per run and stage, documents ok/failed and latency (count, sum, max), added to
             by the writer with every batch, so stage metrics are live while a run goes;
- corrections: what users corrected (a document's category, later its fields), who and when; a
             corrected value wins over what a rerun computes, and corrected categories become
             labelled examples for the classifier of later runs;
- example_vectors: the classifier's labelled examples (from --examples folders and corrections)
             as vectors of the classification embedder, so a run does not embed them again.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from contextlib import contextmanager

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

SCHEMA_VERSION = 9
EMBEDDING_DIM = 384
VECTOR_INDEX = "CREATE INDEX IF NOT EXISTS chunks_embedding_idx ON chunks USING hnsw (embedding vector_cosine_ops)"

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
        processed_at  timestamptz,
        -- Full-text index: title weighted above body. Only the first 200,000 characters are indexed
        -- (tsvector has a 1 MB limit); chunk vectors cover the whole text for semantic search.
        tsv tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english', coalesce(metadata->>'title', '')), 'A') ||
            setweight(to_tsvector('english', left(coalesce(text, ''), 200000)), 'B')) STORED,
        -- The document's own date, for --from/--to: issue, letter/report or effective date, else
        -- the first date found in the text (all ISO strings, so text order is date order).
        doc_date text GENERATED ALWAYS AS (coalesce(
            metadata->'fields'->>'issue_date', metadata->'fields'->>'date',
            metadata->'fields'->>'effective_date', metadata->'dates'->>0)) STORED
    );
    CREATE INDEX documents_tsv_idx ON documents USING gin (tsv);
    CREATE INDEX documents_doc_date_idx ON documents (doc_date);
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
    {VECTOR_INDEX};
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
        paths_total integer,          -- set when the input listing is complete (progress percent)
        counts      jsonb
    );
    """,
    # Settings of the store itself; first of them the embedder that made the chunks' vectors, so
    # search embeds queries with the same model and a run with another model is refused.
    2: """
    CREATE TABLE settings (
        key         text PRIMARY KEY,
        value       jsonb NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now()
    );
    """,
    # Per-stage figures of each run, added to by the PostgreSQL writer inside every batch's transaction
    # (transforms.write_postgres.PostgresWriter._add_stage_stats): live, whatever the runner. No foreign
    # key to runs: a writer may write for a run id the runs table does not know (tests, tools).
    3: """
    CREATE TABLE run_stage_stats (
        run_id           text NOT NULL,
        stage            text NOT NULL,
        documents_ok     bigint NOT NULL DEFAULT 0,
        documents_failed bigint NOT NULL DEFAULT 0,
        ms_count         bigint NOT NULL DEFAULT 0,   -- documents timed (a read failure is not)
        ms_sum           double precision NOT NULL DEFAULT 0,
        ms_max           double precision NOT NULL DEFAULT 0,
        updated_at       timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, stage)
    );
    """,
    # What users corrected, one row per document and field ('category', or 'fields.<name>' for an
    # extracted field), and the labelled examples of the classifier as vectors, keyed by the content
    # hash of the example (a document id for a correction) and the embedder that made the vector.
    4: """
    CREATE TABLE corrections (
        document_id  text NOT NULL,
        field        text NOT NULL,
        value        jsonb NOT NULL,
        previous     jsonb,
        corrected_by text NOT NULL,
        corrected_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (document_id, field)
    );
    CREATE TABLE example_vectors (
        content_id  text NOT NULL,
        embedder    text NOT NULL,
        category    text NOT NULL,
        source      text NOT NULL,      -- 'examples' (an --examples folder) | 'correction'
        path        text,
        vector      real[] NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (content_id, embedder)
    );
    """,
    # Files sent in over HTTP (POST /api/documents, pipeline/inbox.py): one row per file of an upload
    # batch, with its document id (content hash), where it went in the inbox and what happened on
    # arrival; GET /api/batch-status/{id} follows the documents from there. And what a folder watch
    # (pipeline.run --watch, pipeline/sync.py) saw at its last cycle, per watched root and path, so the
    # next cycle (or a restarted watch) processes only what changed.
    5: """
    CREATE TABLE IF NOT EXISTS uploads (
        batch_id    text NOT NULL,
        idx         integer NOT NULL,
        filename    text NOT NULL,
        document_id text,
        path        text,
        size        bigint,
        arrival     text NOT NULL,      -- 'stored' | 'duplicate' | 'refused'
        error       text,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (batch_id, idx)
    );
    CREATE INDEX IF NOT EXISTS uploads_document_idx ON uploads (document_id);
    CREATE TABLE IF NOT EXISTS watched_files (
        root     text NOT NULL,
        path     text NOT NULL,
        size     bigint NOT NULL,
        mtime    double precision NOT NULL,
        run_id   text,
        seen_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (root, path)
    );
    """,
    # Members of containers (issue 16): an archive member or an email attachment is its own document,
    # at a path like `mail.eml!/invoice.pdf`. Per path (inputs) the container it came out of and its
    # name inside it; per document the same for its primary path, so a page can link both ways.
    6: """
    ALTER TABLE inputs ADD COLUMN IF NOT EXISTS parent_id text;
    ALTER TABLE inputs ADD COLUMN IF NOT EXISTS member_name text;
    CREATE INDEX IF NOT EXISTS inputs_parent_idx ON inputs (parent_id);
    ALTER TABLE documents ADD COLUMN IF NOT EXISTS parent_id text;
    ALTER TABLE documents ADD COLUMN IF NOT EXISTS member_name text;
    """,
    # Reruns don't pay twice (issue 19): the version of the pipeline's conversion that produced a
    # document's outcome, so that content which failed for a deterministic reason (corrupt,
    # encrypted, too many pages, unsupported) is not converted again by the same version.
    7: """
    ALTER TABLE documents ADD COLUMN IF NOT EXISTS pipeline_version text;
    """,
    # A running run's process says it is alive (pipeline.progress, every few seconds): a run whose
    # process is gone without recording an outcome is told apart from one still running.
    8: """
    ALTER TABLE runs ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz;
    """,
    # When the first worker of a run began work (pipeline.startup: a portable/remote run whose workers
    # never start is stopped with a clear reason instead of waiting for a gRPC deadline).
    9: """
    ALTER TABLE runs ADD COLUMN IF NOT EXISTS work_started_at timestamptz;
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
        reason = " ".join(str(exc).split())  # libpq's messages span lines
        raise StoreError(f"cannot connect to PostgreSQL at {mask_dsn(dsn)}: {reason}") from exc


_local = threading.local()


@contextmanager
def session(dsn: str):
    """A read connection returning rows as dicts, kept open per thread and DSN.

    Queries from status, search and the HTTP API reuse it: opening a connection (and looking up the
    vector type) costs more than a typical search. A broken connection is dropped and the next call
    opens a new one.
    """
    cache = _local.__dict__.setdefault("connections", {})
    conn = cache.get(dsn)
    if conn is None or conn.closed or conn.broken:
        conn = cache[dsn] = connect(dsn, row_factory=dict_row, autocommit=True)
        register_vector(conn)
    try:
        yield conn
    except psycopg.OperationalError:
        conn.close()
        cache.pop(dsn, None)
        raise


def close_session(dsn: str) -> None:
    """Close this thread's cached read connection, for a long-running command that read the store once
    at start: a connection left idle through a database restart fails at its next use."""
    conn = _local.__dict__.get("connections", {}).pop(dsn, None)
    if conn is not None:
        conn.close()


def migrate(dsn: str, embedding_dim: int = EMBEDDING_DIM) -> int:
    """Create or upgrade the schema, with chunk vectors of the embedder's dimension; returns the
    schema version now in place."""
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
            _follow_embedding_dim(conn, embedding_dim)
            return SCHEMA_VERSION
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('docpipe-migrate'))")


HNSW_MAX_DIM = 2000  # pgvector's HNSW index takes `vector` columns of at most 2,000 dimensions


def embedding_dim(conn: psycopg.Connection) -> int | None:
    """Dimension of chunks.embedding (pgvector keeps it as the column's type modifier)."""
    row = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass "
                       "AND attname = 'embedding'").fetchone()
    return row[0] if row and row[0] > 0 else None


def _follow_embedding_dim(conn: psycopg.Connection, dim: int) -> None:
    """Give chunks.embedding the embedder's dimension while the table is empty; refuse afterwards,
    since vectors of two models in one column would make similarity search meaningless."""
    current = embedding_dim(conn)
    if current == dim:
        return
    if not 0 < dim <= HNSW_MAX_DIM:
        raise StoreError(f"the embedder makes {dim}-dimensional vectors; the chunks' vector index (pgvector "
                         f"HNSW) takes at most {HNSW_MAX_DIM}: choose an embedding model with fewer dimensions")
    if conn.execute("SELECT EXISTS (SELECT 1 FROM chunks)").fetchone()[0]:
        raise StoreError(f"the store holds {current}-dimensional embeddings but the embedder makes {dim}-dimensional "
                         "ones: keep the embedder (and model) that filled this store, or use a new store "
                         "(another --data-dir or --pg-dsn) for the new embedder")
    with conn.transaction():
        conn.execute(f"ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({int(dim)})")


def schema_version(dsn: str) -> int:
    with connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
        if not exists:
            return 0
        return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def drop_vector_index(dsn: str) -> None:
    """For bulk loads: inserting into an HNSW index costs far more than the insert itself, and
    building the index once over all rows afterwards is much cheaper (pgvector's own advice)."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_idx")


def create_vector_index(dsn: str) -> float:
    """(Re)build the chunks' HNSW index if it is missing; returns the seconds it took."""
    import time

    started = time.monotonic()
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(VECTOR_INDEX)
    return time.monotonic() - started


# -- runs ---------------------------------------------------------------------------------------

def start_run(dsn: str, run_id: str, input_spec: str, options: dict) -> None:
    with connect(dsn) as conn:
        conn.execute(
            "INSERT INTO runs (id, input, options, status) VALUES (%s, %s, %s, 'running')",
            (run_id, input_spec, json.dumps(options, default=str)))


def record_paths_total(dsn: str, run_id: str, paths_total: int) -> None:
    with connect(dsn) as conn:
        conn.execute("UPDATE runs SET paths_total = %s WHERE id = %s", (paths_total, run_id))


def run_counts(dsn: str, run_id: str) -> dict:
    """Outcome counts of one run, from the inputs it recorded."""
    with session(dsn) as conn:
        rows = conn.execute(
            """
            SELECT i.status, i.duplicate_of IS NOT NULL AS duplicate, d.error_stage, d.category,
                   d.run_id IS DISTINCT FROM i.run_id AS before, count(*) AS n
            FROM inputs i JOIN documents d ON d.id = i.document_id
            WHERE i.run_id = %s
            GROUP BY 1, 2, 3, 4, 5
            """, (run_id,)).fetchall()
    # failed_before: of the failed, those this run did not convert again (a deterministic failure of
    # an earlier run, unchanged content, same pipeline version: the document row is the earlier one).
    counts = {"paths": 0, "documents": 0, "completed": 0, "failed": 0, "failed_before": 0, "skipped_unchanged": 0,
              "duplicates": 0, "failed_by_stage": {}, "by_category": {}, "index_pending": 0}
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
            counts["failed_before"] += n if r["before"] else 0
            stage = r["error_stage"] or "unknown"
            counts["failed_by_stage"][stage] = counts["failed_by_stage"].get(stage, 0) + n
        elif r["status"] == "skipped":
            counts["skipped_unchanged"] += n
        elif r["status"] == "index_pending":  # in PostgreSQL, waiting for OpenSearch
            counts["index_pending"] += n
    return counts


def mark_work_started(dsn: str, run_id: str) -> None:
    """Called by the first steps on a worker: the run's workers are up (pipeline.startup waits for it)."""
    with connect(dsn) as conn:
        conn.execute("UPDATE runs SET work_started_at = coalesce(work_started_at, now()) WHERE id = %s "
                     "AND work_started_at IS NULL", (run_id,))


def work_started(dsn: str, run_id: str) -> bool:
    with connect(dsn) as conn:
        row = conn.execute("SELECT work_started_at IS NOT NULL FROM runs WHERE id = %s", (run_id,)).fetchone()
    return bool(row and row[0])


def finish_run(dsn: str, run_id: str, status: str, counts: dict) -> None:
    with connect(dsn) as conn:
        conn.execute("UPDATE runs SET status = %s, finished_at = now(), counts = %s WHERE id = %s",
                     (status, json.dumps(counts), run_id))


# -- status -------------------------------------------------------------------------------------

# A running run's process refreshes runs.heartbeat_at every few seconds (pipeline.progress): one
# silent for this long has ended without recording its outcome (killed, or the database was
# unreachable when it ended), and is shown as "gone" rather than "running" forever.
HEARTBEAT_STALE_SECONDS = 120


def heartbeat(conn, run_id: str) -> None:
    conn.execute("UPDATE runs SET heartbeat_at = now() WHERE id = %s AND status = 'running'", (run_id,))


def _with_liveness(run: dict) -> dict:
    """A 'running' run whose process has not been heard of for HEARTBEAT_STALE_SECONDS becomes
    'gone', with `last_seen_at`; the stored status is left as it is (the run may yet finish)."""
    if run.get("status") == "running":
        last = run.get("heartbeat_at") or run.get("started_at")
        if last is not None and (dt.datetime.now(dt.timezone.utc) - last).total_seconds() > HEARTBEAT_STALE_SECONDS:
            run["status"], run["last_seen_at"] = "gone", last
    return run


def list_runs(dsn: str, limit: int = 20) -> list[dict]:
    """Recent runs with live counts (a running run's counts come from what it has written so far).
    A run whose process is gone has status 'gone' (see HEARTBEAT_STALE_SECONDS)."""
    with session(dsn) as conn:
        rows = conn.execute(
            """
            SELECT r.id, r.input, r.status, r.started_at, r.finished_at, r.paths_total, r.heartbeat_at,
                   count(i.path) AS paths_done,
                   count(*) FILTER (WHERE i.status = 'completed' AND i.duplicate_of IS NULL) AS completed,
                   count(*) FILTER (WHERE i.status = 'failed' AND i.duplicate_of IS NULL) AS failed,
                   count(*) FILTER (WHERE i.status = 'skipped' AND i.duplicate_of IS NULL) AS skipped
            FROM runs r LEFT JOIN inputs i ON i.run_id = r.id
            GROUP BY r.id ORDER BY r.started_at DESC LIMIT %s
            """, (limit,)).fetchall()
    return [_with_liveness(r) for r in rows]


def run_status(dsn: str, run_id: str) -> dict | None:
    """One run: totals by status, progress, throughput, failures grouped by stage and reason."""
    with session(dsn) as conn:
        run = conn.execute("SELECT * FROM runs WHERE id = %s", (run_id,)).fetchone()
        if run is None:
            return None
        run = _with_liveness(run)
        totals = conn.execute(
            """
            SELECT count(*) AS paths_done,
                   count(*) FILTER (WHERE i.duplicate_of IS NOT NULL) AS duplicates,
                   count(*) FILTER (WHERE i.status = 'completed' AND i.duplicate_of IS NULL) AS completed,
                   count(*) FILTER (WHERE i.status = 'failed' AND i.duplicate_of IS NULL) AS failed,
                   count(*) FILTER (WHERE i.status = 'skipped' AND i.duplicate_of IS NULL) AS skipped,
                   count(*) FILTER (WHERE i.status = 'index_pending' AND i.duplicate_of IS NULL) AS index_pending,
                   min(i.updated_at) AS first_at, max(i.updated_at) AS last_at
            FROM inputs i WHERE i.run_id = %s
            """, (run_id,)).fetchone()
        # Of the failed, those not converted again (a deterministic failure of an earlier run:
        # the document row is still that run's; transforms.failures).
        totals["failed_before"] = conn.execute(
            """
            SELECT count(*) AS n FROM inputs i JOIN documents d ON d.id = i.document_id
            WHERE i.run_id = %s AND i.status = 'failed' AND i.duplicate_of IS NULL
              AND d.run_id IS DISTINCT FROM i.run_id
            """, (run_id,)).fetchone()["n"]
        failures = conn.execute(
            """
            SELECT d.error_stage AS stage, d.error_message AS reason, count(*) AS documents,
                   (array_agg(i.path ORDER BY i.path))[1:3] AS examples
            FROM inputs i JOIN documents d ON d.id = i.document_id
            WHERE i.run_id = %s AND i.duplicate_of IS NULL
              AND (i.status = 'failed' OR (i.status = 'index_pending' AND d.error_stage IS NOT NULL))
            GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 50
            """, (run_id,)).fetchall()
        categories = conn.execute(
            """
            SELECT coalesce(d.category, 'other') AS category, count(*) AS documents
            FROM inputs i JOIN documents d ON d.id = i.document_id
            WHERE i.run_id = %s AND i.status = 'completed' AND i.duplicate_of IS NULL
            GROUP BY 1 ORDER BY 2 DESC
            """, (run_id,)).fetchall()
    done = totals["paths_done"]
    total = run["paths_total"]
    end = run["finished_at"] or totals["last_at"]
    elapsed = (end - run["started_at"]).total_seconds() if end else 0.0
    rate = (done - totals["duplicates"]) / elapsed if elapsed > 0 else None
    progress = round(100.0 * done / total, 1) if total else (100.0 if run["status"] != "running" else None)
    remaining = max(total - done, 0) if total else None
    return {
        "run": run, **totals, "progress_percent": progress, "elapsed_seconds": round(elapsed, 1),
        "documents_per_second": round(rate, 3) if rate else None,
        "eta_seconds": round(remaining / rate) if rate and remaining is not None and run["status"] == "running" else None,
        "failures": failures, "by_category": {r["category"]: r["documents"] for r in categories},
    }


def stage_stats(dsn: str, run_ids: list[str]) -> dict[str, list[dict]]:
    """{run id: [{stage, documents_ok, documents_failed, ms_count, ms_sum, ms_max}, ...]} for the
    given runs, from run_stage_stats (live: the writer adds to it with every batch). Figures are
    "attempted": a batch the runner retried after it was committed counts twice."""
    if not run_ids:
        return {}
    with session(dsn) as conn:
        try:
            rows = conn.execute(
                """SELECT run_id, stage, documents_ok, documents_failed, ms_count, ms_sum, ms_max
                   FROM run_stage_stats WHERE run_id = ANY(%s) ORDER BY run_id, stage""",
                (list(run_ids),)).fetchall()
        except psycopg.errors.UndefinedTable:
            # A v2 store that no run of this version has migrated yet (only pipeline.run migrates):
            # status and /metrics still answer, without live stage figures.
            return {}
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r.pop("run_id"), []).append(r)
    return out


def document_status(dsn: str, id_or_path: str) -> dict | None:
    """Everything about one document, by id, id prefix (8+ characters) or any path it was seen under."""
    if "\x00" in id_or_path:  # no id or stored path has one (and psycopg refuses NUL in text)
        return None
    with session(dsn) as conn:
        doc = conn.execute(
            """
            SELECT d.id, d.paths, d.filename, d.size, d.mime, d.pages, d.status, d.category, d.confidence,
                   d.metadata, d.language, d.converter, d.error_stage, d.error_message, d.attempts,
                   d.run_id, d.created_at, d.updated_at, d.processed_at, length(d.text) AS text_chars,
                   left(d.text, 500) AS text_start,
                   (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks
            FROM documents d
            WHERE d.id = %(q)s OR (length(%(q)s) >= 8 AND d.id LIKE %(prefix)s)
               OR d.id = (SELECT document_id FROM inputs WHERE path = %(q)s)
            ORDER BY (d.id = %(q)s) DESC LIMIT 1
            """, {"q": id_or_path, "prefix": id_or_path.replace("%", "").replace("_", r"\_") + "%"}).fetchone()
        if doc is None:
            return None
        doc["inputs"] = conn.execute(
            "SELECT path, run_id, status, duplicate_of, updated_at FROM inputs WHERE document_id = %s "
            "ORDER BY path", (doc["id"],)).fetchall()
        # What users corrected: [{field, value, previous, corrected_by, corrected_at}] (see below).
        doc["corrections"] = _corrections_of(conn, doc["id"])
        # Containers (issue 16): the emails/archives this document came out of, and its own members
        # (attachments, archive members), both ways.
        doc["parents"] = conn.execute(
            "SELECT DISTINCT i.parent_id, i.member_name, p.filename, p.paths[1] AS path FROM inputs i "
            "LEFT JOIN documents p ON p.id = i.parent_id WHERE i.document_id = %s AND i.parent_id IS NOT NULL "
            "ORDER BY i.member_name", (doc["id"],)).fetchall()
        doc["children"] = conn.execute(
            "SELECT i.path, i.member_name, i.document_id, i.status, c.category, c.error_message FROM inputs i "
            "LEFT JOIN documents c ON c.id = i.document_id WHERE i.parent_id = %s ORDER BY i.path LIMIT 1000",
            (doc["id"],)).fetchall()
    return doc


# -- search -------------------------------------------------------------------------------------

RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.): damps the weight of top ranks


def _filters(category, date_from, date_to, fields, status) -> tuple[str, dict]:
    """SQL conditions on documents `d` and their parameters; never string-formatted user input."""
    where, params = ["d.status = %(status)s"], {"status": status}
    if category:
        where.append("d.category = %(category)s")
        params["category"] = category
    if date_from:
        where.append("d.doc_date >= %(date_from)s")
        params["date_from"] = date_from
    if date_to:
        where.append("d.doc_date <= %(date_to)s")
        params["date_to"] = date_to
    for i, (key, value) in enumerate(sorted((fields or {}).items())):
        where.append(f"d.metadata->'fields'->>%(fk{i})s = %(fv{i})s")
        params[f"fk{i}"], params[f"fv{i}"] = key, value
    return " AND ".join(where), params


def search(dsn: str, query: str, query_vector=None, *, category: str | None = None,
           date_from: str | None = None, date_to: str | None = None, fields: dict | None = None,
           limit: int = 10, offset: int = 0, candidates: int = 100) -> list[dict]:
    """Hybrid search: full-text (ts_rank_cd) and vector (chunk embeddings) fused by reciprocal rank.

    Filters are part of both queries, so they are exact and pagination is stable (ties broken by
    id). An empty query lists the documents that pass the filters, newest first.
    """
    where, params = _filters(category, date_from, date_to, fields, "completed")
    params.update({"q": query, "limit": limit, "offset": offset, "k": max(candidates, limit + offset),
                   "rrf": RRF_K})
    columns = """d.id, d.filename, d.paths[1] AS path, d.category, d.confidence, d.doc_date,
                 d.metadata->>'title' AS title, d.metadata->'fields' AS fields"""
    with session(dsn) as conn:
        if not query.strip():
            return conn.execute(
                f"""SELECT {columns}, NULL::float AS score, left(d.text, 300) AS snippet
                    FROM documents d WHERE {where}
                    ORDER BY d.processed_at DESC, d.id LIMIT %(limit)s OFFSET %(offset)s""", params).fetchall()
        params["v"] = query_vector
        # Filtered HNSW scans keep going until enough rows pass the filter (pgvector >= 0.8).
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        return conn.execute(
            f"""
            WITH fts AS (
                SELECT d.id, row_number() OVER (ORDER BY ts_rank_cd(d.tsv, q) DESC, d.id) AS rank
                FROM documents d, websearch_to_tsquery('english', %(q)s) q
                WHERE d.tsv @@ q AND {where}
                ORDER BY ts_rank_cd(d.tsv, q) DESC, d.id LIMIT %(k)s
            ), nearest AS (
                SELECT c.document_id, c.embedding <=> %(v)s AS distance
                FROM chunks c JOIN documents d ON d.id = c.document_id
                WHERE {where}
                ORDER BY c.embedding <=> %(v)s LIMIT %(k)s * 4
            ), vec AS (
                SELECT document_id AS id, row_number() OVER (ORDER BY min(distance), document_id) AS rank
                FROM nearest GROUP BY document_id ORDER BY min(distance), document_id LIMIT %(k)s
            ), fused AS (
                SELECT id, sum(1.0 / (%(rrf)s + rank)) AS score
                FROM (SELECT * FROM fts UNION ALL SELECT * FROM vec) ranked GROUP BY id
            )
            SELECT {columns}, f.score,
                   (SELECT c.text FROM chunks c WHERE c.document_id = d.id
                    ORDER BY c.embedding <=> %(v)s LIMIT 1) AS snippet
            FROM fused f JOIN documents d ON d.id = f.id
            ORDER BY f.score DESC, d.id LIMIT %(limit)s OFFSET %(offset)s
            """, params).fetchall()


def paths_without_outcome(dsn: str, run_id: str, paths) -> list[str]:
    """Of `paths` (an iterable, consumed in batches), those the run recorded no outcome for."""
    from itertools import islice

    missing: list[str] = []
    iterator = iter(paths)
    with session(dsn) as conn:
        while batch := list(islice(iterator, 5000)):
            seen = {r["path"] for r in conn.execute(
                "SELECT path FROM inputs WHERE run_id = %s AND path = ANY(%s)", (run_id, batch)).fetchall()}
            missing += [p for p in batch if p not in seen]
    return missing


# What the runs table records as the input of a --retry-failed run.
RETRY_FAILED_INPUT = "failed paths of earlier runs (--retry-failed)"


def failed_paths(dsn: str) -> list[str]:
    """Every input path whose latest outcome is `failed` (what --retry-failed processes again)."""
    with session(dsn) as conn:
        rows = conn.execute("SELECT path FROM inputs WHERE status = 'failed' ORDER BY path").fetchall()
    return [path_from_text(r["path"]) for r in rows]


def path_from_text(stored: str) -> str:
    """The OS path behind a stored path. Non-UTF-8 file names are stored with their odd bytes as
    `\\xNN` (the writer's backslashreplace); they come back as surrogate escapes, as the OS gave them,
    when such a file exists (a real name may contain a literal backslash too)."""
    if "\\x" not in stored:
        return stored
    original = re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(0xDC00 + int(m.group(1), 16)), stored)
    return original if os.path.lexists(original) else stored


def stored_embedder(dsn: str) -> dict | None:
    """The embedder that made the store's vectors ({"embedder", "model", "dimension", "hosts"}), if any run recorded it."""
    with session(dsn) as conn:
        row = conn.execute("SELECT value FROM settings WHERE key = 'embedder'").fetchone()
    return row["value"] if row else None


def record_embedder(dsn: str, identity: dict) -> None:
    """Record the run's embedder; refuse one that differs (backend or model) from the embedder of the
    vectors already stored: two models' vectors in one index make similarity meaningless, even at
    the same dimension."""
    with connect(dsn) as conn, conn.transaction():
        row = conn.execute("SELECT value FROM settings WHERE key = 'embedder' FOR UPDATE").fetchone()
        previous = row[0] if row else None
        same = previous and (previous.get("embedder"), previous.get("model")) == \
            (identity.get("embedder"), identity.get("model"))
        if previous and not same and conn.execute("SELECT EXISTS (SELECT 1 FROM chunks)").fetchone()[0]:
            raise StoreError(
                f"the store's vectors were made by {previous.get('embedder')} {previous.get('model')!r}; this run "
                f"embeds with {identity.get('embedder')} {identity.get('model')!r}: keep the embedder that filled "
                "this store, or use a new store (another --data-dir or --pg-dsn) for the new one")
        conn.execute("INSERT INTO settings (key, value) VALUES ('embedder', %s) ON CONFLICT (key) "
                     "DO UPDATE SET value = EXCLUDED.value, updated_at = now()", (json.dumps(identity),))


# -- corrections --------------------------------------------------------------------------------
#
# A correction is one row per (document, field): `field` is 'category' today, 'fields.<name>' for an
# extracted field later (add its writer beside correct_category, and its rule beside the category's in
# transforms/write_postgres.py). `value` and `previous` are JSON, so any field's type fits.

CATEGORY_FIELD = "category"
MAX_CORRECTED_BY = 200


class DocumentNotFound(LookupError):
    """No document has this id (the HTTP API answers 404)."""


class InvalidCorrection(ValueError):
    """The correction cannot be stored as given (the HTTP API answers 422)."""


def _correction_text(value, what: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCorrection(f"{what} must be a non-empty string")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL; psycopg would refuse it with a DataError
        raise InvalidCorrection(f"{what} must not contain NUL characters")
    value = value.strip()
    if len(value) > max_length:
        raise InvalidCorrection(f"{what} must be at most {max_length} characters")
    return value


def _lock_document(conn, doc_id: str, column: str) -> dict:
    """The document's row (id and `column`), locked for the correction's transaction; DocumentNotFound
    for an unknown id (exact ids only: a write never guesses from a prefix)."""
    if not isinstance(doc_id, str) or "\x00" in doc_id:
        raise DocumentNotFound(f"no document {doc_id!r}")
    doc = conn.execute(f"SELECT id, {column} FROM documents WHERE id = %s FOR UPDATE", (doc_id,)).fetchone()
    if doc is None:
        raise DocumentNotFound(f"no document {doc_id!r}")
    return doc


def _record_corrections(conn, doc_id: str, values: dict, corrected_by: str) -> None:
    """Upsert corrections {field: (value, previous)}; `previous` (what the pipeline had given) is
    kept from the first correction of a field."""
    try:
        for field, (value, previous) in values.items():
            conn.execute(
                """INSERT INTO corrections (document_id, field, value, previous, corrected_by)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (document_id, field) DO UPDATE SET
                       value = EXCLUDED.value, corrected_by = EXCLUDED.corrected_by, corrected_at = now()""",
                (doc_id, field, json.dumps(value), json.dumps(previous) if previous is not None else None,
                 corrected_by))
    except psycopg.errors.UndefinedTable as exc:
        raise StoreError("the store's schema predates corrections (version 4): run `python -m "
                         "pipeline.run` once with this version to upgrade it") from exc


def _corrections_of(conn, doc_id: str) -> list[dict]:
    try:
        return conn.execute(
            "SELECT field, value, previous, corrected_by, corrected_at FROM corrections "
            "WHERE document_id = %s ORDER BY field", (doc_id,)).fetchall()
    except psycopg.errors.UndefinedTable:  # a store older than v4, not yet migrated by a run
        return []


def correct_category(dsn: str, doc_id: str, category: str, corrected_by: str) -> dict:
    """Set a document's category by hand, in one transaction: the correction is recorded (who, when,
    and the category the pipeline had given), documents.category becomes `category` with confidence
    1.0. Later writes of the document keep it (transforms.write_postgres). Returns the document's
    summary {id, category, confidence, status, updated_at, corrections}.

    Raises DocumentNotFound for an unknown id (exact ids only: a write never guesses from a prefix),
    InvalidCorrection for an empty value or one with NUL characters. Which categories are valid is
    the caller's business (the configured set plus 'other')."""
    category = _correction_text(category, "category", 100)
    corrected_by = _correction_text(corrected_by, "corrected_by", MAX_CORRECTED_BY)
    with connect(dsn, row_factory=dict_row) as conn, conn.transaction():
        doc = _lock_document(conn, doc_id, "category")
        _record_corrections(conn, doc_id, {CATEGORY_FIELD: (category, doc["category"])}, corrected_by)
        row = conn.execute(
            """UPDATE documents SET category = %s, confidence = 1.0, updated_at = now() WHERE id = %s
               RETURNING id, category, confidence, status, updated_at""", (category, doc_id)).fetchone()
        row["corrections"] = _corrections_of(conn, doc_id)
    return row


FIELD_PREFIX = "fields."          # corrections of extracted fields are stored as 'fields.<name>'
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_FIELD_VALUE = 1000


def _field_value(name: str, value):
    """A corrected field's value: null (the field has no value), a string, a number, a boolean, or a
    list of strings (parties, authors); strings are trimmed and must not hold NUL."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _correction_text(value, f"fields.{name}", MAX_FIELD_VALUE)
    if isinstance(value, list) and len(value) <= 100:
        return [_correction_text(v, f"fields.{name}[]", MAX_FIELD_VALUE) for v in value]
    raise InvalidCorrection(f"fields.{name} must be null, a string, a number, a boolean or a list of strings")


def correct_fields(dsn: str, doc_id: str, fields: dict, corrected_by: str) -> dict:
    """Set extracted fields by hand (metadata.fields.<name>), in one transaction: each correction is
    recorded (who, when, the value the pipeline had given), the document's metadata gets the value
    with field_sources.<name> = {source: correction, confidence: 1.0}, and later writes keep it
    (transforms.write_postgres). Returns {id, category, confidence, status, updated_at, fields,
    corrections}. Raises DocumentNotFound, InvalidCorrection (a bad name or value)."""
    corrected_by = _correction_text(corrected_by, "corrected_by", MAX_CORRECTED_BY)
    if not isinstance(fields, dict) or not fields:
        raise InvalidCorrection("fields must be a non-empty object of field names and values")
    clean = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not _FIELD_NAME.match(name):
            raise InvalidCorrection(f"field name {name!r} is not a lower-case identifier (a-z, 0-9, _)")
        clean[name] = _field_value(name, value)
    with connect(dsn, row_factory=dict_row) as conn, conn.transaction():
        had = (_lock_document(conn, doc_id, "metadata")["metadata"] or {}).get("fields") or {}
        _record_corrections(conn, doc_id, {FIELD_PREFIX + name: (value, had.get(name)) for name, value in clean.items()},
                            corrected_by)
        corrected_source = {"source": "correction", "confidence": 1.0}
        row = conn.execute(
            """UPDATE documents SET metadata = jsonb_set(jsonb_set(coalesce(metadata, '{}'::jsonb),
                   '{fields}', coalesce(metadata->'fields', '{}'::jsonb) || %(values)s::jsonb),
                   '{field_sources}', coalesce(metadata->'field_sources', '{}'::jsonb) || %(sources)s::jsonb),
                   updated_at = now()
               WHERE id = %(id)s
               RETURNING id, category, confidence, status, updated_at, metadata->'fields' AS fields""",
            {"values": json.dumps(clean), "sources": json.dumps({n: corrected_source for n in clean}),
             "id": doc_id}).fetchone()
        row["corrections"] = _corrections_of(conn, doc_id)
    return row


def correction_counts(dsn: str) -> dict[str, int]:
    """Corrections by field, e.g. {"category": 3} ({} when there are none)."""
    with session(dsn) as conn:
        try:
            rows = conn.execute("SELECT field, count(*) AS n FROM corrections GROUP BY 1 ORDER BY 1").fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
    return {r["field"]: r["n"] for r in rows}


def corrected_categories(dsn: str) -> list[dict]:
    """Every corrected category with its document's text, oldest correction first: labelled examples
    for the classifier of later runs. Rows {document_id, category, text, corrected_by, corrected_at};
    corrections of documents no longer in the store, or without text, are left out."""
    with session(dsn) as conn:
        try:
            return conn.execute(
                """SELECT c.document_id, c.value #>> '{}' AS category, d.text, c.corrected_by, c.corrected_at
                   FROM corrections c JOIN documents d ON d.id = c.document_id
                   WHERE c.field = %s AND coalesce(d.text, '') <> ''
                   ORDER BY c.corrected_at, c.document_id""", (CATEGORY_FIELD,)).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def corrected_ids(dsn: str, doc_ids: list[str], field: str = CATEGORY_FIELD) -> set[str]:
    """Which of `doc_ids` have a correction of `field` (the search page marks them)."""
    if not doc_ids:
        return set()
    with session(dsn) as conn:
        try:
            rows = conn.execute("SELECT document_id FROM corrections WHERE field = %s AND document_id = ANY(%s)",
                                (field, list(doc_ids))).fetchall()
        except psycopg.errors.UndefinedTable:
            return set()
    return {r["document_id"] for r in rows}
