"""--parquet-out: the run's documents and chunks as Parquet through Beam's Parquet sink.

A branch of the graph after WriteToPostgres: the writer passes on each batch once it is committed
(with the corrected categories the store kept), `DocumentsToArrow` turns it into Arrow tables per
category (transforms/parquet.py), and one Beam Parquet sink per (table, category) writes them
under PATH/{documents,chunks}/run_id=RUN/category=CATEGORY/. Beam's file sinks write temporary
files and move them into place when the write finalizes, on any Beam filesystem (local, gs://,
s3://, ...), and each worker bundle becomes a file of its own (sharded). On Dask, where that sink
cannot work inside this graph, `WriteParquetFiles` writes the same layout from the main line.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io import filebasedsink, parquetio
from apache_beam.metrics import Metrics

from transforms import parquet

NAMESPACE = "docpipe"


@dataclasses.dataclass(frozen=True)
class ParquetSettings:
    path: str                  # any Beam filesystem path: the folder that gets documents/ and chunks/
    dimension: int             # of the embedding vectors (fixed-size lists)
    categories: tuple[str, ...]  # configured categories plus `other`: one partition each
    codec: str = "zstd"


class _ParquetSink(parquetio._ParquetSink):
    """Beam's Parquet sink (what WriteToParquetBatched writes through) with two settings it does not
    expose: no file for a partition without rows (Beam's default writes an empty one), and dictionary
    encoding only for the columns whose values repeat (parquet.DICTIONARY_COLUMNS)."""

    def __init__(self, prefix: str, schema, codec: str, dictionary: list[str], num_shards: int):
        super().__init__(prefix, schema, codec, use_deprecated_int96_timestamps=False,
                         use_compliant_nested_type=True, file_name_suffix=".parquet", num_shards=num_shards,
                         shard_name_template=None, mime_type="application/x-parquet", triggering_frequency=None)
        self._dictionary = dictionary
        self.skip_if_empty = True  # FileBasedSink sets it (False) per instance

    def open(self, temp_path):
        self._file_handle = filebasedsink.FileBasedSink.open(self, temp_path)
        return pq.ParquetWriter(self._file_handle, self._schema, compression=self._codec,
                                use_compliant_nested_type=True, use_dictionary=self._dictionary)


class DocumentsToArrow(beam.DoFn):
    """Batch of written Documents -> ((table, category), pyarrow.Table) per table and category.
    Emits in process(), never in finish_bundle."""

    def __init__(self, dimension: int):
        self.dimension = dimension

    def setup(self):
        self.rows = Metrics.counter(NAMESPACE, "parquet_documents")

    def process(self, batch):
        now = dt.datetime.now(dt.timezone.utc)
        for category, (documents, chunks) in parquet.tables_for_batch(batch, self.dimension, now).items():
            self.rows.inc(documents.num_rows)
            yield (parquet.DOCUMENTS, category), documents
            if chunks.num_rows:
                yield (parquet.CHUNKS, category), chunks


class _NoEmptyPartitionWarnings(logging.Filter):
    """A category no document of the run has is no file, by design (skip_if_empty): Beam warns about
    each one ("No shards found to finalize"), directly or relayed from the worker processes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No shards found to finalize" not in record.getMessage()


def _quieten_empty_partitions() -> None:
    for name in ("apache_beam.io.filebasedsink", "apache_beam.runners.portability.local_job_service"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoEmptyPartitionWarnings) for f in logger.filters):
            logger.addFilter(_NoEmptyPartitionWarnings())


# Here, not in WriteParquet: worker processes import this module (for DocumentsToArrow) but never
# construct the transform.
_quieten_empty_partitions()


class WriteParquet(beam.PTransform):
    """PCollection of written Document batches -> Parquet files through Beam's Parquet sink; returns
    the written file names. One sink per (table, category), each a file per worker bundle."""

    def __init__(self, settings: ParquetSettings, run_id: str):
        super().__init__()
        self.settings = settings
        self.run_id = run_id

    def partitions(self) -> list[tuple[str, str | None]]:
        names = list(dict.fromkeys(self.settings.categories)) + [None]  # None: failed before Classify
        return [(table, name) for table in (parquet.DOCUMENTS, parquet.CHUNKS) for name in names]

    def expand(self, batches):
        keys = self.partitions()
        index = {key: i for i, key in enumerate(keys)}

        def route(item) -> int:
            (table, category), _ = item
            found = index.get((table, category))
            if found is None:  # a category the configuration does not name: not expected; keep it anyway
                found = index[(table, "other")] if (table, "other") in index else index[(table, None)]
            return found

        # One Filter per partition rather than beam.Partition (same result; Filters fuse).
        tables = batches | "ToArrow" >> beam.ParDo(DocumentsToArrow(self.settings.dimension))
        files = []
        for i, (table, category) in enumerate(keys):
            folder = parquet.partition_dir(self.settings.path, table, self.run_id, category)
            sink = _ParquetSink(f"{folder}/part", parquet.schema_for(table, self.settings.dimension),
                                self.settings.codec, parquet.DICTIONARY_COLUMNS[table], 0)
            label = f"{table}/{parquet.partition_value(category)}"
            files.append(tables
                         | f"Select {label}" >> beam.Filter(lambda item, i=i: route(item) == i)
                         | f"Tables {label}" >> beam.Values()
                         | f"Write {label}" >> beam.io.Write(sink))
        return files | "Files" >> beam.Flatten()


class WriteParquetFiles(beam.DoFn):
    """Bag runners (Dask): batch of written Documents -> the same batch, after writing its Parquet
    files directly (one per table and category, uniquely named), in the same layout.

    Beam's file sink does not work on Beam 2.77's DaskRunner inside this graph: the runner computes
    only what the graph's last step depends on (a side branch never runs), runs a ParDo's tagged
    outputs into every consumer, drops what finish_bundle emits, and computes a side input's branch
    again (documents written twice). A step in the main line has none of these problems. A task
    that Dask retries may leave a file of its first attempt."""

    def __init__(self, settings: ParquetSettings, run_id: str):
        self.settings = settings
        self.run_id = run_id

    def setup(self):
        self.rows = Metrics.counter(NAMESPACE, "parquet_documents")

    def process(self, batch):
        import uuid

        from apache_beam.io.filesystems import FileSystems

        now = dt.datetime.now(dt.timezone.utc)
        for category, (documents, chunks) in parquet.tables_for_batch(batch, self.settings.dimension, now).items():
            self.rows.inc(documents.num_rows)
            for table, data in ((parquet.DOCUMENTS, documents), (parquet.CHUNKS, chunks)):
                if not data.num_rows:
                    continue
                folder = parquet.partition_dir(self.settings.path, table, self.run_id, category)
                with FileSystems.create(f"{folder}/part-{uuid.uuid4().hex}.parquet") as handle:
                    pq.write_table(data, handle, compression=self.settings.codec,
                                   use_dictionary=parquet.DICTIONARY_COLUMNS[table])
        yield batch
