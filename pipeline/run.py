"""python -m pipeline.run --input PATH [options]: process documents into the store.

Starts the embedded PostgreSQL unless --pg-dsn/PG_DSN names one, creates or migrates the schema,
records the run, runs the Beam pipeline (by default on every core of this machine), and prints a
summary. Exit status: 0 when the run completed (even if some documents failed: they are recorded),
2 for bad options or an unusable database, 1 if the pipeline itself crashed.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import signal
import sys
import tempfile
import threading
import time

if __name__ == "__main__":
    # Before the imports below (~1 s): the embedded PostgreSQL starts meanwhile (pipeline.embedded).
    from pipeline import embedded as _embedded

    _embedded.start_early(sys.argv[1:])

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions, StandardOptions,
                                                  WorkerOptions)

from pipeline import embedded, launch, startup, store
from pipeline.graph import build
from pipeline.options import (DocPipelineOptions, check_flags, opensearch_settings, parquet_settings,
                              stage_config)
from pipeline.progress import ProgressReporter
from pipeline.quiet import WorkerOutputFilter
from pipeline.watch import WorkerDied, WorkerWatch
from transforms import read

log = logging.getLogger("pipeline.run")

# Without --runner: Beam's FnApiRunner with one worker process per core. (Naming it directly also
# skips the DirectRunner's attempt to download the Prism runner binary, which fails offline.)
LOCAL_DEFAULTS = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                  "--direct_num_workers=0"]


class UsageError(Exception):
    pass


def with_local_defaults(argv: list[str]) -> list[str]:
    names = {a.split("=")[0] for a in argv}
    if "--runner" in names:
        return argv
    return argv + [d for d in LOCAL_DEFAULTS if d.split("=")[0] not in names]


def resolve_dsn(opts: DocPipelineOptions) -> str:
    """--pg-dsn, else PG_DSN, else the embedded server (started now)."""
    dsn = opts.pg_dsn or os.environ.get("PG_DSN")
    if dsn:
        return dsn
    return embedded.start(opts.data_dir)


def local_workers(options: PipelineOptions) -> int | None:
    """Number of local worker processes, or None when the runner is not local."""
    runner = options.view_as(StandardOptions).runner or ""
    if runner not in ("FnApiRunner", "DirectRunner", "BundleBasedDirectRunner"):
        return None
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode != "multi_processing":
        return 1
    return direct.direct_num_workers or os.cpu_count() or 1


def quieten_local_workers(level: str, data_dir: str) -> None:
    """Set the log level of local worker processes (default INFO: a line per converted document).

    The FnApiRunner hands its worker processes no pipeline options, so --default_sdk_harness_log_level
    never reaches them; Beam's worker entry point also reads options from the file named by
    PIPELINE_OPTIONS_FILE, which the worker processes inherit from us.
    """
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(os.path.abspath(data_dir), "worker-options.json")
    with open(path, "w") as fh:
        json.dump({"options": {"default_sdk_harness_log_level": level,
                               "sdk_harness_log_level_overrides": {"__main__": "ERROR"}}}, fh)
    os.environ["PIPELINE_OPTIONS_FILE"] = path


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def absolute_input(spec: str) -> str:
    """Local input specs made absolute, so the run record (and --verify) mean the same from any folder."""
    manifest = spec.startswith("@")
    path = spec[1:] if manifest else spec
    if read.is_local(path) and not path.startswith("file://"):
        path = os.path.abspath(path)
    return ("@" if manifest else "") + path


def validate(opts: DocPipelineOptions) -> None:
    if opts.retry_failed:
        if opts.input:
            raise UsageError("--retry-failed takes its paths from the store (those whose last outcome is "
                             "failed): give no --input with it")
        return
    if not opts.input:
        raise UsageError("--input is required (a folder, a glob, a file or @manifest.txt)")
    spec = opts.input[1:] if opts.input.startswith("@") else opts.input
    if read.is_local(spec) and not any(ch in spec for ch in "*?[") and not os.path.exists(spec):
        raise UsageError(f"input not found: {spec}")
    if not 0 <= opts.chunk_overlap < opts.chunk_tokens:
        raise UsageError("--chunk-overlap must be >= 0 and smaller than --chunk-tokens")
    if opts.categories_file and not os.path.exists(opts.categories_file):
        raise UsageError(f"categories file not found: {opts.categories_file}")
    if opts.examples_dir and not os.path.isdir(opts.examples_dir):
        raise UsageError(f"--examples: not a folder: {opts.examples_dir}")
    from transforms.convert import resolve_ocr_recognizer, resolve_ocr_runtime

    try:
        # Said now, not at the first scan: --ocr-runtime openvino without openvino, --ocr-recognizer
        # int8 on ONNX Runtime.
        resolve_ocr_recognizer(opts.ocr_recognizer, resolve_ocr_runtime(opts.ocr_runtime, opts.ocr_recognizer))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def with_examples(config, dsn: str):
    """The classifier's labelled examples (--examples and the store's corrections), prepared once here
    and shipped to the workers inside the stage configuration."""
    import dataclasses

    from transforms.classify import load_categories
    from transforms.examples import ExamplesError, prepare_examples

    names = [c.name for c in load_categories(config.categories_file)]
    try:
        examples, counts = prepare_examples(config.examples_dir, dsn, names, config)
    except ExamplesError as exc:
        raise UsageError(str(exc)) from None
    if examples or config.examples_dir:
        skipped = ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in ("unknown_category", "unreadable")
                            if counts[k])
        print(f"Classifier examples: {counts['folder']} from --examples, {counts['corrections']} from corrections "
              f"({counts['embedded']} newly embedded{'; skipped ' + skipped if skipped else ''})", flush=True)
    return dataclasses.replace(config, examples=tuple(examples))


def run(argv: list[str] | None = None) -> dict:
    """Run the pipeline; returns the run's summary (also printed). Raises UsageError/StoreError."""
    argv = with_local_defaults(launch.apply_profile(list(sys.argv[1:] if argv is None else argv)))
    check_flags(argv)  # a mistyped flag is an error here, not a warning Beam logs and ignores
    options = PipelineOptions(argv)
    opts = options.view_as(DocPipelineOptions)
    validate(opts)
    launch.check_remote(options, opts)  # workers elsewhere: network DSN, shared paths, project image
    startup.preflight(options)  # portable runners: a job service and local worker pool must be there
    input_spec = absolute_input(opts.input) if opts.input else store.RETRY_FAILED_INPUT
    if opts.categories_file:  # fail now, not in every worker
        from transforms.classify import load_categories
        load_categories(opts.categories_file)

    # Remote models are checked (and the embedding dimension read) before any document is read.
    from transforms.backends import embedder_identity, preflight
    from transforms.convert import check_pdf_pipeline
    models = stage_config(opts, model_threads=0)
    embedding_dim = preflight(models)
    check_pdf_pipeline(models)  # docling's standard pipeline: its models must be on this machine
    dsn = resolve_dsn(opts)
    store.migrate(dsn, embedding_dim)
    store.record_embedder(dsn, embedder_identity(models, embedding_dim))  # refuses a different embedder
    run_id = opts.run_id or new_run_id()
    workers = local_workers(options)
    # Inference threads per worker: as given, else the cores shared among local worker processes
    # (more threads than cores only adds contention), else the libraries' default on a cluster.
    threads = opts.model_threads or (max(1, (os.cpu_count() or 1) // workers) if workers else 0)
    config = stage_config(opts, model_threads=threads)
    if config.classifier == "embedding":
        config = with_examples(config, dsn)
    search_index = opensearch_settings(opts)  # OpenSearch sink, None unless --opensearch-url
    parquet = parquet_settings(opts, embedding_dim)  # Parquet files, None unless --parquet-out
    # Fewer malloc arenas: long-lived worker processes with threaded native libraries (torch, onnx)
    # otherwise fragment memory and grow over a long run. Inherited by local worker processes.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    if workers:
        quieten_local_workers(options.view_as(WorkerOptions).default_sdk_harness_log_level or "WARNING",
                              opts.data_dir)
    recorded = {k: v for k, v in opts.get_all_options(drop_default=True).items() if k != "pg_dsn"}
    retry_paths = store.failed_paths(dsn) if opts.retry_failed else None
    store.start_run(dsn, run_id, input_spec, recorded)
    if retry_paths is not None:  # known now; a listing would record it otherwise
        store.record_paths_total(dsn, run_id, len(retry_paths))

    # The reads above (examples, corrections, failed paths) cached a connection in this thread; the
    # counts at the end must not reuse it after idling through the run: a database restart meanwhile
    # would make its first use fail.
    store.close_session(dsn)
    print(f"Run {run_id}: processing {input_spec} into PostgreSQL {store.mask_dsn(dsn)}", flush=True)
    refresh = None
    if search_index:
        from transforms import write_opensearch

        print(f"  and OpenSearch {write_opensearch.mask_url(search_index.url)} ({search_index.index}-*)", flush=True)
        refresh = write_opensearch.start_run(search_index, embedding_dim)
    started = time.monotonic()
    status = "failed"
    beam_result = None
    if opts.bulk_load:
        store.drop_vector_index(dsn)

    # Local worker processes' start-up noise (and their tracebacks once one died) kept off the terminal.
    worker_output = (WorkerOutputFilter(os.path.join(os.path.abspath(opts.data_dir), "logs", f"{run_id}-workers.log"))
                     if workers else None)

    # Local worker processes take the documents from one shared list, claiming each with a file here
    # (transforms.balance); gone with the run.
    claims = tempfile.TemporaryDirectory(prefix="docpipe-claims-") if workers and workers > 1 else None

    def abandon(reason: str) -> None:
        """The watch ends the process itself (the runner did not stop): leave the store as `finally` would."""
        if worker_output is not None:
            worker_output.mute()
        if claims is not None:  # the process ends without unwinding the `with` that would remove it
            claims.cleanup()
        if search_index:
            write_opensearch.finish_run(search_index, refresh)
        if opts.bulk_load:
            store.create_vector_index(dsn)
        store.finish_run(dsn, run_id, "failed", {**store.run_counts(dsn, run_id), "error": f"worker died: {reason}"})

    def abandon_startup(reason: str) -> None:
        """The start-up watch ends the process itself (the runner did not stop): record the run failed."""
        if claims is not None:
            claims.cleanup()
        store.finish_run(dsn, run_id, "failed", {**store.run_counts(dsn, run_id), "error": reason})

    try:
        # Locally, a killed worker process would otherwise hang the run (see pipeline.watch).
        with (claims or contextlib.nullcontext()), (worker_output or contextlib.nullcontext()), \
                (WorkerWatch(abandon, on_death=worker_output.mute) if workers else contextlib.nullcontext()), \
                (startup.StartupWatch(dsn, run_id, opts.startup_timeout, options, abandon_startup)
                 if startup.watched(options) else contextlib.nullcontext()) as watch, \
                ProgressReporter(dsn, run_id), \
                beam.Pipeline(options=options) as p:
            if watch is not None:
                watch.pipeline = p  # its job is cancelled if no worker starts in time
            build(p, input_spec, config, dsn, run_id, reprocess=opts.reprocess,
                  write_batch_size=opts.write_batch_size, opensearch=search_index,
                  retry_paths=retry_paths, parquet=parquet, lanes=workers or 0,
                  claims_dir=claims.name if claims else None)
        beam_result = p.result
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"  # what was written stays; the next run skips it
        raise
    except (WorkerDied, startup.StartupFailed):
        status = "failed"
        raise
    finally:
        if search_index:
            write_opensearch.finish_run(search_index, refresh)
        if opts.bulk_load:
            print("building the vector index ...", flush=True)
            store.create_vector_index(dsn)
        elapsed = time.monotonic() - started
        counts = store.run_counts(dsn, run_id)
        counts["wall_seconds"] = round(elapsed, 2)
        counts["documents_per_second"] = round(counts["documents"] / elapsed, 3) if elapsed else None
        if beam_result is not None:  # per-stage counts and latency, for /metrics (pipeline.metrics)
            try:
                from pipeline.metrics import beam_stage_metrics
                counts["beam"] = beam_stage_metrics(beam_result)
            except Exception as exc:  # metrics are a report, never a reason to fail the run
                log.warning("could not read the run's Beam metrics: %s", exc)
        store.finish_run(dsn, run_id, status, counts)
    summary = {"run_id": run_id, "status": status, "dsn": store.mask_dsn(dsn), **counts}
    if worker_output is not None and worker_output.converter_messages:
        summary["converter_messages"] = worker_output.converter_messages
        summary["worker_log"] = worker_output.log_path
    print(format_summary(summary), flush=True)
    return summary


def format_summary(s: dict) -> str:
    failed = ", ".join(f"{k}: {v}" for k, v in sorted(s["failed_by_stage"].items())) or "none"
    categories = ", ".join(f"{k} {v}" for k, v in sorted(s["by_category"].items(), key=lambda kv: -kv[1]))
    return "\n".join([
        f"Run {s['run_id']} {s['status']} in {s['wall_seconds']:.1f} s",
        f"  paths seen           {s['paths']}",
        f"  documents            {s['documents']}  (+{s['duplicates']} paths with duplicate content)",
        f"  completed            {s['completed']}",
        f"  failed               {s['failed']}  ({failed})",
        *([f"  failed before        {s['failed_before']}  (unchanged, same pipeline version: not converted "
           f"again; --retry-failed retries them)"] if s.get("failed_before") else []),
        f"  skipped, unchanged   {s['skipped_unchanged']}",
        *_chunk_line(s.get("beam", {}).get("counters", {})),
        *([f"  waiting for index    {s['index_pending']}  (python -m pipeline.reindex)"]
          if s.get("index_pending") else []),
        *([f"  converter messages   {s['converter_messages']}  (docling's warnings about single documents: "
           f"{s['worker_log']})"] if s.get("converter_messages") else []),
        f"  by category          {categories or '-'}",
        f"  throughput           {s['documents_per_second'] or 0:.2f} documents/s",
        f"  results              PostgreSQL {s['dsn']}",
    ])


def _chunk_line(counters: dict) -> list[str]:
    """Chunks embedded, and those the Embed stage spared the model (not text, or repeated), from
    the run's Beam metrics; nothing when the runner reported none."""
    if "chunks_embedded" not in counters:
        return []
    from transforms.chunk_filter import REASONS

    skipped = {r: counters.get(f"chunks_skipped_{r}", 0) for r in REASONS}
    reasons = ", ".join(f"{r} {n}" for r, n in skipped.items() if n)
    return [f"  chunks               {counters['chunks_embedded']} stored; not embedded: "
            f"{sum(skipped.values())} not text{f' ({reasons})' if reasons else ''}, "
            f"{counters.get('chunks_deduplicated', 0)} repeats of another chunk"]


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM (what `kill`, systemd and Kubernetes send) stop the run as
    `interrupted`: what was written stays and the next run skips it. Set explicitly because a
    process started with SIGINT ignored (a background job of a non-interactive shell, some CI
    runners) would otherwise run on through a Ctrl-C, and SIGTERM's default action would end the
    process without recording the run. Signals can only be set from the main thread."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)


def print_help() -> None:
    """The pipeline's own options. Beam's PipelineOptions answers --help with its bare base parser
    (only `-h`), so the help is built here from DocPipelineOptions."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.run", description=(
        "Convert, classify, extract, embed and store every document of --input."),
        epilog="Beam's own options (--runner, --direct_num_workers, --job_endpoint, ...) pass through "
               "to Beam; see README.md for runners, profiles and examples.")
    DocPipelineOptions._add_argparse_args(parser)
    parser.print_help()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print_help()
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stop_on_signals()
    if "--watch" in args:  # continuous mode: repeated small runs over what changed (pipeline/sync.py)
        from pipeline import sync

        return sync.main(args)
    try:
        run(argv)
    except (UsageError, store.StoreError, embedded.EmbeddedPostgresError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: documents written so far are kept; run again to finish the rest",
              file=sys.stderr)
        return 130
    except (WorkerDied, startup.StartupFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
