"""The Beam graph. Every step is labelled: the labels are what Flink/Spark UIs and metrics show."""
from __future__ import annotations

import apache_beam as beam

from transforms.config import StageConfig
from transforms.dofns import (ClassifyDocument, ConvertDocument, EmbedDocuments, ExpandInput,
                              ExtractMetadata, HashFile, SkipCompleted, WriteToPostgres, merge_paths)


def build(p: beam.Pipeline, input_spec: str, config: StageConfig, dsn: str, run_id: str,
          reprocess: bool = False, write_batch_size: int = 200) -> beam.PCollection:
    """Wire read -> convert -> embed -> classify -> extract -> write; returns (id, status) pairs."""
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
            | "BatchForLookup" >> beam.BatchElements(min_batch_size=1, max_batch_size=500)
            | "SkipCompleted" >> beam.ParDo(SkipCompleted(dsn, run_id))
        )
    return (
        documents
        | "SpreadDocuments" >> beam.Reshuffle()
        | "Convert" >> beam.ParDo(ConvertDocument(config))
        # Embedding is the costly step: batching feeds the model many chunks per call.
        | "BatchForEmbedding" >> beam.BatchElements(min_batch_size=1, max_batch_size=16)
        | "Embed" >> beam.ParDo(EmbedDocuments(config))
        | "Classify" >> beam.ParDo(ClassifyDocument(config))
        | "Extract" >> beam.ParDo(ExtractMetadata(config))
        | "BatchForWrite" >> beam.BatchElements(min_batch_size=1, max_batch_size=write_batch_size)
        | "WriteToPostgres" >> beam.ParDo(WriteToPostgres(dsn, run_id))
    )
