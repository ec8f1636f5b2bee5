"""Every flag of `python -m pipeline.run`: its default and its help, in one place.

Beam's own options (--runner, --direct_num_workers, --flink_master, ...) pass through unchanged.
"""
from __future__ import annotations

import os

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.embedded import DEFAULT_DATA_DIR
from transforms.backends import CLASSIFIERS, EMBEDDERS, EXTRACTORS
from transforms.config import StageConfig
from transforms.convert import OCR_DETECTORS, OCR_RECOGNIZERS, OCR_RUNTIMES


class DocPipelineOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        d = StageConfig()
        parser.add_argument("--input", required=False,
                            help="What to process: a folder (recursive), a glob (** spans folders), a file, "
                                 "or @MANIFEST (a text file with one path or glob per line). Any filesystem "
                                 "Beam knows: local, gs://, s3://, hdfs://.")
        parser.add_argument("--data-dir", dest="data_dir", default=DEFAULT_DATA_DIR,
                            help="Folder of the embedded PostgreSQL (created on first use). "
                                 "Ignored when --pg-dsn or PG_DSN is set. Default: %(default)s")
        parser.add_argument("--pg-dsn", dest="pg_dsn", default=None,
                            help="External PostgreSQL (with pgvector) instead of the embedded one, "
                                 "e.g. postgresql://user@host/db. Default: the PG_DSN environment variable.")
        parser.add_argument("--run-id", dest="run_id", default=None,
                            help="Name of this run (default: a timestamp).")
        parser.add_argument("--reprocess", action="store_true", default=False,
                            help="Process every document again, even those completed by an earlier run.")
        parser.add_argument("--retry-failed", dest="retry_failed", action="store_true", default=False,
                            help="Instead of listing --input, process again every path whose last outcome "
                                 "is failed (after fixing a cause: more memory, a longer time limit, ...).")
        parser.add_argument("--bulk-load", dest="bulk_load", action="store_true", default=False,
                            help="Drop the chunks' vector index during the run and build it once at the end: "
                                 "much faster for large first loads; search is slow until the run ends.")
        parser.add_argument("--max-file-size", dest="max_file_size", type=int, default=d.max_file_size,
                            help="Bytes; larger files are recorded as failed. Default: %(default)s")
        parser.add_argument("--max-pages", dest="max_pages", type=int, default=d.max_pages,
                            help="PDFs and multi-page TIFFs with more pages are recorded as failed. Default: %(default)s")
        parser.add_argument("--archive-max-total-mb", dest="archive_max_total_mb", type=int,
                            default=d.archive_max_total_mb,
                            help="Archives/mailboxes: uncompressed MB over the whole (nested) archive; above "
                                 "it the archive is recorded as failed. Default: %(default)s")
        parser.add_argument("--archive-max-members", dest="archive_max_members", type=int,
                            default=d.archive_max_members,
                            help="Members over a whole (nested) archive; more fail the archive. Default: %(default)s")
        parser.add_argument("--archive-max-ratio", dest="archive_max_ratio", type=float,
                            default=d.archive_max_ratio,
                            help="Compression ratio of a member (over 1 MB) above which it is refused as a "
                                 "decompression bomb. Default: %(default)s")
        parser.add_argument("--archive-max-depth", dest="archive_max_depth", type=int,
                            default=d.archive_max_depth,
                            help="Containers inside containers opened, the outermost being 1. Default: %(default)s")
        parser.add_argument("--vlm-model", dest="vlm_model", default=d.vlm_model,
                            help="--pdf-pipeline vlm: the vision model on the Ollama hosts (--ollama-host) that "
                                 "transcribes each PDF page. Default: %(default)s")
        parser.add_argument("--pdf-pipeline", dest="pdf_pipeline", choices=("native", "standard", "vlm"),
                            default=d.pdf_pipeline,
                            help="native: docling's model-free text-layer reader (default, works offline). "
                                 "standard: docling's layout/table models (they must be on the machine). "
                                 "vlm: a vision model on Ollama transcribes each page (--vlm-model).")
        parser.add_argument("--docling-artifacts", dest="docling_artifacts",
                            default=os.environ.get("DOCLING_ARTIFACTS_PATH"),
                            help="Folder of docling's models (`docling-tools models download -o DIR`) for "
                                 "--pdf-pipeline standard on machines without internet. "
                                 "Default: $DOCLING_ARTIFACTS_PATH")
        parser.add_argument("--ocr", choices=("auto", "off"), default=d.ocr,
                            help="auto: OCR images and PDF pages without a text layer (rapidocr). Default: auto")
        parser.add_argument("--ocr-runtime", dest="ocr_runtime", choices=OCR_RUNTIMES,
                            default=d.ocr_runtime,
                            help="What runs the OCR's text recognizer (most of OCR's time). auto: OpenVINO "
                                 "on CPUs that compute bfloat16 natively (AVX512-BF16, AMX: ~1.7x faster than "
                                 "ONNX Runtime, as accurate) and for --ocr-recognizer int8, ONNX Runtime in "
                                 "float32 elsewhere. Default: %(default)s")
        parser.add_argument("--ocr-recognizer", dest="ocr_recognizer", choices=OCR_RECOGNIZERS,
                            default=d.ocr_recognizer,
                            help="The OCR's text recognizer: float (rapidocr's own) or int8 (a quantised copy "
                                 "run by OpenVINO: ~1.35x faster per line than bfloat16 on CPUs with VNNI, as "
                                 "accurate on the measured pages, ~50 MB more memory per converter process). "
                                 "auto: int8 where OpenVINO runs the recognizer on a CPU with VNNI, float "
                                 "elsewhere. Default: %(default)s")
        parser.add_argument("--ocr-detector", dest="ocr_detector", choices=OCR_DETECTORS,
                            default=d.ocr_detector,
                            help="The OCR's text detector: int8 (a quantised copy of rapidocr's, ~1.9x "
                                 "faster, as accurate on the measured pages) or fp32 (rapidocr's own). auto: "
                                 "int8 on CPUs with int8 dot products (VNNI), fp32 elsewhere. Default: %(default)s")
        parser.add_argument("--ocr-max-pages", dest="ocr_max_pages", type=int, default=d.ocr_max_pages,
                            help="OCR at most this many pages per document. Default: %(default)s")
        parser.add_argument("--no-isolate-convert", dest="isolate_convert", action="store_false",
                            default=d.isolate_convert,
                            help="Convert inside the worker process (no time/memory limits, no recycling).")
        parser.add_argument("--convert-timeout", dest="convert_timeout", type=float, default=d.convert_timeout,
                            help="Seconds one document may take to convert; then it fails with a timeout. "
                                 "Default: %(default)s")
        parser.add_argument("--convert-memory-mb", dest="convert_memory_mb", type=int,
                            default=d.convert_memory_mb,
                            help="Memory the converter process may use; above it the document fails. "
                                 "Default: %(default)s")
        parser.add_argument("--recycle-after", dest="recycle_after", type=int, default=d.recycle_after,
                            help="Start a fresh converter process after this many documents (0 = never). "
                                 "Default: %(default)s")
        parser.add_argument("--classifier", choices=CLASSIFIERS, default=d.classifier,
                            help="Classification backend. Default: %(default)s (zero-shot, embedding similarity)")
        parser.add_argument("--categories", dest="categories_file", default=None,
                            help="YAML/JSON file of categories and descriptions (default: the packaged set).")
        parser.add_argument("--examples", dest="examples_dir", default=None,
                            help="Folder of labelled documents (labels.csv with file,category, or one "
                                 "sub-folder per category): the classifier learns from them. Their vectors "
                                 "are cached in the store; corrections made by users are used too.")
        parser.add_argument("--classify-threshold", dest="classify_threshold", type=float,
                            default=d.classify_threshold,
                            help="Confidence below which a document is `other`. Default: %(default)s")
        parser.add_argument("--extractor", choices=EXTRACTORS, default=d.extractor,
                            help="Metadata extraction backend. Default: %(default)s")
        parser.add_argument("--embedder", choices=EMBEDDERS, default=d.embedder,
                            help="Embedding backend. Default: %(default)s (packaged all-MiniLM-L6-v2, 384 dims)")
        parser.add_argument("--chunk-tokens", dest="chunk_tokens", type=int, default=d.chunk_tokens,
                            help="Chunk size in model tokens. Default: %(default)s")
        parser.add_argument("--chunk-overlap", dest="chunk_overlap", type=int, default=d.chunk_overlap,
                            help="Tokens shared by consecutive chunks. Default: %(default)s (windows end at a line or "
                                 "sentence end instead)")
        parser.add_argument("--embed-batch-size", dest="embed_batch_size", type=int,
                            default=d.embed_batch_size,
                            help="Chunks per model call; 0 = the backend's best (local MiniLM 1 on ONNX int8, "
                                 "8 on torch; Ollama 32 per request). Default: %(default)s")
        parser.add_argument("--embed-precision", dest="embed_precision", choices=("auto", "fp32", "bf16", "int8"),
                            default=d.embed_precision,
                            help="MiniLM arithmetic: auto = bf16 on CPUs with AMX (2.6-3x faster, vectors at "
                                 "cosine 0.99998 to fp32), else int8 (ONNX Runtime) on CPUs with VNNI (~1.8x "
                                 "faster, cosine ~0.99), else fp32. Default: %(default)s")
        parser.add_argument("--model-threads", dest="model_threads", type=int, default=d.model_threads,
                            help="Threads per worker for model inference; 0 = cores / local workers.")
        parser.add_argument("--write-batch-size", dest="write_batch_size", type=int, default=200,
                            help="Documents per database transaction (upper bound). Default: %(default)s")
        # -- continuous mode (pipeline/sync.py): read there, removed from each cycle's run --
        parser.add_argument("--watch", action="store_true", default=False,
                            help="Keep --input (a folder or bucket prefix) in sync: every --watch-interval seconds "
                                 "process what is new or changed and mark what was deleted, until stopped.")
        parser.add_argument("--watch-interval", dest="watch_interval", type=float, default=2.0,
                            help="--watch: seconds between listings of the folder. Default: %(default)s")
        parser.add_argument("--watch-settle", dest="watch_settle", type=float, default=1.0,
                            help="--watch: a file modified less than this many seconds ago waits for the next "
                                 "cycle (it may still be being written). Default: %(default)s")
        parser.add_argument("--watch-small", dest="watch_small", type=int, default=20,
                            help="--watch: cycles of at most this many files run in the watch's own process "
                                 "(models stay loaded); larger ones on the configured runner, once the files "
                                 "stop arriving (up to 15 s). Default: %(default)s")
        # -- cluster runs (pipeline/launch.py, launch/README.md) --
        parser.add_argument("--profile", default=None,
                            help="Fill runner options from this profile of the profiles file (local, portable, "
                                 "dask, flink, spark, ...); flags given on the command line win.")
        parser.add_argument("--profiles-file", dest="profiles_file", default=None,
                            help="YAML file of profiles. Default: $DOCPIPE_PROFILES, else launch/profiles.yaml")
        parser.add_argument("--input-is-shared", dest="input_is_shared", action="store_true", default=False,
                            help="On a runner whose workers run elsewhere: the local paths given (--input, "
                                 "--categories) are mounted at the same place on every worker (NFS, a volume).")
        parser.add_argument("--startup-timeout", dest="startup_timeout", type=float, default=60.0,
                            help="Portable runners (PortableRunner, Flink, Spark): seconds the workers may take to "
                                 "start; a run in which no worker has begun work by then is cancelled and fails "
                                 "with the reason (0 = wait as long as Beam does). Default: %(default)s")
        # -- OpenSearch sink and search backend (credentials/TLS from OPENSEARCH_* env, see README) --
        parser.add_argument("--opensearch-url", dest="opensearch_url", default=None,
                            help="Also index documents into OpenSearch at this URL (http(s)://host:9200); "
                                 "a document is completed once both stores have it. Default: off")
        parser.add_argument("--opensearch-index", dest="opensearch_index", default="docpipe",
                            help="Prefix of the OpenSearch aliases PREFIX-documents and PREFIX-chunks. "
                                 "Default: %(default)s")
        parser.add_argument("--opensearch-bulk-actions", dest="opensearch_bulk_actions", type=int, default=500,
                            help="Actions per OpenSearch bulk request (upper bound). Default: %(default)s")
        parser.add_argument("--opensearch-bulk-mb", dest="opensearch_bulk_mb", type=float, default=5.0,
                            help="Megabytes per OpenSearch bulk request (upper bound). Default: %(default)s")
        # -- Parquet out (transforms/write_parquet.py) --
        parser.add_argument("--parquet-out", dest="parquet_out", default=None,
                            help="Also write the run's documents and chunks as Parquet under this folder (any "
                                 "Beam filesystem: local, gs://, s3://), partitioned by run and category. "
                                 "Default: off")
        # -- Ollama backends (--classifier/--extractor/--embedder ollama) --
        parser.add_argument("--classify-model", dest="classify_model", default=d.classify_model,
                            help="Ollama vision model for --classifier ollama. Default: %(default)s")
        parser.add_argument("--extract-model", dest="extract_model", default=d.extract_model,
                            help="Ollama model for --extractor ollama. Default: %(default)s")
        parser.add_argument("--embed-model", dest="embed_model", default=d.embed_model,
                            help="Ollama embedding model for --embedder ollama. Default: %(default)s")
        parser.add_argument("--ollama-host", dest="ollama_host", default=os.environ.get("OLLAMA_HOST"),
                            help="Ollama server(s), comma-separated (requests go round-robin). "
                                 "Default: the OLLAMA_HOST environment variable, else 127.0.0.1:11434")
        parser.add_argument("--ollama-max-inflight", dest="ollama_max_inflight", type=int,
                            default=d.ollama_max_inflight,
                            help="Concurrent Ollama requests per worker process. Default: %(default)s")
        parser.add_argument("--ollama-timeout", dest="ollama_timeout", type=float, default=d.ollama_timeout,
                            help="Seconds one Ollama request may take. Default: %(default)s")
        parser.add_argument("--ollama-retries", dest="ollama_retries", type=int, default=d.ollama_retries,
                            help="Retries per Ollama request on busy/5xx/connection errors. Default: %(default)s")


def stage_config(opts: DocPipelineOptions, model_threads: int) -> StageConfig:
    return StageConfig(
        pdf_pipeline=opts.pdf_pipeline, ocr=opts.ocr, ocr_max_pages=opts.ocr_max_pages, vlm_model=opts.vlm_model,
        ocr_runtime=opts.ocr_runtime, ocr_detector=opts.ocr_detector, ocr_recognizer=opts.ocr_recognizer,
        docling_artifacts=os.path.abspath(opts.docling_artifacts) if opts.docling_artifacts else None,
        max_file_size=opts.max_file_size, max_pages=opts.max_pages,
        archive_max_total_mb=opts.archive_max_total_mb, archive_max_members=opts.archive_max_members,
        archive_max_ratio=opts.archive_max_ratio, archive_max_depth=opts.archive_max_depth,
        isolate_convert=opts.isolate_convert,
        convert_timeout=opts.convert_timeout, convert_memory_mb=opts.convert_memory_mb,
        recycle_after=opts.recycle_after, classifier=opts.classifier,
        categories_file=os.path.abspath(opts.categories_file) if opts.categories_file else None,
        examples_dir=os.path.abspath(opts.examples_dir) if opts.examples_dir else None,
        classify_threshold=opts.classify_threshold, extractor=opts.extractor, embedder=opts.embedder,
        chunk_tokens=opts.chunk_tokens, chunk_overlap=opts.chunk_overlap,
        embed_batch_size=opts.embed_batch_size, embed_precision=opts.embed_precision,
        model_threads=model_threads,
        **ollama_config(opts),
    )


def ollama_config(opts: DocPipelineOptions) -> dict:
    """StageConfig fields of the Ollama backends; the first page is rendered only for a classifier
    that looks at it."""
    from transforms.backends.ollama import parse_hosts

    return dict(
        classify_model=opts.classify_model, extract_model=opts.extract_model, embed_model=opts.embed_model,
        ollama_hosts=parse_hosts(opts.ollama_host) if opts.ollama_host else (),
        ollama_max_inflight=opts.ollama_max_inflight, ollama_timeout=opts.ollama_timeout,
        ollama_retries=opts.ollama_retries, page_image_px=1024 if opts.classifier == "ollama" else 0,
    )


def opensearch_settings(opts: DocPipelineOptions):
    """OpenSearchSettings from --opensearch-* (and OPENSEARCH_* env), or None when not configured."""
    if not opts.opensearch_url:
        return None
    from transforms.write_opensearch import OpenSearchSettings

    return OpenSearchSettings.from_env(opts.opensearch_url, index=opts.opensearch_index,
                                       bulk_actions=opts.opensearch_bulk_actions,
                                       bulk_bytes=int(opts.opensearch_bulk_mb * 1024 * 1024))


def parquet_settings(opts: DocPipelineOptions, dimension: int):
    """ParquetSettings from --parquet-out (the embedding dimension from the embedder), or None."""
    if not opts.parquet_out:
        return None
    from apache_beam.io.filesystems import FileSystems

    from transforms.classify import OTHER, load_categories
    from transforms.write_parquet import ParquetSettings

    path = opts.parquet_out
    if FileSystems.get_scheme(path) is None:  # local: absolute, so remote-looking runs mean the same
        path = os.path.abspath(path)
    names = tuple(c.name for c in load_categories(opts.categories_file)) + (OTHER,)
    return ParquetSettings(path=path, dimension=dimension, categories=names)


class UnknownOptionError(ValueError):
    """A flag that neither docpipe nor Beam knows (exit status 2)."""


def check_flags(argv: list[str]) -> None:
    """Refuse a mistyped or unknown flag, and a bad value of a known one, with one clear line.

    Beam's own parser keeps what it knows and drops the rest with a warning lost in the log, so
    `--chunk-tokns 100` used to run with the default. Here every options class Beam knows (its
    own, runner ones, and DocPipelineOptions) parses argv the way Beam will, without abbreviations;
    whatever is left over is an error naming the closest known flag. Beam's options still pass.
    """
    import difflib
    import importlib

    from apache_beam.options.pipeline_options import _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):  # argparse would print its whole usage and exit
            raise UnknownOptionError(message)

    for i, arg in enumerate(argv):  # a runner named by module path registers its options on import
        runner = arg.split("=", 1)[1] if arg.startswith("--runner=") else (
            arg if i and argv[i - 1] == "--runner" else "")
        if "." in runner:
            try:
                importlib.import_module(runner.rsplit(".", 1)[0])
            except Exception:  # Beam itself reports an unknown runner, with its own message
                pass
    parser = Parser(allow_abbrev=False, add_help=False)
    seen: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():  # as Beam's get_all_options collects them
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(argv)
    flags = [a for a in unknown if a.startswith("-")]
    if not flags:
        return
    name = flags[0].split("=", 1)[0]
    known = [s for action in parser._actions for s in action.option_strings]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75) or \
        difflib.get_close_matches(name.replace("_", "-"), known, n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]}?)" if close else " (python -m pipeline.run --help lists the options)"
    more = f"; also {', '.join(f.split('=', 1)[0] for f in flags[1:])}" if len(flags) > 1 else ""
    raise UnknownOptionError(f"unknown option {name}{hint}{more}")
