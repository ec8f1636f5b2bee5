"""The upload inbox: files sent over HTTP (POST /api/documents) land here, content-addressed.

A file is streamed to a temporary name under INBOX/.partial/ while it is hashed and its size
checked, then renamed to INBOX/<id[:2]>/<id>/<name>, where <id> is the SHA-256 of the content (the
pipeline's document id, transforms.records.content_id) and <name> the file's own name made safe
(docling and the classifier's format prior read the extension). A watch on the inbox (pipeline.sync,
`python -m pipeline.run --watch --input INBOX`) ignores names starting with a dot, so a half-written
file is never processed: it appears under its final name complete, in one rename.

Every file of an upload gets a row in the `uploads` table: its batch, its document id, what happened
on arrival (`stored`, `duplicate` of content the inbox or the store already has, or `refused` with the
reason), so `GET /api/batch-status/{batch}` can follow each file to its outcome in `documents`.

The inbox is a local folder or any Beam filesystem path (gs://bucket/inbox on a cluster): local
folders use os.replace (atomic), other filesystems Beam's FileSystems.rename (an object store makes
the final object visible only once it is complete).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
import unicodedata
import uuid
from collections.abc import Iterable, Iterator

from pipeline import store

PARTIAL = ".partial"
DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # as pipeline.run's --max-file-size default
BATCH_PREFIX = "upload-"
MAX_FILENAME = 200

STORED, DUPLICATE, REFUSED = "stored", "duplicate", "refused"


class UploadRefused(Exception):
    """A file the inbox does not take; `status` is the HTTP status the API answers (413, 415, 400)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def new_batch_id() -> str:
    return BATCH_PREFIX + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def is_batch_id(value: str) -> bool:
    return value.startswith(BATCH_PREFIX)


def safe_filename(name: str | None) -> str:
    """The file's base name without folders, control characters or a leading dot (a dot-name would be
    ignored by the watch); empty names become 'upload'."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    name = re.sub(r"\s+", " ", name)
    if len(name) > MAX_FILENAME:
        stem, ext = os.path.splitext(name)
        name = stem[:MAX_FILENAME - len(ext[:20])] + ext[:20]
    return name or "upload"


# -- type sniffing ------------------------------------------------------------------------------

def sniff(head: bytes, filename: str) -> str:
    """What the first bytes say the file is, for refusing what the pipeline cannot convert with a 415
    at once (the converter decides the rest: a corrupt PDF is taken here and fails at `convert`).
    Returns a short kind name; raises UploadRefused(415)."""
    import filetype

    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "office"  # DOCX/PPTX/XLSX are zip files; the converter tells them from other zips
    kind = filetype.guess(head)
    if kind is not None:
        if kind.mime.startswith("image/"):
            return "image"
        if not kind.mime.startswith("text/"):
            raise UploadRefused(415, f"{filename}: unsupported file type {kind.mime} (detected from the content)")
    if _is_text(head):
        return "text"
    raise UploadRefused(415, f"{filename}: binary content of no supported type (PDF, Office, image, "
                             "HTML, Markdown, CSV or text)")


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # a multi-byte character cut by the end of the sample
            return True
    # Latin-1 and similar one-byte texts: mostly printable
    printable = sum(32 <= b < 127 or b in (9, 10, 13) or b >= 160 for b in head)
    return printable >= 0.95 * len(head)


# -- storing ------------------------------------------------------------------------------------

def _is_local(inbox: str) -> bool:
    from transforms.read import is_local

    return is_local(inbox)


def _join(base: str, *parts: str) -> str:
    if _is_local(base):
        return os.path.join(base, *parts)
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(base, *parts)


def content_folder(inbox: str, doc_id: str) -> str:
    return _join(inbox, doc_id[:2], doc_id)


def in_inbox(inbox: str, doc_id: str) -> str | None:
    """The path the inbox holds this content under, if any."""
    folder = content_folder(inbox, doc_id)
    if _is_local(inbox):
        try:
            names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
        except FileNotFoundError:
            return None
        return os.path.join(folder, names[0]) if names else None
    from apache_beam.io.filesystems import FileSystems

    found = FileSystems.match([folder + "/*"])[0].metadata_list
    return found[0].path if found else None


def known_document(dsn: str, doc_id: str) -> bool:
    """The store has this content (processed or failed: an upload of it changes nothing), unless all
    its paths were deleted (then it is processed again)."""
    with store.session(dsn) as conn:
        row = conn.execute("SELECT status FROM documents WHERE id = %s", (doc_id,)).fetchone()
    return row is not None and row["status"] != "deleted"


def store_upload(inbox: str, filename: str, chunks: Iterable[bytes], max_bytes: int,
                 dsn: str | None = None) -> dict:
    """Stream one file into the inbox. Returns {filename, document_id, arrival, path, size, kind};
    raises UploadRefused (413 too large, 415 unsupported type, 400 empty). Nothing is left behind
    for a refused file."""
    name = safe_filename(filename)
    if _is_local(inbox):
        return _store_local(inbox, name, chunks, max_bytes, dsn)
    return _store_remote(inbox, name, chunks, max_bytes, dsn)


def _consume(chunks: Iterable[bytes], name: str, max_bytes: int, write) -> tuple[str, int, str]:
    digest = hashlib.sha256()
    size, head, kind = 0, b"", None
    for block in chunks:
        if not block:
            continue
        size += len(block)
        if max_bytes and size > max_bytes:
            raise UploadRefused(413, f"{name}: larger than the upload limit of {max_bytes} bytes")
        if kind is None:
            head += block
            if len(head) >= 4096:
                kind = sniff(head[:4096], name)
        digest.update(block)
        write(block)
    if size == 0:
        raise UploadRefused(400, f"{name}: the file is empty (0 bytes)")
    if kind is None:
        kind = sniff(head, name)
    return digest.hexdigest(), size, kind


def _store_local(inbox: str, name: str, chunks, max_bytes: int, dsn: str | None) -> dict:
    partial_dir = os.path.join(inbox, PARTIAL)
    os.makedirs(partial_dir, exist_ok=True)
    temp = os.path.join(partial_dir, uuid.uuid4().hex)
    try:
        with open(temp, "wb") as fh:
            doc_id, size, kind = _consume(chunks, name, max_bytes, fh.write)
        result = {"filename": name, "document_id": doc_id, "size": size, "kind": kind}
        existing = in_inbox(inbox, doc_id)
        if existing or (dsn and known_document(dsn, doc_id)):
            return {**result, "arrival": DUPLICATE, "path": existing}
        folder = content_folder(inbox, doc_id)
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        try:
            os.mkdir(folder)  # atomic: of two uploads of one content at the same moment, one stores it
        except FileExistsError:
            return {**result, "arrival": DUPLICATE, "path": in_inbox(inbox, doc_id)}
        final = os.path.join(folder, name)
        os.replace(temp, final)
        return {**result, "arrival": STORED, "path": final}
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _store_remote(inbox: str, name: str, chunks, max_bytes: int, dsn: str | None) -> dict:
    from apache_beam.io.filesystems import FileSystems

    temp = FileSystems.join(inbox, PARTIAL, uuid.uuid4().hex)
    written = False
    try:
        with FileSystems.create(temp) as fh:
            written = True
            doc_id, size, kind = _consume(chunks, name, max_bytes, fh.write)
        result = {"filename": name, "document_id": doc_id, "size": size, "kind": kind}
        existing = in_inbox(inbox, doc_id)
        if existing or (dsn and known_document(dsn, doc_id)):
            return {**result, "arrival": DUPLICATE, "path": existing}
        folder = content_folder(inbox, doc_id)
        final = FileSystems.join(folder, name)
        if FileSystems.get_filesystem(folder).has_dirs():  # HDFS and the like: the folder must exist
            try:
                FileSystems.mkdirs(folder)
            except IOError:  # already there: the same content arrived at the same moment
                pass
        FileSystems.rename([temp], [final])
        written = False
        return {**result, "arrival": STORED, "path": final}
    finally:
        if written and FileSystems.exists(temp):
            FileSystems.delete([temp])


def clean_partials(inbox: str, older_than_s: float = 3600) -> int:
    """Remove temporary files a crashed server left (local inboxes); returns how many."""
    import time

    folder = os.path.join(inbox, PARTIAL)
    if not _is_local(inbox) or not os.path.isdir(folder):
        return 0
    removed = 0
    for entry in os.scandir(folder):
        if entry.is_file() and time.time() - entry.stat().st_mtime > older_than_s:
            os.unlink(entry.path)
            removed += 1
    return removed


# -- the uploads table --------------------------------------------------------------------------

def record_upload(dsn: str, batch_id: str, idx: int, outcome: dict) -> None:
    """One file of a batch, with what happened on arrival (outcome from store_upload, or a refusal
    {filename, arrival: 'refused', error})."""
    with store.connect(dsn) as conn:
        conn.execute(
            """INSERT INTO uploads (batch_id, idx, filename, document_id, path, size, arrival, error)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (batch_id, idx) DO NOTHING""",
            (batch_id, idx, _text(outcome["filename"]), outcome.get("document_id"), _text(outcome.get("path")),
             outcome.get("size"), outcome["arrival"], _text(outcome.get("error"))))


def _text(value: str | None) -> str | None:
    # PostgreSQL text holds neither NUL nor lone surrogates
    if value is None:
        return None
    return value.replace("\x00", "").encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# What each file of a batch has become: refused on arrival, waiting for the watch (`queued`), or the
# document's own status (completed, failed with stage and reason, index_pending).
FINAL = ("completed", "failed", "refused")


def batch_status(dsn: str, batch_id: str) -> dict | None:
    """An upload batch: every file with its document's status, counts, and whether all are done."""
    if "\x00" in batch_id:
        return None
    with store.session(dsn) as conn:
        rows = conn.execute(
            """SELECT u.idx, u.filename, u.document_id, u.size, u.arrival, u.error, u.received_at,
                      d.status AS document_status, d.category, d.error_stage, d.error_message, d.processed_at,
                      d.run_id
               FROM uploads u LEFT JOIN documents d ON d.id = u.document_id
               WHERE u.batch_id = %s ORDER BY u.idx""", (batch_id,)).fetchall()
    if not rows:
        return None
    files, counts = [], {}
    for r in rows:
        if r["arrival"] == REFUSED:
            status = REFUSED
        elif r["document_status"] in (None, "deleted"):
            status = "queued"
        else:
            status = r["document_status"]
        counts[status] = counts.get(status, 0) + 1
        files.append({"filename": r["filename"], "document_id": r["document_id"], "size": r["size"],
                      "arrival": r["arrival"], "status": status, "category": r["category"] if status == "completed" else None,
                      "error_stage": r["error_stage"] if status == "failed" else None,
                      "error": r["error"] if status == REFUSED else (r["error_message"] if status == "failed" else None),
                      # the run that processed it (a watch run, on the runs page); None while queued
                      "run_id": r["run_id"] if status not in (REFUSED, "queued") else None})
    done = sum(counts.get(s, 0) for s in FINAL)
    return {"batch_id": batch_id, "kind": "upload", "received_at": rows[0]["received_at"],
            "files_total": len(files), "files_done": done,
            "progress_percent": round(100.0 * done / len(files), 1), "finished": done == len(files),
            "counts": counts, "files": files}


def iter_file(path: str, block: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while data := fh.read(block):
            yield data
