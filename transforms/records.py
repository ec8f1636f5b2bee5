"""The record that flows through the pipeline, one per distinct document content.

A record is created when a file's bytes are hashed, merged when several paths share the same
content, and then enriched stage by stage. A stage that fails marks the record failed (with the
stage and a message) instead of raising, so every record still reaches the writer and every input
path ends with exactly one recorded outcome.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

# Record statuses. `pending` flows through the stages; the writer turns a pending record into
# `completed`. `skipped` records were already completed by an earlier run (same content hash).
PENDING = "pending"
COMPLETED = "completed"
FAILED = "failed"
SKIPPED = "skipped"
# With OpenSearch configured: in PostgreSQL, not (yet) in OpenSearch. `pipeline.reindex` backfills
# these; a document is `completed` only once both stores have it.
INDEX_PENDING = "index_pending"

# Stage names, as recorded in documents.error_stage and used as Beam step labels and metric names.
STAGE_READ = "read"
STAGE_CONVERT = "convert"
STAGE_EMBED = "embed"
STAGE_CLASSIFY = "classify"
STAGE_EXTRACT = "extract"
STAGE_WRITE = "write"
STAGE_INDEX = "index"


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """`text` with lone UTF-16 surrogates replaced by U+FFFD. Python decoders can produce them (UTF-7,
    which e-mails may declare, decodes any "+..." run of a PGP signature to arbitrary code units);
    UTF-8 cannot encode them, so PostgreSQL, OpenSearch and Parquet would refuse the document."""
    return _LONE_SURROGATE.sub("\ufffd", text) if _LONE_SURROGATE.search(text) else text


def content_id(data: bytes) -> str:
    """The document id: sha256 of the content, so reruns and duplicates map to one row."""
    return hashlib.sha256(data).hexdigest()


def unreadable_id(path: str) -> str:
    """Id for a path whose bytes could not be read: stable per path, distinct from content ids."""
    return "unreadable-" + hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:52]


@dataclasses.dataclass
class FileRef:
    """An input path on its way to becoming a document. A class rather than a bare str: Beam encodes
    str elements as UTF-8, which fails on file names that are not valid UTF-8 (they arrive from
    the OS as surrogate escapes); objects are pickled, which keeps such names intact."""
    path: str
    size: int = 0
    error: str | None = None
    # A member of a container (transforms.containers): the container's content id, the member's
    # name inside it, and, for a member that is itself an archive, the names it holds.
    parent_id: str | None = None
    member_name: str | None = None
    listing: list[str] | None = None


@dataclasses.dataclass
class Chunk:
    index: int
    text: str
    start_token: int
    vector: Any = None  # numpy float32 array once embedded
    # What the embedding model reads when it differs from `text` (docling's markup left out:
    # transforms.embed); None once embedded, and never stored.
    embed_text: str | None = None


@dataclasses.dataclass
class Document:
    id: str
    paths: list[str]
    size: int = 0
    status: str = PENDING
    filename: str = ""
    mime: str | None = None
    pages: int | None = None
    text: str | None = None
    language: str | None = None
    converter: str | None = None  # which conversion path produced the text (docling-native, ocr, ...)
    # A PDF whose first pages are mostly wider than tall (slides exported to PDF, some wide tables):
    # set by Convert for PDFs, read by the classifier's format prior; not written.
    landscape: bool | None = None
    category: str | None = None
    confidence: float | None = None
    metadata: dict | None = None
    chunks: list[Chunk] = dataclasses.field(default_factory=list)
    error_stage: str | None = None
    error_message: str | None = None
    # The first page as a small PNG, only for a classifier that looks at it; dropped after Classify
    # and never written.
    page_image: bytes | None = None
    # Container members (transforms.containers): the parent's content id and this member's name in it
    # (from the primary path); an archive's member names (its own text is made from them, not from
    # its bytes); an email's headers (from, to, date, subject, message-id, ...) for metadata.email.
    parent_id: str | None = None
    member_name: str | None = None
    listing: list[str] | None = None
    source_meta: dict | None = None
    parents: dict[str, str] = dataclasses.field(default_factory=dict)  # member path -> its parent's id
    # The fields of a structured e-invoice (Factur-X/ZUGFeRD/UBL XML inside a PDF, or a standalone XML
    # file; transforms.einvoice), set by Convert and used by Extract as exact values; not written itself.
    einvoice: dict | None = None
    # Milliseconds each stage spent on this document ({"convert": 412.5, "embed": 38.1, ...}), set by
    # the DoFns and aggregated per run and stage by the PostgreSQL writer (live stage metrics). A
    # stage listed here succeeded unless it is the document's error_stage.
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    # Failed in an earlier run for a deterministic reason, with this pipeline version, and unchanged
    # since (transforms.failures): not converted again; the writer records the paths' outcome as
    # failed and leaves the stored document as it is.
    failed_before: bool = False

    @property
    def primary_path(self) -> str:
        return self.paths[0]

    @property
    def is_pending(self) -> bool:
        return self.status == PENDING

    def stage_outcomes(self) -> list[tuple[str, bool, float | None]]:
        """(stage, ok, milliseconds or None) for each stage that ran on this document, plus the stage
        that failed it when that one was not timed (a read failure, say)."""
        if self.failed_before:  # no stage ran in this run
            return []
        failed_stage = self.error_stage if self.status == FAILED else None
        outcomes = [(stage, stage != failed_stage, ms) for stage, ms in self.timings.items()]
        if failed_stage and failed_stage not in self.timings:
            outcomes.append((failed_stage, False, None))
        return outcomes

    def fail(self, stage: str, message: str) -> "Document":
        self.status = FAILED
        self.error_stage = stage
        # One line, bounded: messages end up in tables, terminals and JSON APIs.
        self.error_message = " ".join(str(message).split())[:1000] or "unknown error"
        return self
