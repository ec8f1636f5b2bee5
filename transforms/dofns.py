"""The Beam layer: thin DoFns around the plain stage logic.

Each DoFn builds its heavy state once per worker in `setup`, and around the per-document call it
only does error routing (a failure marks the record failed and passes it on, so the writer still
records an outcome), metrics (counters per stage and outcome, latency distributions) and batching.
Records that are not pending (failed earlier, or skipped as unchanged) pass through untouched.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms import containers, read, worker_exit
from transforms.config import StageConfig
from transforms.records import (SKIPPED, STAGE_CLASSIFY, STAGE_CONVERT, STAGE_EMBED, STAGE_EXTRACT,
                                STAGE_READ, Document, FileRef, unreadable_id)

worker_exit.install()  # a worker process ends as soon as its harness is done (see the module)

log = logging.getLogger(__name__)
NAMESPACE = "docpipe"


class _StageMetrics:
    """Beam metrics of one stage, and the document's own timing of it (Document.timings), which the
    PostgreSQL writer aggregates into run_stage_stats: Beam's figures reach the store only when the
    run ends, the document's go with it and make the stage metrics live on any runner."""

    def __init__(self, stage: str):
        self.stage = stage
        self.ok = Metrics.counter(NAMESPACE, f"{stage}_ok")
        self.failed = Metrics.counter(NAMESPACE, f"{stage}_failed")
        self.millis = Metrics.distribution(NAMESPACE, f"{stage}_ms")

    def record(self, doc: Document, seconds: float) -> None:
        self.millis.update(int(seconds * 1000))
        doc.timings[self.stage] = round(seconds * 1000, 3)
        (self.failed if doc.status == "failed" else self.ok).inc()


def _run_stage(doc: Document, stage: str, metrics: _StageMetrics, fn) -> None:
    """Call fn(doc), recording its outcome and latency; an exception fails the document (_guarded)."""
    start = time.perf_counter()
    _guarded(doc, stage, fn)
    metrics.record(doc, time.perf_counter() - start)


def _guarded(doc: Document, stage: str, fn) -> None:
    """Call fn(doc); any exception becomes the document's recorded failure for `stage`."""
    try:
        fn(doc)
    except Exception as exc:  # one bad document must never stop the run
        message = str(exc) or type(exc).__name__
        if not _is_expected(exc):
            message = f"{type(exc).__name__}: {message}"
            log.warning("%s failed for %s: %s", stage, doc.primary_path, message, exc_info=True)
        doc.fail(stage, message)


def _is_expected(exc: Exception) -> bool:
    from transforms.convert import ConversionError

    return isinstance(exc, (ConversionError, read.ReadError))


# -- read ---------------------------------------------------------------------------------------

def mark_work_started(dsn: str | None, run_id: str | None) -> None:
    """Tell the launching process that a worker runs this run's code (pipeline.startup stops a run
    whose workers never start). Best effort: a store that cannot be reached fails the writers later."""
    if not (dsn and run_id):
        return
    try:
        from pipeline import store

        store.mark_work_started(dsn, run_id)
    except Exception as exc:
        log.warning("could not record that the run's work started: %s", exc)


class ExpandInput(beam.DoFn):
    """Input spec (folder, glob, @manifest) -> FileRefs; records the total for progress."""

    def __init__(self, dsn: str | None = None, run_id: str | None = None):
        self.dsn = dsn
        self.run_id = run_id
        self.listed = Metrics.counter(NAMESPACE, "paths_listed")

    def process(self, spec: str):
        mark_work_started(self.dsn, self.run_id)  # before a listing that may take long (a big bucket)
        count = 0
        for path in read.expand_input(spec):
            count += 1
            self.listed.inc()
            yield FileRef(path)
        if self.dsn:
            from transforms.write_postgres import PostgresWriter

            writer = PostgresWriter(self.dsn, self.run_id)
            writer.record_listing(count)
            writer.close()


class HashFile(beam.DoFn):
    """FileRef -> (document id, FileRef with size or error). Unreadable paths get a per-path id."""

    def __init__(self, max_file_size: int, max_archive_size: int | None = None, max_ratio: float | None = None):
        self.max_file_size = max_file_size
        self.max_ratio = max_ratio  # --archive-max-ratio, for member paths retried by --retry-failed
        # Archives are streamed, never held in memory: --archive-max-total-mb bounds them, not
        # --max-file-size (which bounds what a converter holds).
        self.max_archive_size = max_archive_size

    def setup(self):
        self.failed = Metrics.counter(NAMESPACE, f"{STAGE_READ}_failed")

    def process(self, ref: FileRef):
        try:
            limit = self.max_file_size
            if self.max_archive_size and containers.is_archive(ref.path) and not containers.is_member_path(ref.path):
                limit = self.max_archive_size
            doc_id, size = read.hash_file(ref.path, limit, self.max_ratio)
            yield doc_id, FileRef(ref.path, size)
        except read.ReadError as exc:
            self.failed.inc()
            yield unreadable_id(ref.path), FileRef(ref.path, 0, str(exc))


class ExpandContainers(beam.DoFn):
    """(id, FileRef) -> the same, and for a container (archive, mailbox, email) also (id, FileRef) of
    every member, recursively, each with its parent's id and its name (transforms.containers).

    Inside the pipeline, right after hashing, so it runs where the container is read, on any runner,
    and members then group by content and skip like any file. Only names and hashes flow on: the
    converter re-reads a member's bytes out of its container (see transforms.containers). A container
    refused as a whole (a limit, a corrupt archive) is recorded failed with the reason and yields no
    member; a member refused alone gets its own failed outcome. Without --reprocess, a container
    already completed in the store is not opened again: it is skipped downstream, and its members
    keep the outcomes of the run that expanded them."""

    def __init__(self, config: StageConfig, dsn: str | None = None, run_id: str | None = None,
                 reprocess: bool = False):
        self.config = config
        self.dsn = dsn
        self.run_id = run_id
        self.reprocess = reprocess

    def setup(self):
        # The first step with the store's address on every path (listing, --retry-failed, Dask).
        mark_work_started(self.dsn, self.run_id)
        self.limits = containers.Limits.from_config(self.config)
        self._writer = None
        self.members = Metrics.counter(NAMESPACE, "container_members")
        self.refused = Metrics.counter(NAMESPACE, "containers_refused")

    def _store(self):
        if self._writer is None:
            from transforms.write_postgres import PostgresWriter

            self._writer = PostgresWriter(self.dsn, self.run_id)
        return self._writer

    def _completed(self, doc_id: str) -> bool:
        if not self.dsn or self.reprocess:
            return False
        return doc_id in self._store().completed_ids([doc_id])

    def process(self, item):
        doc_id, ref = item
        if ref.error or containers.kind(ref.path) is None or self._completed(doc_id):
            yield item
            return
        try:
            found, names = containers.expand(ref.path, self.limits)
        except Exception as exc:  # LimitError carries its reason; anything else is a broken container
            reason = str(exc) if isinstance(exc, containers.LimitError) else \
                f"cannot open the container: {type(exc).__name__}: {exc}"
            self.refused.inc()
            yield doc_id, dataclasses.replace(ref, error=reason)
            return
        archive = containers.is_archive(ref.path)
        if found and self.dsn:
            self._store().add_paths(len(found))  # members are paths of the run: progress counts them
        yield doc_id, dataclasses.replace(ref, listing=names if archive else None)
        ids = {ref.path: doc_id}
        for member in found:
            ids[member.path] = member.id
        for member in found:
            self.members.inc()
            parent_id = ids.get(member.parent)
            if member.error:
                yield unreadable_id(member.path), FileRef(member.path, 0, member.error, parent_id, member.name)
            else:
                yield member.id, FileRef(member.path, member.size, None, parent_id, member.name, member.listing)

    def teardown(self):
        if self._writer is not None:
            self._writer.close()


def merge_paths(item) -> Document:
    """(id, [FileRef]) -> one Document; paths sorted so the primary path is stable."""
    doc_id, refs = item
    refs = sorted(refs, key=lambda r: r.path)
    first = refs[0]
    doc = Document(id=doc_id, paths=[r.path for r in refs], size=first.size,
                   filename=os.path.basename(first.path))
    # Members: the parent of each member path; the primary path's parent and name for the document.
    doc.parents = {r.path: r.parent_id for r in refs if r.parent_id}
    doc.parent_id, doc.member_name = first.parent_id, first.member_name
    if first.member_name:
        doc.filename = os.path.basename(first.member_name)
    doc.listing = next((r.listing for r in refs if r.listing is not None), None)
    if first.error:
        doc.fail(STAGE_READ, first.error)
    return doc


class SkipCompleted(beam.DoFn):
    """Batch of Documents -> Documents, marking those already completed in the store as skipped,
    and (with `skip_failed`) those that failed before for a deterministic reason under this
    pipeline version as failed again without converting them (transforms.failures)."""

    def __init__(self, dsn: str, run_id: str, skip_failed: bool = True):
        self.dsn = dsn
        self.run_id = run_id
        self.skip_failed = skip_failed  # False for --retry-failed: those are what it retries

    def setup(self):
        from transforms.write_postgres import PostgresWriter

        self.writer = PostgresWriter(self.dsn, self.run_id)
        self.skipped = Metrics.counter(NAMESPACE, "skipped_unchanged")
        self.failed_before = Metrics.counter(NAMESPACE, "failed_before_unchanged")

    def process(self, batch: list[Document]):
        ids = [d.id for d in batch if d.is_pending]
        done = self.writer.completed_ids(ids)
        failed = self.writer.failed_before([i for i in ids if i not in done]) if self.skip_failed else {}
        for doc in batch:
            if doc.id in done:
                doc.status = SKIPPED
                self.skipped.inc()
            elif doc.id in failed:
                doc.fail(*failed[doc.id])
                doc.failed_before = True
                self.failed_before.inc()
            yield doc

    def teardown(self):
        self.writer.close()


class StartConverterEarly(beam.DoFn):
    """Passes documents through; at the first one to convert, starts this worker's converter process
    (transforms.isolate.start_early), so that docling's import and set-up (2-3 s of a core) overlap
    what comes before the first conversion (the documents' lookup and sorting, the set-up of the
    stages) instead of following it. A run whose documents are all unchanged starts none."""

    def __init__(self, config: StageConfig):
        self.config = config

    def process(self, doc: Document):
        if doc.is_pending and doc.listing is None:
            from transforms import isolate

            isolate.start_early(self.config)  # once per process; later calls return at once
        yield doc


# -- stages -------------------------------------------------------------------------------------

class ConvertDocument(beam.DoFn):
    """Converts each pending document. With the converter in its own process (the default), one
    document is converted ahead: while the stages after this one (classify, extract, embed) run on
    document n in this worker, the converter process already converts document n+1. A worker's
    two processes then work at the same time instead of taking turns, which matters most at the end
    of a run, when one worker is left with work and the other core would otherwise wait for it.
    The bundle's last document is emitted by finish_bundle: `ahead=False` for runners that drop
    what finish_bundle emits (pipeline.graph, BAG_RUNNERS)."""

    def __init__(self, config: StageConfig, ahead: bool = True):
        self.config = config
        self.converts_ahead = ahead and config.isolate_convert  # the in-process converter cannot

    def setup(self):
        if self.config.isolate_convert:
            from transforms.isolate import IsolatedConverter

            self.converter = IsolatedConverter(self.config)
        else:
            from transforms.convert import Converter

            self.converter = _InProcessConverter(Converter(self.config), self.config.max_file_size)
        self.metrics = _StageMetrics(STAGE_CONVERT)
        self.ahead = None  # (document, window, timestamp) whose conversion is under way

    def start_bundle(self):
        self.ahead = None

    def process(self, doc: Document, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        if not doc.is_pending:
            yield doc
            return
        if doc.listing is not None:  # an archive: its text says what it holds; its bytes are not read
            _run_stage(doc, STAGE_CONVERT, self.metrics, _archive_text)
            yield doc
            return
        if not self.converts_ahead:
            _run_stage(doc, STAGE_CONVERT, self.metrics, self.converter.convert)
            yield doc
            return
        before = self._collect()  # the converter process is free again
        _guarded(doc, STAGE_CONVERT, self.converter.submit)
        if doc.status == "failed":  # the converter process could not be started
            self.metrics.record(doc, 0.0)
            yield doc
        else:
            self.ahead = (doc, window, timestamp)
        if before is not None:
            yield before[0]

    def finish_bundle(self):
        last = self._collect()
        if last is not None:
            from apache_beam.utils.windowed_value import WindowedValue

            doc, window, timestamp = last
            yield WindowedValue(doc, timestamp, [window])

    def _collect(self):
        """Wait for the document converted ahead, if any, and record its outcome."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            doc = ahead[0]
            _guarded(doc, STAGE_CONVERT, self.converter.collect)
            self.metrics.record(doc, self.converter.last_seconds)
        return ahead

    def teardown(self):
        self.converter.close()


def _archive_text(doc: Document) -> None:
    doc.text = containers.listing_text(doc.primary_path, doc.listing)
    doc.mime, doc.converter, doc.pages = "application/x-archive", "archive", None


class _InProcessConverter:
    """The converter without a child process (--no-isolate-convert): faster start, no limits."""

    def __init__(self, converter, max_file_size: int):
        self.converter = converter
        self.max_file_size = max_file_size

    def convert(self, doc: Document) -> None:
        from transforms.isolate import release_freed_memory

        try:
            self.converter.convert(doc, read.read_bytes(doc.primary_path, self.max_file_size))
        finally:
            release_freed_memory()  # as the converter process does after each document

    def close(self) -> None:
        pass


class EmbedDocuments(beam.DoFn):
    """Batch of Documents -> Documents with chunks and vectors (one model call per batch)."""

    def __init__(self, config: StageConfig):
        self.config = config

    def setup(self):
        self._embedder = None  # loaded on the first pending document: a rerun that skips all never pays
        self.metrics = _StageMetrics(STAGE_EMBED)
        self.chunks = Metrics.counter(NAMESPACE, "chunks_embedded")
        # Windows not embedded because they are not text (transforms.chunk_filter), by reason, and
        # chunks that reused the vector of an identical chunk in the same model call.
        from transforms.chunk_filter import REASONS

        self.skipped = {reason: Metrics.counter(NAMESPACE, f"chunks_skipped_{reason}") for reason in REASONS}
        self.reused = Metrics.counter(NAMESPACE, "chunks_deduplicated")

    @property
    def embedder(self):
        if self._embedder is None:
            from transforms.backends import load_embedder
            from transforms.embed import Embedder

            self._embedder = Embedder(load_embedder(self.config), self.config.chunk_tokens,
                                      self.config.chunk_overlap, self.config.max_chunks)
        return self._embedder

    def _chunk(self, doc: Document) -> None:
        for reason, n in self.embedder.chunk(doc).items():
            self.skipped[reason].inc(n)

    def process(self, batch: list[Document]):
        pending = [d for d in batch if d.is_pending]
        if not pending:
            yield from batch
            return
        start = time.perf_counter()
        for doc in pending:
            _guarded(doc, STAGE_EMBED, self._chunk)
        ready = [d for d in pending if d.is_pending]
        try:
            self.reused.inc(self.embedder.embed_batch(ready))
        except Exception:
            # Find the document that broke the batch instead of failing all of them.
            for doc in ready:
                _guarded(doc, STAGE_EMBED, lambda d: self.reused.inc(self.embedder.embed_batch([d])))
        # One model call serves the whole batch: each document is charged an equal share of it.
        share = (time.perf_counter() - start) / len(pending)
        for doc in pending:
            self.metrics.record(doc, share)
        self.chunks.inc(sum(len(doc.chunks) for doc in ready if doc.is_pending))
        yield from batch


class ClassifyDocument(beam.DoFn):
    def __init__(self, config: StageConfig):
        self.config = config

    def setup(self):
        self._classifier = None  # built on first use, like the embedder it shares
        self.metrics = _StageMetrics(STAGE_CLASSIFY)

    @property
    def classifier(self):
        if self._classifier is None:
            from transforms.backends import load_classifier

            self._classifier = load_classifier(self.config)
        return self._classifier

    def process(self, doc: Document):
        if doc.is_pending:
            def classify(d):
                if d.listing is not None:
                    # An archive is a folder, not a kind of document: its members are classified each.
                    # A mailbox is a file of e-mails, and filed as a whole it is mail.
                    mailbox = containers.kind(d.primary_path) == "mbox"   # kind() reads the last path element
                    names = getattr(self.classifier, "names", ())
                    d.category, d.confidence = ("email" if mailbox and "email" in names else "other"), 1.0
                    return
                d.category, d.confidence = self.classifier.classify(d)
            _run_stage(doc, STAGE_CLASSIFY, self.metrics, classify)
        doc.page_image = None  # only the classifier looks at it; never carried further or written
        yield doc


class ExtractMetadata(beam.DoFn):
    def __init__(self, config: StageConfig):
        self.config = config

    def setup(self):
        from transforms.backends import load_extractor

        self.extractor = load_extractor(self.config)
        self.metrics = _StageMetrics(STAGE_EXTRACT)

    def process(self, doc: Document):
        if doc.is_pending:
            def extract(d):
                d.metadata = self.extractor.extract(d)
                _add_source_meta(d)
            _run_stage(doc, STAGE_EXTRACT, self.metrics, extract)
        yield doc


def _add_source_meta(doc: Document) -> None:
    """An email's parsed headers become metadata.email, and its subject the title (what a reader
    calls the mail; the first line of its text is the From header)."""
    if doc.source_meta and doc.metadata is not None:
        doc.metadata["email"] = doc.source_meta
        if doc.source_meta.get("subject"):
            doc.metadata["title"] = doc.source_meta["subject"]


class WriteToPostgres(beam.DoFn):
    """Batch of Documents -> (id, status) per document, after the batch is committed.

    With `index_after` (OpenSearch configured) completed documents are written as index_pending and
    the batch itself is passed on, for WriteToOpenSearch. With `pass_batches` (--parquet-out) too,
    for WriteParquet and then BatchOutcomes. (Not a second, tagged output: Beam's DaskRunner does
    not split a ParDo's outputs by tag, every consumer would get all of them.)
    """

    def __init__(self, dsn: str, run_id: str, index_after: bool = False, pass_batches: bool = False):
        self.dsn = dsn
        self.run_id = run_id
        self.index_after = index_after
        self.pass_batches = pass_batches

    def setup(self):
        from transforms.write_postgres import PostgresWriter

        self.writer = PostgresWriter(self.dsn, self.run_id, index_after=self.index_after)
        self.written = Metrics.counter(NAMESPACE, "documents_written")
        self.millis = Metrics.distribution(NAMESPACE, "write_batch_ms")

    def process(self, batch: list[Document]):
        start = time.perf_counter()
        self.writer.write_batch(batch)
        self.millis.update(int((time.perf_counter() - start) * 1000))
        self.written.inc(len(batch))
        if self.index_after or self.pass_batches:
            yield batch
            return
        yield from BatchOutcomes.outcomes(batch)

    def teardown(self):
        self.writer.close()


class BatchOutcomes(beam.DoFn):
    """Batch of written Documents -> (id, status) per document, as WriteToPostgres yields them."""

    @staticmethod
    def outcomes(batch: list[Document]):
        for doc in batch:
            Metrics.counter(NAMESPACE, f"outcome_{doc.status}").inc()
            yield doc.id, doc.status

    def process(self, batch: list[Document]):
        yield from self.outcomes(batch)


class WriteToOpenSearch(beam.DoFn):
    """Batch of Documents (written to PostgreSQL as index_pending) -> (id, status) per document.

    Indexes the batch in OpenSearch, then records the outcome in PostgreSQL: indexed documents become
    completed; the others stay index_pending with the reason (stage `index`), for pipeline.reindex.
    """

    def __init__(self, settings, dsn: str, run_id: str):
        self.settings = settings
        self.dsn = dsn
        self.run_id = run_id

    def setup(self):
        from transforms.write_opensearch import OpenSearchIndexer
        from transforms.write_postgres import PostgresWriter

        self.indexer = OpenSearchIndexer(self.settings, self.run_id)
        self.writer = PostgresWriter(self.dsn, self.run_id)
        self.indexed = Metrics.counter(NAMESPACE, "index_ok")
        self.failed = Metrics.counter(NAMESPACE, "index_failed")
        self.millis = Metrics.distribution(NAMESPACE, "index_batch_ms")

    def process(self, batch: list[Document]):
        from transforms.records import COMPLETED, INDEX_PENDING, STAGE_INDEX

        start = time.perf_counter()
        outcome = self.indexer.write(batch)
        self.writer.record_indexing(outcome.indexed, outcome.failed, outcome.missing)
        self.millis.update(int((time.perf_counter() - start) * 1000))
        self.indexed.inc(len(outcome.indexed))
        self.failed.inc(len(outcome.failed))
        for doc in batch:
            if doc.id in outcome.failed:
                doc.error_stage, doc.error_message = STAGE_INDEX, outcome.failed[doc.id]
                log.warning("index failed for %s: %s", doc.primary_path, outcome.failed[doc.id])
            elif doc.status == INDEX_PENDING:
                doc.status = COMPLETED
            Metrics.counter(NAMESPACE, f"outcome_{doc.status}").inc()
            yield doc.id, doc.status

    def teardown(self):
        self.indexer.close()
        self.writer.close()
