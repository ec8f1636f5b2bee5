"""OpenSearch sink: client settings, index layout, and batched, idempotent bulk writes.

PostgreSQL stays the record of truth; OpenSearch is a search copy of the completed documents.

Layout (names derive from a prefix, default `docpipe`):

- `<prefix>-documents`: alias of one physical index `<prefix>-documents-<suffix>`, one entry per
  document (`_id` = the document id): title and text (english analyzer), keyword fields for ids,
  category, status and paths, the document date, metadata (stored, not indexed) and its extracted
  fields as `key=value` keywords for exact filters.
- `<prefix>-chunks`: alias of `<prefix>-chunks-<suffix>`, one entry per chunk (`_id` =
  `<document id>-<index>`) with its `knn_vector` embedding (HNSW, see HNSW below) and copies of the
  document's filter fields, so filtered k-NN needs no join.

Index templates for `<prefix>-documents-*` and `<prefix>-chunks-*` carry settings and mappings, so
`pipeline.reindex --new-index` builds fresh indices with the current mapping and then moves the
aliases in one atomic request. Writers only ever name the aliases (`require_alias`), so a missing
alias fails the write instead of creating an index with guessed mappings.

Reruns overwrite: every write is keyed by those ids, and a document that now has fewer chunks than
before (or failed on reprocessing) has its leftover entries deleted.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import time
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from transforms.records import FAILED, INDEX_PENDING, SKIPPED, Document

log = logging.getLogger(__name__)

ENV_USER = "OPENSEARCH_USER"
ENV_PASSWORD = "OPENSEARCH_PASSWORD"
ENV_CA_CERTS = "OPENSEARCH_CA_CERTS"
ENV_VERIFY_CERTS = "OPENSEARCH_VERIFY_CERTS"

# HNSW graph of the chunk vectors. Lucene's engine: cosine similarity (MiniLM vectors are compared
# by cosine everywhere else in this project) and efficient filtering inside the k-NN search, so
# category/date/field filters still return k results. m=16 neighbours per node and ef_construction
# 128 are OpenSearch's documented examples and a sound default for ~10^5-10^7 384-d vectors;
# raise ef_construction (build time) or the query's k (latency) for more recall.
HNSW = {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil",
        "parameters": {"m": 16, "ef_construction": 128}}

SNIPPET_CHARS = 300  # like the PostgreSQL listing's left(text, 300)
RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class OpenSearchError(ValueError):
    """OpenSearch cannot be used as configured (shown to the user as one line, no secrets).
    A ValueError, so the commands report it like other bad settings (exit status 2)."""


def mask_url(url: str) -> str:
    """A URL safe to print: any password replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _env_flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


@dataclasses.dataclass(frozen=True)
class OpenSearchSettings:
    """Where and how to write; picklable, shipped to every worker with the DoFn.

    Credentials come from the URL (https://user:pass@host:9200) or OPENSEARCH_USER and
    OPENSEARCH_PASSWORD; TLS from OPENSEARCH_CA_CERTS (a CA bundle) and OPENSEARCH_VERIFY_CERTS
    (default true). They are read once, where the settings are made, and never printed.
    """
    url: str
    index: str = "docpipe"
    bulk_actions: int = 500              # actions (index/delete/update lines) per bulk request
    bulk_bytes: int = 5 * 1024 * 1024    # request body bytes per bulk request
    retries: int = 5                     # per bulk: 429, 5xx and connection errors are retried
    backoff: float = 0.5                 # seconds, doubled per retry
    timeout: float = 60.0
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    ca_certs: str | None = None
    verify_certs: bool = True

    @classmethod
    def from_env(cls, url: str, **kwargs) -> "OpenSearchSettings":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OpenSearchError(f"--opensearch-url must be http(s)://host[:port], got {mask_url(url)!r}")
        user, password = parts.username, parts.password
        if user is None:
            user, password = os.environ.get(ENV_USER) or None, os.environ.get(ENV_PASSWORD) or None
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        clean = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return cls(url=clean, user=user, password=password,
                   ca_certs=os.environ.get(ENV_CA_CERTS) or None,
                   verify_certs=_env_flag(os.environ.get(ENV_VERIFY_CERTS), True), **kwargs)

    @property
    def layout(self) -> "IndexLayout":
        return IndexLayout(self.index)

    def client(self, max_retries: int = 0):
        """An opensearch-py client. Bulk writes retry on their own terms (below), so the transport's
        own retries are off by default."""
        from opensearchpy import OpenSearch

        kwargs = dict(hosts=[self.url], timeout=self.timeout, max_retries=max_retries,
                      retry_on_timeout=max_retries > 0, http_compress=False)
        if self.user is not None:
            kwargs["http_auth"] = (self.user, self.password or "")
        if self.url.startswith("https"):
            kwargs.update(use_ssl=True, verify_certs=self.verify_certs, ssl_show_warn=self.verify_certs)
            if self.ca_certs:
                kwargs["ca_certs"] = self.ca_certs
        return OpenSearch(**kwargs)


# -- index layout -------------------------------------------------------------------------------

class IndexLayout:
    def __init__(self, prefix: str):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", prefix):
            raise OpenSearchError(f"index prefix must be lowercase letters, digits, - _ or ., got {prefix!r}")
        self.prefix = prefix
        self.documents = f"{prefix}-documents"
        self.chunks = f"{prefix}-chunks"

    @property
    def aliases(self) -> tuple[str, str]:
        return self.documents, self.chunks

    @staticmethod
    def new_suffix() -> str:
        return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S%f")


_KEYWORD = {"type": "keyword"}
_STORED_ONLY = {"type": "object", "enabled": False}
_DATE = {"type": "date", "format": "strict_date_optional_time||yyyy-MM||yyyy||epoch_millis",
         "ignore_malformed": True}
# Filter fields copied onto every chunk (filtered k-NN without a join).
_FILTER_FIELDS = {"status": _KEYWORD, "category": _KEYWORD, "doc_date": _DATE, "field_pairs": _KEYWORD}


def index_settings(refresh_interval: str | None = None) -> dict:
    settings = {"number_of_shards": 1, "knn": True,
                "analysis": {"analyzer": {"default": {"type": "english"}}}}
    if refresh_interval:
        settings["refresh_interval"] = refresh_interval
    return {"index": settings}


def documents_mapping() -> dict:
    text = {"type": "text", "analyzer": "english"}
    return {"dynamic": "strict", "properties": {
        "id": _KEYWORD, "paths": _KEYWORD, "path": _KEYWORD, "run_id": _KEYWORD,
        "filename": {"type": "keyword", "fields": {"text": {"type": "text", "analyzer": "simple"}}},
        "size": {"type": "long"}, "mime": _KEYWORD, "pages": {"type": "integer"},
        "confidence": {"type": "float"}, "language": _KEYWORD, "converter": _KEYWORD,
        "title": {**text, "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "text": text,
        "snippet": {"type": "text", "index": False},
        "processed_at": {"type": "date"},
        "chunk_count": {"type": "integer"},
        "metadata": _STORED_ONLY, "fields": _STORED_ONLY,
        **_FILTER_FIELDS,
    }}


def chunks_mapping(dimension: int) -> dict:
    return {"dynamic": "strict", "properties": {
        "document_id": _KEYWORD, "idx": {"type": "integer"},
        "text": {"type": "text", "analyzer": "english"},
        "embedding": {"type": "knn_vector", "dimension": int(dimension), "method": HNSW},
        **_FILTER_FIELDS,
    }}


def put_templates(client, layout: IndexLayout, dimension: int) -> None:
    """Index templates: every `<alias>-*` index gets these settings and mappings."""
    for alias, mapping in ((layout.documents, documents_mapping()), (layout.chunks, chunks_mapping(dimension))):
        client.indices.put_index_template(name=alias, body={
            "index_patterns": [f"{alias}-*"], "priority": 100,
            "template": {"settings": index_settings(), "mappings": mapping}})


def ensure_indices(client, layout: IndexLayout, dimension: int) -> bool:
    """Templates in place, both aliases pointing at an index; returns True if indices were created.

    An existing chunks index built for another vector dimension is an error: its vectors cannot be
    compared with this embedder's (reindex into a new index after re-embedding).
    """
    from opensearchpy.exceptions import RequestError

    put_templates(client, layout, dimension)
    created = False
    suffix = layout.new_suffix()
    for alias in layout.aliases:
        if client.indices.exists_alias(name=alias):
            continue
        if client.indices.exists(index=alias):
            raise OpenSearchError(f"{alias} is an index, not an alias: reindex it with "
                                  "`python -m pipeline.reindex --new-index` after removing it")
        try:
            client.indices.create(index=f"{alias}-{suffix}", body={"aliases": {alias: {}}})
            created = True
        except RequestError as exc:  # another process created it first
            if exc.error != "resource_already_exists_exception":
                raise
    existing = chunks_dimension(client, layout)
    if existing is not None and existing != dimension:
        raise OpenSearchError(f"{layout.chunks} holds {existing}-dimensional vectors but the embedder "
                              f"makes {dimension}: use another --opensearch-index, or re-embed and reindex")
    return created


def chunks_dimension(client, layout: IndexLayout) -> int | None:
    mappings = client.indices.get_mapping(index=layout.chunks)
    for body in mappings.values():
        field = body.get("mappings", {}).get("properties", {}).get("embedding", {})
        if "dimension" in field:
            return int(field["dimension"])
    return None


def relax_refresh(client, layout: IndexLayout) -> dict[str, str | None]:
    """Stop periodic refreshes for a bulk load; returns what to restore per physical index.

    A value of -1 found here (a run that crashed before restoring it, or one running now) is not
    worth restoring: such an index goes back to the cluster default.
    """
    previous: dict[str, str | None] = {}
    for alias in layout.aliases:
        indices = sorted(client.indices.get_alias(name=alias))
        # Only explicitly set values come back; an index missing here uses the default.
        settings = client.indices.get_settings(index=",".join(indices), name="index.refresh_interval")
        for index in indices:
            value = settings.get(index, {}).get("settings", {}).get("index", {}).get("refresh_interval")
            previous[index] = None if value in (None, "-1") else value
    if previous:
        client.indices.put_settings(index=",".join(previous), body={"index": {"refresh_interval": "-1"}})
    return previous


def restore_refresh(client, previous: dict[str, str | None]) -> None:
    """Put the refresh intervals back (None = cluster default) and make everything searchable now."""
    for index, value in previous.items():
        client.indices.put_settings(index=index, body={"index": {"refresh_interval": value}})
    if previous:
        client.indices.refresh(index=",".join(previous))


# -- what is written ----------------------------------------------------------------------------

def path_text(path: str) -> str:
    # As in PostgreSQL: non-UTF-8 file names (surrogate escapes) become readable, JSON-safe text.
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def document_date(metadata: dict | None) -> str | None:
    """The document's own date, computed as PostgreSQL's generated column documents.doc_date is."""
    meta = metadata or {}
    fields = meta.get("fields") or {}
    dates = meta.get("dates") or []
    for value in (fields.get("issue_date"), fields.get("date"), fields.get("effective_date"),
                  dates[0] if dates else None):
        if value is not None:
            return value if isinstance(value, str) else json.dumps(value)
    return None


def field_pairs(fields: dict | None) -> list[str]:
    """Extracted fields as `key=value` keywords, the value as PostgreSQL's `->>` renders it, so
    --field key=value filters match exactly what they match in PostgreSQL."""
    pairs = []
    for key, value in (fields or {}).items():
        if value is None:
            continue
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = json.dumps(value, ensure_ascii=False)
        pairs.append(f"{key}={text}")
    return pairs


def _clean(text: str | None) -> str | None:
    return text.replace("\x00", "") if text else text


def document_source(doc: Document, paths: list[str], processed_at: str, run_id: str | None) -> dict:
    meta = doc.metadata or {}
    text = _clean(doc.text) or ""
    return {
        "id": doc.id, "paths": paths, "path": paths[0] if paths else None, "run_id": run_id,
        "filename": path_text(doc.filename or ""), "size": doc.size, "mime": doc.mime, "pages": doc.pages,
        "status": "completed", "category": doc.category, "confidence": doc.confidence,
        "language": doc.language, "converter": doc.converter,
        "title": meta.get("title"), "text": text, "snippet": text[:SNIPPET_CHARS],
        "doc_date": document_date(meta), "processed_at": processed_at,
        "chunk_count": len(_vectored(doc)),
        "metadata": meta, "fields": meta.get("fields") or {}, "field_pairs": field_pairs(meta.get("fields")),
    }


def _vectored(doc: Document):
    return [c for c in doc.chunks if c.vector is not None]


def vector_list(vector) -> list[float]:
    # Rounded to 7 decimals: float32 carries no more, and the JSON body is about half the size.
    if hasattr(vector, "to_numpy"):  # pgvector's Vector, as read back from PostgreSQL on reindex
        vector = vector.to_numpy()
    return np.round(np.asarray(vector, dtype=np.float64), 7).tolist()


def chunk_id(doc_id: str, idx: int) -> str:
    return f"{doc_id}-{idx}"


# -- bulk ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Action:
    """One bulk action on behalf of one document, serialized once (its size decides batching)."""
    doc_id: str
    op: str
    lines: bytes

    @classmethod
    def make(cls, doc_id: str, op: str, index: str, _id: str, source: dict | None = None) -> "Action":
        header = json.dumps({op: {"_index": index, "_id": _id}})
        body = header + "\n" + (json.dumps(source, ensure_ascii=False) + "\n" if source is not None else "")
        return cls(doc_id, op, body.encode("utf-8"))


def batches(actions: list[Action], max_actions: int, max_bytes: int) -> Iterable[list[Action]]:
    """Consecutive slices within both limits (an action larger than max_bytes goes alone)."""
    batch: list[Action] = []
    size = 0
    for action in actions:
        if batch and (len(batch) >= max_actions or size + len(action.lines) > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(action)
        size += len(action.lines)
    if batch:
        yield batch


def _item_error(op: str, item: dict) -> str | None:
    """None if the action succeeded (a delete of something absent counts as success)."""
    status = item.get("status", 0)
    if 200 <= status < 300 or (op == "delete" and status == 404 and "error" not in item):
        return None
    error = item.get("error") or {}
    if isinstance(error, dict):
        reason = error.get("reason") or error.get("type") or "unknown error"
        cause = (error.get("caused_by") or {}).get("reason")
        return f"{error.get('type', 'error')}: {reason}" + (f" ({cause})" if cause and cause != reason else "")
    return str(error) or f"status {status}"


class BulkSender:
    """Sends actions in bulk requests bounded by count and bytes; returns one error (or None) per
    action. 429s, 5xx and connection errors are retried with exponential backoff; only the items that
    failed retryably are sent again."""

    def __init__(self, client, settings: OpenSearchSettings, sleep=time.sleep, require_alias: bool = True):
        self.client = client
        self.settings = settings
        self.sleep = sleep
        self.require_alias = require_alias
        self.requests = 0
        self.retried = 0

    def send(self, actions: list[Action]) -> list[str | None]:
        results: list[str | None] = [None] * len(actions)
        position = {id(a): i for i, a in enumerate(actions)}
        for batch in batches(actions, self.settings.bulk_actions, self.settings.bulk_bytes):
            for action, error in zip(batch, self._send_batch(batch)):
                results[position[id(action)]] = error
        return results

    def _send_batch(self, batch: list[Action]) -> list[str | None]:
        from opensearchpy.exceptions import ConnectionError as OSConnectionError
        from opensearchpy.exceptions import TransportError

        results: list[str | None] = [None] * len(batch)
        todo = list(range(len(batch)))
        for attempt in range(self.settings.retries + 1):
            last = attempt == self.settings.retries
            body = b"".join(batch[i].lines for i in todo)
            try:
                self.requests += 1
                response = self.client.bulk(body=body, require_alias=self.require_alias)
            except (OSConnectionError, TransportError) as exc:
                status = getattr(exc, "status_code", None)
                retryable = isinstance(exc, OSConnectionError) or status in RETRYABLE_STATUS
                reason = _transport_reason(exc, self.settings.url)
                if retryable and not last:
                    self._wait(attempt, reason)
                    continue
                for i in todo:
                    results[i] = reason
                return results
            again = []
            for i, entry in zip(todo, response.get("items", [])):
                op, item = next(iter(entry.items()))
                error = _item_error(batch[i].op, item)
                results[i] = error
                if error and item.get("status") in RETRYABLE_STATUS:
                    again.append(i)
            if not again or last:
                return results
            self.retried += len(again)
            todo = again
            self._wait(attempt, f"{len(again)} items rejected ({results[again[0]]})")
        return results

    def _wait(self, attempt: int, reason: str) -> None:
        delay = self.settings.backoff * 2 ** attempt
        log.warning("OpenSearch bulk: %s; retry %d/%d in %.1fs", reason, attempt + 1,
                    self.settings.retries, delay)
        self.sleep(delay)


def _transport_reason(exc, url: str) -> str:
    from opensearchpy.exceptions import ConnectionError as OSConnectionError

    if isinstance(exc, OSConnectionError):
        return f"OpenSearch unreachable at {mask_url(url)}"
    status = getattr(exc, "status_code", "?")
    return f"OpenSearch error {status}: {describe_error(exc)}"[:500]


def describe_error(exc) -> str:
    """`type: reason` of an opensearch-py TransportError (the reason sits in the response body)."""
    info = getattr(exc, "info", None)
    error = info.get("error") if isinstance(info, dict) else None
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
    return str(getattr(exc, "error", "") or exc)


# -- the indexer --------------------------------------------------------------------------------

@dataclasses.dataclass
class IndexOutcome:
    indexed: list[str] = dataclasses.field(default_factory=list)        # now in OpenSearch
    failed: dict[str, str] = dataclasses.field(default_factory=dict)    # id -> reason
    missing: list[str] = dataclasses.field(default_factory=list)        # skipped, yet not in OpenSearch


class OpenSearchIndexer:
    """Writes batches of Documents (as they leave the PostgreSQL writer) into the two aliases.

    - INDEX_PENDING documents are indexed with their chunks (paths merged with those already
      indexed, leftover chunks of a longer earlier version deleted);
    - FAILED documents that an earlier run had indexed are deleted (search shows completed ones);
    - SKIPPED documents get any new paths; one that is not in OpenSearch at all is reported missing.
    """

    def __init__(self, settings: OpenSearchSettings, run_id: str | None = None, client=None, sleep=time.sleep,
                 targets: tuple[str, str] | None = None):
        """`targets`: (documents, chunks) physical indices to write instead of the aliases (reindex
        into new indices before the aliases move to them)."""
        self.settings = settings
        self.layout = settings.layout
        self.documents, self.chunks = targets or self.layout.aliases
        self.run_id = run_id
        self.client = client or settings.client()
        self.sender = BulkSender(self.client, settings, sleep=sleep, require_alias=targets is None)
        self._ensured = targets is not None

    def close(self) -> None:
        self.client.close()

    def _ensure(self, docs: list[Document]) -> None:
        """Create the indices if the run could not at its start (OpenSearch was down then)."""
        if self._ensured:
            return
        vectors = [c.vector for d in docs for c in _vectored(d)]
        if not self.client.indices.exists_alias(name=self.layout.chunks) and vectors:
            ensure_indices(self.client, self.layout, len(vectors[0]))
        self._ensured = True

    def _indexed(self, ids: list[str]) -> dict[str, dict]:
        """Sources (paths, chunk_count) of the ids already in the documents index."""
        if not ids:
            return {}
        found = self.client.mget(index=self.documents, body={"ids": ids},
                                 _source_includes=["paths", "chunk_count"])
        return {d["_id"]: d.get("_source", {}) for d in found["docs"] if d.get("found")}

    def write(self, docs: list[Document], stamps: dict[str, tuple[str, str | None]] | None = None) -> IndexOutcome:
        """Index the batch; `stamps` (id -> (processed_at, run_id)) comes from PostgreSQL on reindex,
        else it is now and this run."""
        from opensearchpy.exceptions import ConnectionError as OSConnectionError
        from opensearchpy.exceptions import TransportError

        outcome = IndexOutcome()
        pending = [d for d in docs if d.status == INDEX_PENDING]
        others = [d for d in docs if d.status in (FAILED, SKIPPED)]
        if not pending and not others:
            return outcome
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        stamps = stamps or {}
        try:
            self._ensure(pending)
            existing = self._with_retries(self._indexed, [d.id for d in pending + others])
        except (OSConnectionError, TransportError, OpenSearchError) as exc:
            reason = str(exc) if isinstance(exc, OpenSearchError) else _transport_reason(exc, self.settings.url)
            outcome.failed = {d.id: reason for d in pending}
            return outcome

        # Two rounds: chunks (and everything else) first, then the document entries of the documents
        # whose chunks all went in, so search never lists a document with missing chunks.
        actions: list[Action] = []
        entries: dict[str, Action] = {}
        for doc in pending:
            chunk_actions, entries[doc.id] = self._index_actions(
                doc, existing.get(doc.id), *stamps.get(doc.id, (now, self.run_id)))
            actions += chunk_actions
        for doc in others:
            old = existing.get(doc.id)
            if doc.status == FAILED and old is not None:
                actions.append(Action.make(doc.id, "delete", self.documents, doc.id))
                actions += [Action.make(doc.id, "delete", self.chunks, chunk_id(doc.id, i))
                            for i in range(old.get("chunk_count") or 0)]
            elif doc.status == SKIPPED:
                if old is None:
                    outcome.missing.append(doc.id)
                else:
                    paths = sorted(set(old.get("paths") or []) | {path_text(p) for p in doc.paths})
                    if paths != (old.get("paths") or []):
                        actions.append(Action.make(doc.id, "update", self.documents, doc.id,
                                                   {"doc": {"paths": paths, "path": paths[0]}}))

        errors: dict[str, str] = {}
        for action, error in zip(actions, self.sender.send(actions)):
            if error and action.doc_id not in errors:
                errors[action.doc_id] = error
        second = [entry for doc_id, entry in entries.items() if doc_id not in errors]
        for action, error in zip(second, self.sender.send(second)):
            if error:
                errors[action.doc_id] = error
        for doc in pending:
            if doc.id in errors:
                outcome.failed[doc.id] = errors[doc.id]
            else:
                outcome.indexed.append(doc.id)
        for doc in others:
            if doc.id in errors:  # not this document's outcome, but worth a line in the log
                log.warning("OpenSearch: could not update %s (%s): %s", doc.id[:12], doc.status, errors[doc.id])
        return outcome

    def _index_actions(self, doc: Document, old: dict | None, processed_at: str,
                       run_id: str | None) -> tuple[list[Action], Action]:
        """(chunk actions, the document entry's action)."""
        paths = sorted(set((old or {}).get("paths") or []) | {path_text(p) for p in doc.paths})
        source = document_source(doc, paths, processed_at, run_id)
        filters = {k: source[k] for k in _FILTER_FIELDS}
        chunks = _vectored(doc)
        actions = [Action.make(doc.id, "index", self.chunks, chunk_id(doc.id, c.index),
                               {"document_id": doc.id, "idx": c.index, "text": _clean(c.text) or "",
                                "embedding": vector_list(c.vector), **filters})
                   for c in chunks]
        kept = {c.index for c in chunks}
        actions += [Action.make(doc.id, "delete", self.chunks, chunk_id(doc.id, i))
                    for i in range((old or {}).get("chunk_count") or 0) if i not in kept]
        return actions, Action.make(doc.id, "index", self.documents, doc.id, source)

    def _with_retries(self, fn, *args):
        from opensearchpy.exceptions import ConnectionError as OSConnectionError
        from opensearchpy.exceptions import TransportError

        for attempt in range(self.settings.retries + 1):
            try:
                return fn(*args)
            except (OSConnectionError, TransportError) as exc:
                retryable = isinstance(exc, OSConnectionError) or getattr(exc, "status_code", None) in RETRYABLE_STATUS
                if not retryable or attempt == self.settings.retries:
                    raise
                self.sender._wait(attempt, _transport_reason(exc, self.settings.url))


# -- run start and end --------------------------------------------------------------------------

def start_run(settings: OpenSearchSettings, dimension: int) -> dict[str, str | None] | None:
    """Indices in place and refreshes relaxed; returns what `finish_run` restores.

    OpenSearch being unreachable is not fatal (documents then wait for indexing: None is returned);
    a configuration it refuses (wrong credentials, a mapping that does not fit) is.
    """
    from opensearchpy.exceptions import (AuthenticationException, AuthorizationException,
                                         ConnectionError as OSConnectionError, TransportError)

    client = settings.client(max_retries=2)
    try:
        ensure_indices(client, settings.layout, dimension)
        return relax_refresh(client, settings.layout)
    except (AuthenticationException, AuthorizationException) as exc:
        raise OpenSearchError(f"OpenSearch at {mask_url(settings.url)} refused the credentials: {exc.error}") from None
    except OSConnectionError:
        log.warning("OpenSearch unreachable at %s: documents will wait for indexing "
                    "(python -m pipeline.reindex indexes them later)", mask_url(settings.url))
        return None
    except TransportError as exc:
        raise OpenSearchError(f"OpenSearch at {mask_url(settings.url)}: {_transport_reason(exc, settings.url)}") from None
    finally:
        client.close()


def finish_run(settings: OpenSearchSettings, previous: dict[str, str | None] | None) -> None:
    """Restore refresh intervals and refresh, so what the run indexed is searchable now."""
    if previous is None:  # OpenSearch was unreachable at the start: nothing was relaxed
        return
    client = settings.client(max_retries=2)
    try:
        restore_refresh(client, previous)
    except Exception as exc:  # the run's results are in PostgreSQL either way
        log.warning("OpenSearch: could not restore refresh intervals at %s: %s", mask_url(settings.url), exc)
    finally:
        client.close()


# -- corrections --------------------------------------------------------------------------------

def update_category(settings: OpenSearchSettings, doc_id: str, category: str, confidence: float = 1.0,
                    client=None, sleep=time.sleep) -> str:
    """A user corrected a document's category in PostgreSQL: the same partial update here, on the
    document entry and on the category copied onto each of its chunks (filtered k-NN reads it there).
    Returns "updated", "not indexed" (nothing to update: the next write or reindex indexes it with the
    corrected category), or the reason it failed (then `pipeline.reindex --all` carries it over)."""
    from opensearchpy.exceptions import ConnectionError as OSConnectionError
    from opensearchpy.exceptions import TransportError

    own = client is None
    client = client or settings.client()
    documents, chunks = settings.layout.aliases
    try:
        found = client.mget(index=documents, body={"ids": [doc_id]}, _source_includes=["chunk_count"])
        entry = next((d for d in found["docs"] if d.get("found")), None)
        if entry is None:
            return "not indexed"
        count = (entry.get("_source") or {}).get("chunk_count") or 0
        actions = [Action.make(doc_id, "update", chunks, chunk_id(doc_id, i), {"doc": {"category": category}})
                   for i in range(count)]
        actions.append(Action.make(doc_id, "update", documents, doc_id,
                                   {"doc": {"category": category, "confidence": confidence}}))
        errors = [e for e in BulkSender(client, settings, sleep=sleep).send(actions) if e]
        return errors[0] if errors else "updated"
    except (OSConnectionError, TransportError) as exc:
        return _transport_reason(exc, settings.url)
    finally:
        if own:
            client.close()
