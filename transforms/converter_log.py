"""What docling and its libraries say while a converter process converts: one line per message,
naming the document.

Docling warns through Python's logging about single files ("image cannot be loaded by Pillow:
cannot find loader for this WMF file", "Limit function ... not in LIM_FUNC dictionary", "Skipping
external image reference ..."). A converter process configures no logging, so Python's last-resort
handler printed each as a bare message on the terminal, between the progress lines, without saying
which of thousands of files it was about. Here every warning (and every `warnings.warn`) becomes
one line starting with PREFIX and the document's name; on the local runner pipeline.quiet keeps
those lines in the run's worker log and the run's summary counts them; elsewhere they reach the
worker's log as they are.
"""
from __future__ import annotations

import logging
import sys

PREFIX = "docpipe-converter: "

_current = {"name": ""}


def converting(name: str) -> None:
    """The document the messages from now on are about."""
    _current["name"] = name


class _OneLine(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = " | ".join(line.strip() for line in record.getMessage().splitlines() if line.strip())
            sys.stderr.write(f"{PREFIX}{_current['name'] or '-'}: {record.levelname.lower()} "
                             f"({record.name}): {message}\n")
            sys.stderr.flush()
        except Exception:  # a message is never a reason to fail a conversion
            self.handleError(record)


def install(level: int = logging.WARNING) -> None:
    """Route this process's warnings (logging and the warnings module) through one-line messages."""
    root = logging.getLogger()
    if not any(isinstance(h, _OneLine) for h in root.handlers):
        handler = _OneLine(level)
        root.addHandler(handler)
    logging.captureWarnings(True)
