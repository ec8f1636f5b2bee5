"""The Beam graph. Every step is labelled: the labels are what Flink/Spark UIs and metrics show."""
from __future__ import annotations

import zlib

import apache_beam as beam

from transforms import balance
from transforms.config import StageConfig
from transforms.records import FileRef
from transforms.dofns import (ClassifyDocument, ConvertDocument, EmbedDocuments, ExpandContainers, ExpandInput,
                              ExtractMetadata, HashFile, SkipCompleted, StartConverterEarly, WriteToOpenSearch,
                              WriteToPostgres, merge_paths)


# Beam's DaskRunner (2.77) translates the graph into Dask bags, with two consequences for this graph:
# - it drops what a DoFn emits in finish_bundle (a partition's output is collected before the call),
#   and BatchElements emits its last batch (on small inputs its only one) there: documents were lost.
#   On it, batches are formed by a GroupByKey instead (KeyedBatches), and the Convert stage does not
#   convert a document ahead (its bundle's last one would come out of finish_bundle);
# - partitions are made only by Create (Reshuffle is a no-op), so from one input spec the whole run
#   would be one partition on one Dask worker: on it, the listing happens at submission instead.
BAG_RUNNERS = {"DaskRunner"}


def _on_bags(p: beam.Pipeline) -> bool:
    return type(p.runner).__name__ in BAG_RUNNERS


# On bag runners, documents per keyed batch on average: small enough that the shards (number of
# listed paths / 16) spread over every partition, large enough to feed the model many chunks per call.
KEYED_BATCH_DOCS = 16


def _shard_key(doc, shards: int):
    """(shard, doc): a stable shard from the content id."""
    return zlib.crc32(doc.id.encode()) % shards, doc


def _split(item, max_size: int):
    _, docs = item
    docs = list(docs)
    for start in range(0, len(docs), max_size):
        yield docs[start:start + max_size]


class KeyedBatches(beam.PTransform):
    """Lists of at most max_size elements, formed by a GroupByKey over `shards` keys (see above)."""

    def __init__(self, max_size: int, shards: int):
        super().__init__()
        self.max_size = max_size
        self.shards = max(1, shards)

    def expand(self, pcoll):
        return (pcoll
                | "Shard" >> beam.Map(_shard_key, self.shards)
                | "Group" >> beam.GroupByKey()
                | "Split" >> beam.FlatMap(_split, self.max_size))


def batches(p: beam.Pipeline, max_size: int, paths: int) -> beam.PTransform:
    """BatchElements (adaptive sizes, no shuffle), except on runners that lose its last batch."""
    if _on_bags(p):
        return KeyedBatches(max_size, shards=-(-paths // KEYED_BATCH_DOCS))
    return beam.BatchElements(min_batch_size=1, max_batch_size=max_size)


# Documents are batched for the embedding model by their text, not their number: a batch of at most
# ~16 windows of the model (~0.5 s of one core), whatever the documents' lengths. The Convert stage
# before it works ahead of the batch, so a batch counted in documents (16) let a worker hold up to 16
# documents converted but not embedded, a long one among them: at the end of a local run the other
# worker, its shared list used up, waited for those seconds (transforms.balance). Every document
# counts for at least EMBED_BATCH_MIN_CHARS (failed ones, short ones), so a batch holds at most 32.
EMBED_BATCH_CHARS = 16_000
EMBED_BATCH_MIN_CHARS = 500


def _embedding_size(doc) -> int:
    return max(EMBED_BATCH_MIN_CHARS, len(doc.text or "") if doc.is_pending else 0)


def embedding_batches(p: beam.Pipeline, paths: int) -> beam.PTransform:
    """Batches for the Embed stage: by text size (above), or by 16 documents on bag runners."""
    if _on_bags(p):
        return batches(p, 16, paths)
    return beam.BatchElements(min_batch_size=EMBED_BATCH_MIN_CHARS, max_batch_size=EMBED_BATCH_CHARS,
                              element_size_fn=_embedding_size)


def _estimated(doc):
    return balance.estimate_cost(doc), doc


def _one_list_per_lane(costed: list, lanes: int):
    """(lane, the whole list in share order) for each lane: every worker sees every document."""
    ordered = balance.share_order(costed)
    for lane in range(lanes):
        yield lane, ordered


class TakeUnclaimed(beam.DoFn):
    """Emits the documents of its lane's list that this worker claims first (transforms.balance)."""

    def __init__(self, claims_dir: str):
        self.claims_dir = claims_dir

    def process(self, item):
        _, lists = item
        for docs in lists:
            for doc in docs:
                # Claimed when the worker is ready for it: the stages after this one run on each
                # emitted document before the next is asked for (one stage, one bundle, per lane).
                if balance.claim(self.claims_dir, doc.id):
                    yield doc


class ShareIntoLanes(beam.PTransform):
    """Every document once, taken by whichever local worker process is free first.

    For the local FnApiRunner only, where `lanes` is its number of worker processes: it hands each
    worker one fixed share of a stage's input, the key groups dealt round-robin in the order the
    keys first appear, so with as many lanes (keys) as workers each worker gets one lane. Every lane
    holds the whole list; the workers claim documents from it in `claims_dir`, a directory all of
    them can write (the run's, on this machine). The estimates are made in parallel; ordering them
    handles one small record per document, in one place."""

    def __init__(self, lanes: int, claims_dir: str):
        super().__init__()
        self.lanes = lanes
        self.claims_dir = claims_dir

    def expand(self, pcoll):
        return (pcoll
                | "EstimateCost" >> beam.Map(_estimated)
                | "Gather" >> beam.combiners.ToList()
                | "OneListPerLane" >> beam.FlatMap(_one_list_per_lane, self.lanes)
                | "GroupByLane" >> beam.GroupByKey()
                | "TakeUnclaimed" >> beam.ParDo(TakeUnclaimed(self.claims_dir)))


def build(p: beam.Pipeline, input_spec: str, config: StageConfig, dsn: str, run_id: str,
          reprocess: bool = False, write_batch_size: int = 200, opensearch=None,
          retry_paths: list[str] | None = None, parquet=None, lanes: int = 0,
          claims_dir: str | None = None) -> beam.PCollection:
    """Wire read -> convert -> embed -> classify -> extract -> write; returns (id, status) pairs.

    `lanes` (the local runner's worker processes, when more than one) lets those workers take the
    documents from one shared list as they go (ShareIntoLanes, claiming them in `claims_dir`)
    instead of Beam's Reshuffle, which spreads them by count: the local runner does not move work
    between workers once a stage has started.

    `retry_paths` replaces the listing of `input_spec` with these paths (--retry-failed).
    `opensearch` (OpenSearchSettings) adds WriteToOpenSearch after WriteToPostgres.
    `parquet` (ParquetSettings, --parquet-out) adds WriteParquet after WriteToPostgres."""
    if retry_paths is not None:
        # --retry-failed: the paths come from the store (failed earlier), not from a listing.
        listed = len(retry_paths)
        files = (p
                 | "Input" >> beam.Create([FileRef(path) for path in retry_paths])
                 | "SpreadPaths" >> beam.Reshuffle())
    elif _on_bags(p):
        # Listed here, at submission, so that Create spreads the paths over partitions (Dask's
        # --dask_npartitions sets how many; by default one per 128 paths).
        refs = list(ExpandInput(dsn, run_id).process(input_spec))
        listed = len(refs)
        files = p | "Input" >> beam.Create(refs)
    else:
        listed = 0  # not known while the graph is built, and not needed: BatchElements adapts
        files = (
            p
            | "Input" >> beam.Create([input_spec])
            | "ListFiles" >> beam.ParDo(ExpandInput(dsn, run_id))
            | "SpreadPaths" >> beam.Reshuffle()
        )
    documents = (
        files
        | "HashContent" >> beam.ParDo(HashFile(config.max_file_size, config.archive_max_total_mb << 20,
                                               config.archive_max_ratio))
        # Archives, mailboxes and emails: each member (attachment) becomes an input of its own here,
        # on the worker, so that it works on every runner; then everything groups by content.
        | "ExpandContainers" >> beam.ParDo(ExpandContainers(config, dsn, run_id, reprocess))
        | "GroupByContent" >> beam.GroupByKey()
        | "MergePaths" >> beam.Map(merge_paths)
    )
    if not reprocess:
        documents = (
            documents
            | "BatchForLookup" >> batches(p, 500, listed)
            | "SkipCompleted" >> beam.ParDo(SkipCompleted(dsn, run_id, skip_failed=retry_paths is None))
        )
    if config.isolate_convert and not _on_bags(p):  # (a bag runner's workers convert elsewhere)
        documents = documents | "StartConverter" >> beam.ParDo(StartConverterEarly(config))
    if lanes > 1:
        if claims_dir is None:
            raise ValueError("lanes need a claims directory that every local worker process can write")
        documents = documents | "ShareIntoLanes" >> ShareIntoLanes(lanes, claims_dir)
    else:
        documents = documents | "SpreadDocuments" >> beam.Reshuffle()
    written = (
        documents
        | "Convert" >> beam.ParDo(ConvertDocument(config, ahead=not _on_bags(p)))
        # Embedding is the costly step: batching feeds the model many chunks per call.
        | "BatchForEmbedding" >> embedding_batches(p, listed)
        | "Embed" >> beam.ParDo(EmbedDocuments(config))
        | "Classify" >> beam.ParDo(ClassifyDocument(config))
        | "Extract" >> beam.ParDo(ExtractMetadata(config))
        | "BatchForWrite" >> batches(p, write_batch_size, listed)
        | "WriteToPostgres" >> beam.ParDo(WriteToPostgres(dsn, run_id, index_after=opensearch is not None,
                                                          pass_batches=parquet is not None))
    )
    if parquet is not None:
        # After the writer: each batch once committed, with the categories the store kept.
        from transforms.dofns import BatchOutcomes
        from transforms.write_parquet import WriteParquet, WriteParquetFiles

        if _on_bags(p):  # Beam's file sink cannot work there (see WriteParquetFiles): in the main line
            written = written | "WriteParquet" >> beam.ParDo(WriteParquetFiles(parquet, run_id))
        else:
            _ = written | "WriteParquet" >> WriteParquet(parquet, run_id)
        if opensearch is None:
            written = written | "Outcomes" >> beam.ParDo(BatchOutcomes())
    if opensearch is None:
        return written
    return written | "WriteToOpenSearch" >> beam.ParDo(WriteToOpenSearch(opensearch, dsn, run_id))
