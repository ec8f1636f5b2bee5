"""Keep Beam's local worker processes from talking over the run's own output.

On the local runner every worker process writes to the terminal it inherited: at start-up Beam logs
"apitools not found, and bigquery client libraries are not available ...", "Logging handler
created.", "Load pipeline options from file ..." (each once per worker), and when one worker is
killed the survivors (and its converter process) print long gRPC tracebacks while the run is being
stopped anyway. None of it tells a user anything; it hides the progress lines and the summary.

`WorkerOutputFilter` puts a pipe in place of file descriptor 2 for the duration of the run, so the
worker processes (which inherit it) write into the pipe; a thread forwards every line to the real
terminal except the known start-up noise and the traceback blocks a worker's death sets off, and,
once `mute()` is called (a worker died, the run is ending), everything. Docling's warnings about
single documents, one line each from the converter processes (transforms.converter_log), are held
back too and counted (`converter_messages`, in the run's summary). What it holds back goes to
a log file, so nothing is lost for a bug report (a DoFn's own error still reaches the user through
the exception the runner raises in this process). The pipeline process's own `sys.stderr` and log
handlers write straight to the terminal, not through the pipe.
"""
from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading

from transforms.converter_log import PREFIX as CONVERTER_PREFIX

# Lines Beam's worker processes print at start-up, whatever the run does.
NOISE = re.compile(
    r"apitools not found, and bigquery client libraries are not available"
    r"|Logging handler created\."
    r"|Load pipeline options from file"
    r"|Discarding unparseable args"
    r"|Pipeline option .* is not set|Creating state cache with size"
    r"|Statesampler not available|No session file found")


# Error reports that start a traceback printed by a worker (or a worker's converter process) when
# another worker died: the block they start is held back as a whole.
NOISY_TRACEBACK = re.compile(r"Failed to read inputs in the data plane|^Process docpipe-converter:"
                             r"|Python sdk harness failed|Error processing instruction")
# Lines that continue a traceback block: indented frames, the headers, the final exception line.
_TRACEBACK_GOES_ON = re.compile(r"^(?:\s|Traceback \(most recent call last\)|During handling of the above"
                                r"|The above exception was|[\w.]+(?:Error|Exception|Exit|Interrupt)\b|grpc\.|$)")


class WorkerOutputFilter:
    def __init__(self, log_path: str | None):
        self.log_path = log_path
        self.dropped = 0
        self.converter_messages = 0   # lines of transforms.converter_log, held back
        self._muted = False
        self._thread: threading.Thread | None = None
        self._log_lock = threading.Lock()

    def mute(self) -> None:
        """From now on hold back every line of the worker processes (they are being stopped)."""
        self._muted = True

    def __enter__(self) -> "WorkerOutputFilter":
        sys.stderr.flush()
        self._terminal = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._old_stderr = sys.stderr
        # Our own messages (progress, warnings, "a worker process died ...") bypass the filter.
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(self._terminal), "wb", buffering=0),
                                      encoding="utf-8", errors="replace", line_buffering=True)
        # ... and so do our log messages ("a worker process died ..."), through the same handlers.
        self._handlers = [h for h in logging.getLogger().handlers
                          if isinstance(h, logging.StreamHandler) and h.stream is self._old_stderr]
        for handler in self._handlers:
            handler.setStream(sys.stderr)
            handler.addFilter(self._beam_record)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="worker-output", daemon=True)
        self._thread.start()
        return self

    def _beam_record(self, record: logging.LogRecord) -> bool:
        """Log records of this process's own Beam and gRPC threads: the ones a worker's death sets
        off, and all of them once muted, go to the log file instead of the terminal."""
        if not record.name.startswith(("apache_beam", "grpc")):
            return True
        if self._muted or NOISY_TRACEBACK.search(record.getMessage()):
            self._hold(f"{record.levelname}:{record.name}:{record.getMessage()}\n")
            return False
        return True

    def _hold(self, text: str) -> None:
        self.dropped += 1
        if self.log_path:
            os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
            with self._log_lock, open(self.log_path, "a", encoding="utf-8") as log:
                log.write(text)

    def _pump(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(os.dup(self._terminal), "wb", buffering=0) as out:
            in_traceback = False
            for line in pipe:
                text = line.decode("utf-8", "replace")
                in_traceback = (NOISY_TRACEBACK.search(text) is not None
                                or (in_traceback and _TRACEBACK_GOES_ON.match(text) is not None))
                if text.startswith(CONVERTER_PREFIX):
                    self.converter_messages += 1
                    self._hold(text)
                    continue
                if self._muted or in_traceback or NOISE.search(text):
                    self._hold(text)
                    continue
                try:
                    out.write(line)
                except OSError:
                    pass   # the terminal went away; keep draining so writers never block

    def __exit__(self, *exc) -> None:
        sys.stderr.flush()
        sys.stderr = self._old_stderr
        for handler in self._handlers:
            handler.setStream(self._old_stderr)
            handler.removeFilter(self._beam_record)
        # Our stream stays open: a handler made during the run may still hold it (it writes to the
        # terminal, as before).
        os.dup2(self._terminal, 2)   # the pipe's write end now lives on only in worker processes
        os.close(self._terminal)
        # Workers that already ended closed their ends: what they wrote is forwarded now. Ones still
        # alive (being torn down) keep the pipe open; the daemon thread ends with the process.
        if self._thread is not None:
            self._thread.join(timeout=1.0)
