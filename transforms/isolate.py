"""Conversion in a child process: a hang, a crash or a memory blow-up costs one document, not a worker.

docling, pdfium and the OCR runtime are native code; a hostile or broken file can make them hang,
segfault or allocate without bound. The child process gets each document's path, converts it with
the ordinary `Converter`, and sends back the result. The parent waits with a time limit while
watching the child's resident memory, kills it when either limit is passed, records the document
as failed with the reason, and starts a fresh child for the next document. Children are also
replaced after a number of documents so that slow leaks in native libraries cannot accumulate.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time

from transforms.config import StageConfig
from transforms.convert import ConversionError
from transforms.records import Document

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
STARTUP_TIMEOUT = 300.0  # seconds for a new converter process to import docling (slow on a busy machine)
RESULT_FIELDS = ("text", "pages", "mime", "converter", "landscape", "language", "page_image", "einvoice",
                 "source_meta")


def _child_main(conn, config: StageConfig) -> None:
    """Child loop: (filename, path) in, ("ok", fields, seconds) or ("error", message, seconds) out
    (seconds: the conversion's own time); None stops."""
    import signal

    from transforms import convert as convert_module
    from transforms import converter_log, read
    from transforms.convert import Converter

    # A Ctrl-C reaches the whole process group: the worker above decides what stops (it closes the
    # pipe or ends this process); a KeyboardInterrupt here would only print a traceback per child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    converter_log.install()
    fix_mmap_threshold()
    convert_module.LOAD_DOCLING_WITHOUT_SPEECH = True  # this process does nothing else
    converter = Converter(config)
    converter.docling  # import and build docling now, so per-document time limits measure conversion
    try:
        conn.send(("ready", None))
    except OSError:  # started early (start_early) by a worker that has ended meanwhile
        _exit_now()
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the worker is gone (stopped or killed): nothing more to do
            _exit_now()
        if request is None:
            _exit_now()
        filename, path = request
        if config.test_hang_marker and config.test_hang_marker in filename:
            time.sleep(3600)  # test hook: a converter that hangs
        doc = Document(id="", paths=[path], filename=filename or os.path.basename(path))
        converter_log.converting(path)
        started = time.perf_counter()
        try:
            converter.convert(doc, read.read_bytes(path, config.max_file_size))
            reply = ("ok", {f: getattr(doc, f) for f in RESULT_FIELDS})
        except (ConversionError, read.ReadError) as exc:
            reply = ("error", str(exc))
        except MemoryError:
            reply = ("error", "out of memory while converting")
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply + (time.perf_counter() - started,))
        release_freed_memory()


def _exit_now() -> None:
    """End the converter process without the interpreter's clean-up.

    Nothing in it needs flushing but the standard streams, and tearing down docling's modules and
    objects cost ~0.7-1.0 s of CPU per process at the end of every run (measured on the demo); a
    worker waits for its converter to end, and Beam stops local workers one after the other, so
    those seconds were the last ones of every run."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


TRIM_MARGIN_BYTES = 256 * 2**20


def release_freed_memory(margin: int = TRIM_MARGIN_BYTES) -> bool:
    """Hand memory freed by the last document back to the system (glibc's malloc_trim), when the
    process has grown by more than `margin` since the last time; returns whether it trimmed.

    glibc keeps freed heap memory in its arenas for reuse; page images, OCR buffers and docling's
    page objects of one large document otherwise stay resident for the rest of the process's life.
    Measured on the 183 real documents (one converter, Intel Xeon): peak 1,150 MB PSS without,
    690 MB with a trim after each document. A trim is not free, though: the next document faults
    the returned pages in again. After every document it cost 9 % of the converter's CPU over 190
    generated documents (25.3 -> 27.6 s, AMD EPYC); the documents that leave hundreds of MB behind
    are the OCR pages and large PDFs, and only after those does the margin let it run. Elsewhere
    than glibc: nothing."""
    global _trimmed_at
    libc = _glibc()
    if libc is None:
        return False
    rss = _resident_bytes()
    if _trimmed_at is not None and rss is not None and rss <= _trimmed_at + margin:
        return False
    libc.malloc_trim(0)
    _trimmed_at = _resident_bytes()
    return True


def _glibc():
    """The C library when it is glibc (it has malloc_trim and mallopt), looked up once; else None."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim, _libc.mallopt  # both are glibc's; another libc lacks them
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def _resident_bytes() -> int | None:
    """This process's resident set size from /proc (a read of a few bytes; None elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


_libc = None         # glibc, looked up on first use; False where there is none
_trimmed_at = None   # resident bytes right after the last trim
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 16 * 2**20


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Blocks of `nbytes` and more get their own mapping, returned to the system when freed.

    glibc starts at 128 KB and raises the threshold to the size of each mapped block freed, up to
    32 MB; after the first OCR page, the text detector's large activations land in the heap
    instead, where they leave holes that the next page's differently sized ones do not fit, and
    the converter's memory rises by far more than the detector needs. A fixed threshold ends that.
    Measured on the 183 real documents in one converter process, two runs side by side (AMD EPYC,
    busy shared machine): peak RSS 956 -> 882 MB, RSS after the last document 674 -> 625 MB, CPU
    of the OCR documents 89.9 -> 92.0 s (within noise), the same text. At 1 MB the peak fell
    further but OCR took ~40 % more CPU (page faults on every recognised line's buffers).
    Returns whether glibc took it (elsewhere than glibc: nothing)."""
    libc = _glibc()
    return bool(libc and libc.mallopt(M_MMAP_THRESHOLD, int(nbytes)))


@contextlib.contextmanager
def _main_module_hidden():
    """Start a spawned child without re-running this process's main module in it.

    A spawned child first imports the parent's __main__ again (as __mp_main__), so that functions
    defined there can be unpickled. A Beam worker's main is apache_beam's sdk_worker_main: every
    converter process imported Beam, gRPC and protobuf for nothing (its target lives in this
    module). Measured: +78 MB RSS, +57 MB anonymous memory in the converter process (of ~950 MB
    at its peak on the real corpus), and ~0.8 s more CPU to start it. multiprocessing decides what
    to re-import from sys.modules["__main__"] while `start()` runs (spawn.get_preparation_data), so
    a bare stand-in there for that moment leaves it out."""
    import sys
    import types

    with _main_swap_lock:  # two threads starting converters must not save each other's stand-in
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


_main_swap_lock = threading.Lock()


# A converter waiting here is taken over by the next IsolatedConverter of this process with the same
# settings instead of starting a process (docling's import costs 2-3 s of a core per start, ~8 s on
# a busy machine). At most one waits. Two ways one gets here:
# - start_early: a worker that has documents to convert starts its converter while the documents
#   are still being looked up and sorted, instead of when the first one reaches Convert;
# - KEEP_WARM, set by a process that runs pipeline after pipeline in itself (the small cycles of
#   `pipeline.run --watch`, pipeline/sync.py): a converter closed at the end of one run is parked.
KEEP_WARM = False
_parked: list = []
_parked_lock = threading.Lock()
_started_early = False


def start_early(config: StageConfig) -> None:
    """Start this worker process's converter process now and return without waiting for it; the
    Convert stage's IsolatedConverter takes it over. Once per process; a no-op where a converter is
    already waiting or cannot be started here (it is then started as usual, or fails as usual, at
    the first document)."""
    global _started_early
    with _parked_lock:
        if _started_early or _parked:
            return
        _started_early = True
    try:
        converter = IsolatedConverter(config)
        converter._start(wait=False)
    except Exception as exc:  # e.g. a daemonic worker (Dask): IsolatedConverter says why, later
        log.debug("converter not started early: %s", exc)
        return
    with _parked_lock:
        if not _parked:
            _parked.append(converter)
            return
    converter.shutdown()


def _converter_settings(config: StageConfig) -> StageConfig:
    import dataclasses

    return dataclasses.replace(config, examples=())  # the classifier's examples do not concern it


def close_parked() -> None:
    with _parked_lock:
        while _parked:
            _parked.pop().shutdown()


class IsolatedConverter:
    def __init__(self, config: StageConfig):
        if multiprocessing.current_process().daemon:
            # Python forbids children of daemonic processes; say so once, at set-up, instead of
            # failing every document. Dask's worker processes are daemonic unless configured not to be.
            raise RuntimeError(
                "this worker process is daemonic and cannot start the converter process: on Dask set "
                "DASK_DISTRIBUTED__WORKER__DAEMON=False for the workers, or run with --no-isolate-convert")
        self.config = config
        self.context = multiprocessing.get_context("spawn")  # no fork: parent holds threads and models
        self.process = None
        self.conn = None
        self.converted = 0
        self.last_seconds = 0.0   # how long the last collected document took to convert
        self._waiting = None      # the watch of the document in conversion (a Future), if any
        self._watcher = None      # the thread that watches it, started with the first document
        self.starting = False     # started, its "ready" not yet received
        with _parked_lock:
            if _parked and _converter_settings(_parked[0].config) == _converter_settings(config):
                warm = _parked.pop()
                self.process, self.conn, self.converted = warm.process, warm.conn, warm.converted
                self.starting = warm.starting

    def _start(self, wait: bool = True) -> None:
        parent_conn, child_conn = self.context.Pipe()
        process = self.context.Process(target=_child_main, args=(child_conn, self.config),
                                       name="docpipe-converter", daemon=True)
        with _main_module_hidden():
            process.start()
        self.process = process  # only once started: _kill must not kill a process that never ran
        child_conn.close()
        self.conn = parent_conn
        self.converted = 0
        self.starting = True
        if wait:
            self._await_ready()

    def _await_ready(self) -> None:
        self.starting = False
        try:
            ready = self.conn.poll(STARTUP_TIMEOUT) and self.conn.recv()[0] == "ready"
        except (EOFError, OSError):  # it ended while starting
            ready = False
        if not ready:
            self._kill()
            raise RuntimeError("the converter process did not start")

    def _kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join(5)
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None

    def close(self) -> None:
        self._abandon()
        if self._watcher is not None:
            self._watcher.shutdown()
            self._watcher = None
        if KEEP_WARM and self.process is not None and self.process.is_alive():
            with _parked_lock:
                if not _parked:
                    _parked.append(self)
                    return
        self.shutdown()

    def _abandon(self) -> None:
        """Closed with a document still in conversion (its bundle failed): end the converter
        process, which the watching thread then sees and clears up, and wait for that thread."""
        if self._waiting is None:
            return
        process = self.process
        if process is not None and not self._waiting.done():
            process.kill()
        with contextlib.suppress(Exception):  # whatever it ended with, that document is given up
            self._waiting.result()
        self._waiting = None

    def shutdown(self) -> None:
        """Stop the converter process (close() parks it instead, with KEEP_WARM)."""
        self._abandon()
        if self.process is not None and self.process.is_alive():
            try:
                self.conn.send(None)
                self.process.join(5)
            except (OSError, EOFError):
                pass
        self._kill()

    def convert(self, doc: Document) -> None:
        """Fill the document's converted fields, or raise ConversionError with the reason."""
        self.submit(doc)
        self.collect(doc)

    def submit(self, doc: Document) -> None:
        """Start converting `doc` in the converter process and return; `collect(doc)` waits for it.

        One document at a time: the worker goes on with the stages after conversion for the
        document before while this one converts. The time and memory limits are watched from now
        on by a thread of this process, so they hold while the worker is busy elsewhere."""
        if self._waiting is not None:
            raise RuntimeError("a document is already being converted: collect it first")
        if self.process is None or not self.process.is_alive():
            self._kill()  # (one that ended while starting still holds its pipe)
            self._start()
        elif self.starting:
            self._await_ready()
        elif self.config.recycle_after and self.converted >= self.config.recycle_after:
            self.shutdown()  # not close(): with KEEP_WARM that would park this very converter
            self._start()
        self.converted += 1
        self.conn.send((doc.filename, doc.primary_path))
        if self._watcher is None:
            from concurrent.futures import ThreadPoolExecutor

            self._watcher = ThreadPoolExecutor(1, thread_name_prefix="docpipe-convert-watch")
        self._waiting = self._watcher.submit(self._wait, time.monotonic())

    def collect(self, doc: Document) -> float:
        """Wait for the document `submit` sent and fill its converted fields, or raise
        ConversionError with the reason. Returns the seconds its conversion took (the converter
        process's own time; the time until the limit stopped it when it failed that way)."""
        if self._waiting is None:
            raise RuntimeError("no document is being converted")
        waiting, self._waiting = self._waiting, None
        status, payload, seconds = waiting.result()
        self.last_seconds = seconds
        if status == "error":
            raise ConversionError(payload)
        for field in RESULT_FIELDS:
            setattr(doc, field, payload[field])
        return seconds

    def _wait(self, submitted: float):
        """The converter process's reply (status, payload, seconds); a crash, the time limit or
        the memory limit ends the process and is returned as ("error", reason, seconds)."""
        try:
            return self._watch(submitted)
        except ConversionError as exc:
            return "error", str(exc), time.monotonic() - submitted

    def _watch(self, submitted: float):
        import psutil

        limit = self.config.convert_memory_mb * 2**20
        deadline = submitted + self.config.convert_timeout
        child = psutil.Process(self.process.pid)
        while True:
            try:
                if self.conn.poll(POLL_SECONDS):
                    return self.conn.recv()
            except (EOFError, OSError):
                code = self.process.exitcode if self.process else None
                self._kill()
                raise ConversionError(f"converter crashed (exit code {code}) on this document") from None
            if not self.process.is_alive():
                code = self.process.exitcode
                self._kill()
                raise ConversionError(f"converter crashed (exit code {code}) on this document")
            try:
                rss = child.memory_info().rss
            except psutil.Error:
                rss = 0
            if limit and rss > limit:
                self._kill()
                raise ConversionError(f"memory limit exceeded: the converter used over "
                                      f"{self.config.convert_memory_mb} MB (--convert-memory-mb)")
            if time.monotonic() > deadline:
                self._kill()
                raise ConversionError(f"timeout: conversion took longer than {self.config.convert_timeout:g} s "
                                      "(--convert-timeout)")
