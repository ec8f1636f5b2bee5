"""PostgreSQL sink: batched, idempotent upserts of documents, chunks and input outcomes.

Every write is keyed by a deterministic id (content hash; path for inputs), so a rerun or a retried
bundle overwrites instead of duplicating. A batch is one transaction. In a batch of 32+ documents,
documents and input outcomes are streamed with binary COPY into per-connection TEMP staging tables
and upserted from there with one INSERT ... SELECT ... ON CONFLICT each; smaller batches upsert
row by row. Then the old chunks of re-processed documents are deleted and the new ones streamed
with binary COPY.

Why staging: one upsert statement per row costs the server a parse/bind/execute per document; COPY
plus one set-based statement does not (200-document batches ~25 % faster, measured). Most of what
remains is the server computing the documents' generated `tsv` column (to_tsvector, ~45 % of a
batch), which no client-side change can avoid; see docs/benchmarks.md.
"""
from __future__ import annotations

import json
import logging
import time

import psycopg
from pgvector.psycopg import register_vector

from transforms.failures import is_deterministic, pipeline_version
from transforms.records import COMPLETED, INDEX_PENDING, PENDING, SKIPPED, STAGE_INDEX, STAGE_WRITE, Document

log = logging.getLogger(__name__)

# The document upsert, shared by the row-by-row statement and the staged one below: both are
# `_INSERT_DOCUMENTS FROM <source> v _CORRECTED _ON_DOCUMENT_CONFLICT`, the source being one row of
# bound parameters or the staging table (same column names and types), so they cannot drift apart. A conflict (same
# content seen again) merges the paths, overwrites the results and counts the attempt.
#
# Corrections win over what a run computes: a document whose category a user corrected (table
# corrections, kept by document id) gets the corrected category with confidence 1.0 in the row it
# proposes, whether that row is inserted (a document deleted and written again) or, as EXCLUDED,
# overwrites the existing one in ON CONFLICT. Same statement, same transaction as the write.
# A corrected extracted field (corrections.field 'fields.<name>') replaces metadata.fields.<name> the same
# way, and metadata.field_sources.<name> says it came from a correction.
_DOCUMENT_COLUMNS = ["id", "paths", "filename", "size", "mime", "pages", "status", "category", "confidence",
                     "metadata", "text", "language", "converter", "error_stage", "error_message", "run_id",
                     "pipeline_version"]
STAGE_DOCUMENT_TYPES = ["text", "text[]", "text", "int8", "text", "int4", "text", "text", "float4", "text",
                        "text", "text", "text", "text", "text", "text", "text"]
_INSERT_DOCUMENTS = f"""
INSERT INTO documents ({", ".join(_DOCUMENT_COLUMNS)}, processed_at)
SELECT v.id, v.paths, v.filename, v.size, v.mime, v.pages, v.status,
       coalesce(fix.category, v.category),
       CASE WHEN fix.category IS NULL THEN v.confidence ELSE 1.0 END,
       CASE WHEN fields_fix.fields IS NULL OR v.metadata IS NULL THEN v.metadata::jsonb
            ELSE jsonb_set(jsonb_set(v.metadata::jsonb,
                     '{{fields}}', coalesce(v.metadata::jsonb->'fields', '{{}}') || fields_fix.fields),
                     '{{field_sources}}', coalesce(v.metadata::jsonb->'field_sources', '{{}}') || fields_fix.sources)
       END,
       v.text, v.language, v.converter, v.error_stage, v.error_message, v.run_id, v.pipeline_version, now()
"""
_CORRECTED = """
LEFT JOIN LATERAL (SELECT c.value #>> '{}' AS category FROM corrections c
                   WHERE c.document_id = v.id AND c.field = 'category') fix ON true
LEFT JOIN LATERAL (SELECT jsonb_object_agg(substr(c.field, 8), c.value) AS fields,
                          jsonb_object_agg(substr(c.field, 8), '{"source": "correction", "confidence": 1.0}'::jsonb)
                              AS sources
                   FROM corrections c WHERE c.document_id = v.id AND c.field LIKE 'fields.%%') fields_fix ON true
"""
_ON_DOCUMENT_CONFLICT = """
ON CONFLICT (id) DO UPDATE SET
    paths = ARRAY(SELECT DISTINCT p FROM unnest(documents.paths || EXCLUDED.paths) AS p ORDER BY p),
    filename = EXCLUDED.filename, size = EXCLUDED.size, mime = EXCLUDED.mime,
    pages = EXCLUDED.pages, status = EXCLUDED.status, category = EXCLUDED.category,
    confidence = EXCLUDED.confidence, metadata = EXCLUDED.metadata, text = EXCLUDED.text,
    language = EXCLUDED.language, converter = EXCLUDED.converter,
    error_stage = EXCLUDED.error_stage, error_message = EXCLUDED.error_message,
    run_id = EXCLUDED.run_id, pipeline_version = EXCLUDED.pipeline_version, attempts = documents.attempts + 1,
    updated_at = now(), processed_at = now()
"""
# One row of bound parameters, typed like the staging table's columns.
_ROW_SOURCE = "FROM (SELECT " + ", ".join(
    f"%s::{t} AS {c}" for c, t in zip(_DOCUMENT_COLUMNS, STAGE_DOCUMENT_TYPES)) + ") v"
UPSERT_DOCUMENT = _INSERT_DOCUMENTS + _ROW_SOURCE + _CORRECTED + _ON_DOCUMENT_CONFLICT

# A document skipped as unchanged keeps its results; only the paths it was seen under grow.
ADD_PATHS = """
UPDATE documents SET
    paths = ARRAY(SELECT DISTINCT p FROM unnest(paths || %s::text[]) AS p ORDER BY p),
    updated_at = now()
WHERE id = %s
"""

# The same upserts, set-based, from the staging tables below. A statement may touch a row only
# once, so a batch repeating a document id or an input path takes the row-by-row statements.
STAGE_TABLES = f"""
CREATE TEMP TABLE IF NOT EXISTS docpipe_stage_documents (
    {", ".join(f"{c} {t}" for c, t in zip(_DOCUMENT_COLUMNS, STAGE_DOCUMENT_TYPES))}
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS docpipe_stage_inputs (
    path text, document_id text, run_id text, status text, duplicate_of text
) ON COMMIT DELETE ROWS
"""

# RETURNING attempts: above 1 means the document existed, so it may have chunks to replace.
UPSERT_DOCUMENTS_STAGED = (_INSERT_DOCUMENTS + "FROM docpipe_stage_documents v" + _CORRECTED
                           + _ON_DOCUMENT_CONFLICT + "RETURNING id, attempts\n")

# The corrected categories of a batch's documents, to hand on with the batch (WriteToOpenSearch
# indexes the Documents as they leave this writer, so they must carry what PostgreSQL now holds).
CORRECTIONS_OF_BATCH = """
SELECT document_id, field, value FROM corrections
WHERE (field = 'category' OR field LIKE 'fields.%%') AND document_id = ANY(%s)
"""

_ON_INPUT_CONFLICT = """
ON CONFLICT (path) DO UPDATE SET
    document_id = EXCLUDED.document_id, run_id = EXCLUDED.run_id, status = EXCLUDED.status,
    duplicate_of = EXCLUDED.duplicate_of, updated_at = now()
"""
UPSERT_INPUTS_STAGED = ("INSERT INTO inputs (path, document_id, run_id, status, duplicate_of)\n"
                        "SELECT path, document_id, run_id, status, duplicate_of FROM docpipe_stage_inputs"
                        + _ON_INPUT_CONFLICT)
UPSERT_INPUT = ("INSERT INTO inputs (path, document_id, run_id, status, duplicate_of)\n"
                "VALUES (%s, %s, %s, %s, %s)" + _ON_INPUT_CONFLICT)


# Errors that one document's values cause (text UTF-8 cannot encode, a value JSON cannot hold, JSON or
# a value PostgreSQL rejects), as opposed to the connection's: such a batch is written again one
# document at a time.
DOCUMENT_DATA_ERRORS = (psycopg.DataError, UnicodeError, ValueError, TypeError)


# PostgreSQL text cannot hold NUL characters; some converters emit them.
def _pg_text(value: str | None) -> str | None:
    return value.replace("\x00", "") if value else value


def _path_text(path: str) -> str:
    # Non-UTF-8 file names arrive as surrogate escapes; store them readable and lossless enough.
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _distinct(keys) -> bool:
    keys = list(keys)
    return len(set(keys)) == len(keys)


class PostgresWriter:
    """One connection per worker; `write_batch` is one transaction."""

    # Retries span about 45 s (waits of 0.5, 1, 2, 4, 8, then 10 s): long enough for a database
    # restart or a fail-over, short enough that a database that is really gone fails the run.
    def __init__(self, dsn: str, run_id: str, retries: int = 8, backoff: float = 0.5,
                 index_after: bool = False):
        self.dsn = dsn
        self.run_id = run_id
        # With OpenSearch configured, a document is completed only once it is indexed there too:
        # until then it is written as index_pending (see record_indexing).
        self.index_after = index_after
        self.retries = retries
        self.backoff = backoff
        self.conn: psycopg.Connection | None = None
        self._staging_ready = False

    def _connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.dsn, connect_timeout=10)
            register_vector(self.conn)
            self._staging_ready = False  # TEMP tables live and die with their session
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _with_retries(self, action, *args):
        """Run `action(conn, ...)`; reconnect and retry on connection-level errors only."""
        for attempt in range(self.retries + 1):
            try:
                return action(self._connection(), *args)
            except psycopg.OperationalError as exc:
                self.close()
                if attempt == self.retries:
                    raise
                delay = min(10.0, self.backoff * 2 ** attempt)
                log.warning("PostgreSQL error (%s); retry %d/%d in %.1fs", str(exc).strip(),
                            attempt + 1, self.retries, delay)
                time.sleep(delay)

    def completed_ids(self, ids: list[str]) -> set[str]:
        """Which of `ids` are already completed (so this run can skip them)."""
        def query(conn, ids):
            with conn.transaction():
                rows = conn.execute("SELECT id FROM documents WHERE id = ANY(%s) AND status = %s",
                                    (ids, COMPLETED)).fetchall()
            return {r[0] for r in rows}
        return self._with_retries(query, ids) if ids else set()

    def failed_before(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        """Which of `ids` failed for a deterministic reason under this pipeline version (so this run
        need not convert them again): id -> (stage, message) as recorded."""
        def query(conn, ids):
            with conn.transaction():
                rows = conn.execute(
                    "SELECT id, error_stage, error_message FROM documents "
                    "WHERE id = ANY(%s) AND status = 'failed' AND pipeline_version = %s",
                    (ids, pipeline_version())).fetchall()
            return {r[0]: (r[1], r[2]) for r in rows if is_deterministic(r[1], r[2])}
        return self._with_retries(query, ids) if ids else {}

    def record_listing(self, paths_total: int) -> None:
        """The run's number of input paths, once listing is complete (status shows progress %).
        Added, not set: container members found by ExpandContainers are added to the same total
        (add_paths), in whatever order the two arrive."""
        self.add_paths(paths_total)

    def add_paths(self, n: int) -> None:
        """Add n paths to the run's total: container members are paths with an outcome of their own."""
        def update(conn, n):
            with conn.transaction():
                conn.execute("UPDATE runs SET paths_total = coalesce(paths_total, 0) + %s WHERE id = %s",
                             (n, self.run_id))
        self._with_retries(update, n)

    def write_batch(self, docs: list[Document]) -> None:
        for doc in docs:
            if doc.status == PENDING:  # went through every stage without failing
                doc.status = INDEX_PENDING if self.index_after else COMPLETED
        try:
            self._with_retries(self._write, docs)
        except DOCUMENT_DATA_ERRORS as exc:
            log.warning("PostgreSQL refused a batch of %d documents (%s: %s); writing them one by one",
                        len(docs), type(exc).__name__, " ".join(str(exc).split())[:300])
            self.close()  # the refused statement may have left the session mid-pipeline
            for doc in docs:
                self._write_alone(doc)

    def _write_alone(self, doc: Document) -> None:
        """Write one document; one the database refuses for its data is recorded as failed at the
        write stage, without its content, so that its paths still get their one outcome and the run
        goes on."""
        try:
            self._with_retries(self._write, [doc])
            return
        except DOCUMENT_DATA_ERRORS as exc:
            self.close()
            reason = f"PostgreSQL refused the document's data: {type(exc).__name__}: {exc}"
        log.warning("%s: %s", doc.primary_path, reason)
        doc.text, doc.metadata, doc.source_meta, doc.chunks = None, None, None, []
        doc.fail(STAGE_WRITE, reason)
        self._with_retries(self._write, [doc])

    def record_indexing(self, indexed: list[str], failed: dict[str, str], missing: list[str] = ()) -> None:
        """Outcome of indexing into OpenSearch: indexed documents (and their inputs) become completed;
        failed ones stay index_pending with the reason (stage `index`); `missing` are completed
        documents OpenSearch does not have (indexed before it was configured): back to index_pending,
        so `pipeline.reindex` picks them up."""
        def update(conn, indexed, failed, missing):
            with conn.transaction(), conn.cursor() as cur:
                if indexed:
                    cur.execute("UPDATE documents SET status = %s, error_stage = NULL, error_message = NULL, "
                                "updated_at = now() WHERE id = ANY(%s) AND status = %s",
                                (COMPLETED, indexed, INDEX_PENDING))
                    cur.execute("UPDATE inputs SET status = %s, updated_at = now() "
                                "WHERE document_id = ANY(%s) AND status = %s", (COMPLETED, indexed, INDEX_PENDING))
                rows = [(INDEX_PENDING, STAGE_INDEX, _pg_text(" ".join(reason.split())[:1000]), doc_id)
                        for doc_id, reason in failed.items()]
                rows += [(INDEX_PENDING, STAGE_INDEX, "not in OpenSearch: run python -m pipeline.reindex", doc_id)
                         for doc_id in missing]
                if rows:
                    cur.executemany("UPDATE documents SET status = %s, error_stage = %s, error_message = %s, "
                                    "updated_at = now() WHERE id = %s AND status IN ('index_pending', 'completed')",
                                    rows)
        if indexed or failed or missing:
            self._with_retries(update, list(indexed), dict(failed), list(missing))

    # Smaller batches take the row-by-row statements: staging costs a fixed ~0.8 ms per batch (two
    # more COPYs and round trips), more than it saves below ~30 documents (measured: 1 document
    # ~410 docs/s staged vs ~600 row by row; 10: ~1,320 vs ~1,450; 32 and up: staging wins).
    staged_min_batch = 32

    def _write(self, conn: psycopg.Connection, docs: list[Document]) -> None:
        # Skipped as unchanged, or failed before for a deterministic reason: the stored document
        # stays as it is (paths added); the paths' outcomes are recorded below either way.
        processed = [d for d in docs if d.status != SKIPPED and not d.failed_before]
        skipped = [d for d in docs if d.status == SKIPPED or d.failed_before]
        staged = len(docs) >= self.staged_min_batch
        if staged and not self._staging_ready:
            with conn.transaction():  # its own transaction: a failed batch must not roll it back
                conn.execute(STAGE_TABLES)
            self._staging_ready = True
        with conn.transaction(), conn.cursor() as cur:
            if processed:
                rows = [self._document_row(d) for d in processed]
                if staged and _distinct(row[0] for row in rows):
                    self._copy_rows(cur, "docpipe_stage_documents", STAGE_DOCUMENT_TYPES, rows)
                    cur.execute(UPSERT_DOCUMENTS_STAGED)
                    # A document just inserted has no chunks yet (they reference it): skip the delete.
                    replaced = [doc_id for doc_id, attempts in cur.fetchall() if attempts > 1]
                else:
                    cur.executemany(UPSERT_DOCUMENT, rows)
                    replaced = [row[0] for row in rows]
                if replaced:
                    cur.execute("DELETE FROM chunks WHERE document_id = ANY(%s)", (replaced,))
                self._apply_corrections(cur, processed)
                with cur.copy("COPY chunks (document_id, idx, text, embedding) FROM STDIN "
                              "WITH (FORMAT BINARY)") as copy:
                    copy.set_types(["text", "int4", "text", "vector"])
                    for doc in processed:
                        for chunk in doc.chunks:
                            if chunk.vector is not None:
                                copy.write_row((doc.id, chunk.index, _pg_text(chunk.text), chunk.vector))
            if skipped:
                cur.executemany(ADD_PATHS, [([_path_text(p) for p in d.paths], d.id) for d in skipped])
            inputs = [row for d in docs for row in self._input_rows(d)]
            if staged and _distinct(row[0] for row in inputs):
                self._copy_rows(cur, "docpipe_stage_inputs", ["text"] * 5, inputs)
                cur.execute(UPSERT_INPUTS_STAGED)
            else:
                cur.executemany(UPSERT_INPUT, inputs)
            self._link_members(cur, docs)
            self._add_stage_stats(cur, docs)  # last: holds the shared per-stage rows' locks only until commit

    # Per (run, stage) figures, added to in the batch's own transaction: they are in the store the
    # moment the batch is, whichever runner and worker wrote it (pipeline.metrics reads them live).
    # Rows in stage order, so two writers adding to the same rows lock them in the same order.
    UPSERT_STAGE_STATS = """
    INSERT INTO run_stage_stats AS s (run_id, stage, documents_ok, documents_failed, ms_count, ms_sum, ms_max)
    SELECT %s, stage, ok, failed, n, total, slowest
    FROM unnest(%s::text[], %s::int8[], %s::int8[], %s::int8[], %s::float8[], %s::float8[])
         AS t(stage, ok, failed, n, total, slowest)
    ORDER BY stage
    ON CONFLICT (run_id, stage) DO UPDATE SET
        documents_ok = s.documents_ok + EXCLUDED.documents_ok,
        documents_failed = s.documents_failed + EXCLUDED.documents_failed,
        ms_count = s.ms_count + EXCLUDED.ms_count, ms_sum = s.ms_sum + EXCLUDED.ms_sum,
        ms_max = GREATEST(s.ms_max, EXCLUDED.ms_max), updated_at = now()
    """

    def _add_stage_stats(self, cur: psycopg.Cursor, docs: list[Document]) -> None:
        """Add the batch's per-stage outcomes and timings (Document.stage_outcomes) to run_stage_stats,
        with one statement. Like Beam's attempted metrics these count attempts: a bundle the runner
        retries after its batch committed is counted twice (a retry inside write_batch is not: its
        transaction rolled back)."""
        stats: dict[str, list] = {}  # stage -> [ok, failed, timed, ms sum, ms max]
        for doc in docs:
            for stage, ok, ms in doc.stage_outcomes():
                entry = stats.setdefault(stage, [0, 0, 0, 0.0, 0.0])
                entry[0 if ok else 1] += 1
                if ms is not None:
                    entry[2] += 1
                    entry[3] += ms
                    entry[4] = max(entry[4], ms)
        if stats:
            stages = sorted(stats)
            cur.execute(self.UPSERT_STAGE_STATS,
                        [self.run_id, stages, *([stats[st][i] for st in stages] for i in range(5))])

    @staticmethod
    def _link_members(cur: psycopg.Cursor, docs: list[Document]) -> None:
        """Members of containers (archive members, attachments; transforms.containers): each member
        path's row in inputs, and each member document, get the parent's id and the member's name
        (two statements per batch that holds members, none otherwise)."""
        paths = [(_path_text(p), parent, p.rsplit("!/", 1)[-1]) for d in docs for p, parent in d.parents.items()]
        if not paths:
            return
        cur.execute("UPDATE inputs SET parent_id = m.parent_id, member_name = m.name "
                    "FROM unnest(%s::text[], %s::text[], %s::text[]) AS m(path, parent_id, name) "
                    "WHERE inputs.path = m.path", [list(col) for col in zip(*paths)])
        members = [(d.id, d.parent_id, d.member_name) for d in docs if d.parent_id and d.status != SKIPPED]
        if members:
            cur.execute("UPDATE documents SET parent_id = m.parent_id, member_name = m.name "
                        "FROM unnest(%s::text[], %s::text[], %s::text[]) AS m(id, parent_id, name) "
                        "WHERE documents.id = m.id", [list(col) for col in zip(*members)])

    @staticmethod
    def _apply_corrections(cur: psycopg.Cursor, docs: list[Document]) -> None:
        """Give the batch's Documents the corrected categories and fields the upsert kept, so the
        OpenSearch sink downstream indexes what PostgreSQL holds (one small query per batch)."""
        cur.execute(CORRECTIONS_OF_BATCH, ([d.id for d in docs],))
        by_id = {d.id: d for d in docs}
        for doc_id, field, value in cur.fetchall():
            doc = by_id[doc_id]
            if field == "category":
                doc.category, doc.confidence = value, 1.0
            elif doc.metadata is not None:
                name = field[len("fields."):]
                doc.metadata.setdefault("fields", {})[name] = value
                doc.metadata.setdefault("field_sources", {})[name] = {"source": "correction", "confidence": 1.0}

    @staticmethod
    def _copy_rows(cur: psycopg.Cursor, table: str, types: list[str], rows: list[tuple]) -> None:
        with cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def _document_row(self, d: Document) -> tuple:
        return (d.id, [_path_text(p) for p in d.paths], _path_text(d.filename), d.size, d.mime,
                d.pages, d.status, d.category, d.confidence,
                json.dumps(d.metadata) if d.metadata is not None else None,
                _pg_text(d.text), d.language, d.converter, d.error_stage, _pg_text(d.error_message),
                self.run_id, pipeline_version())

    def _input_rows(self, d: Document) -> list[tuple]:
        primary = _path_text(d.primary_path)
        rows = [(primary, d.id, self.run_id, d.status, None)]
        rows += [(_path_text(p), d.id, self.run_id, d.status, primary) for p in d.paths[1:]]
        return rows
