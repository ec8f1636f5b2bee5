"""The Beam graph. Every step is labelled: the labels are what Flink/Spark UIs and metrics show."""
from __future__ import annotations

import zlib

import apache_beam as beam

from transforms.config import StageConfig
from transforms.dofns import (ClassifyDocument, ConvertDocument, EmbedDocuments, ExpandInput,
                              ExtractMetadata, HashFile, SkipCompleted, WriteToOpenSearch, WriteToPostgres,
                              merge_paths)


# Runners that drop what a DoFn emits in finish_bundle. Beam's DaskRunner (2.77) collects a bundle's
# output before it calls finish_bundle, so BatchElements, which emits its last (on small inputs its
# only) batch there, loses documents. On these runners batches are formed by a GroupByKey instead.
FINISH_BUNDLE_LOSSY_RUNNERS = {"DaskRunner"}
KEYED_BATCH_SHARDS = 16


def _shard_key(doc, shards: int = KEYED_BATCH_SHARDS):
    """(shard, doc): a stable shard from the content id, so a shard's documents group together."""
    return zlib.crc32(doc.id.encode()) % shards, doc


def _split(item, max_size: int):
    _, docs = item
    docs = list(docs)
    for start in range(0, len(docs), max_size):
        yield docs[start:start + max_size]


class KeyedBatches(beam.PTransform):
    """Lists of at most max_size elements, formed by a GroupByKey over a few shards (see above)."""

    def __init__(self, max_size: int):
        super().__init__()
        self.max_size = max_size

    def expand(self, pcoll):
        return (pcoll
                | "Shard" >> beam.Map(_shard_key)
                | "Group" >> beam.GroupByKey()
                | "Split" >> beam.FlatMap(_split, self.max_size))


def batches(p: beam.Pipeline, max_size: int) -> beam.PTransform:
    """BatchElements (adaptive sizes, no shuffle) where the runner keeps finish_bundle output."""
    if type(p.runner).__name__ in FINISH_BUNDLE_LOSSY_RUNNERS:
        return KeyedBatches(max_size)
    return beam.BatchElements(min_batch_size=1, max_batch_size=max_size)


def build(p: beam.Pipeline, input_spec: str, config: StageConfig, dsn: str, run_id: str,
          reprocess: bool = False, write_batch_size: int = 200, opensearch=None) -> beam.PCollection:
    """Wire read -> convert -> embed -> classify -> extract -> write; returns (id, status) pairs.

    `opensearch` (OpenSearchSettings) adds WriteToOpenSearch after WriteToPostgres."""
    documents = (
        p
        | "Input" >> beam.Create([input_spec])
        | "ListFiles" >> beam.ParDo(ExpandInput(dsn, run_id))
        | "SpreadPaths" >> beam.Reshuffle()
        | "HashContent" >> beam.ParDo(HashFile(config.max_file_size))
        | "GroupByContent" >> beam.GroupByKey()
        | "MergePaths" >> beam.Map(merge_paths)
    )
    if not reprocess:
        documents = (
            documents
            | "BatchForLookup" >> batches(p, 500)
            | "SkipCompleted" >> beam.ParDo(SkipCompleted(dsn, run_id))
        )
    written = (
        documents
        | "SpreadDocuments" >> beam.Reshuffle()
        | "Convert" >> beam.ParDo(ConvertDocument(config))
        # Embedding is the costly step: batching feeds the model many chunks per call.
        | "BatchForEmbedding" >> batches(p, 16)
        | "Embed" >> beam.ParDo(EmbedDocuments(config))
        | "Classify" >> beam.ParDo(ClassifyDocument(config))
        | "Extract" >> beam.ParDo(ExtractMetadata(config))
        | "BatchForWrite" >> batches(p, write_batch_size)
        | "WriteToPostgres" >> beam.ParDo(WriteToPostgres(dsn, run_id, index_after=opensearch is not None))
    )
    if opensearch is None:
        return written
    return written | "WriteToOpenSearch" >> beam.ParDo(WriteToOpenSearch(opensearch, dsn, run_id))
