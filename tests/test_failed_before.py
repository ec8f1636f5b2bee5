"""Reruns don't pay twice (issue 19): content that failed for a deterministic reason is not converted
again by a plain rerun of the unchanged file with the same pipeline version; --retry-failed, a new
version and transient failures are retried. Real runs into the embedded PostgreSQL."""
import os

import psycopg
import pytest

from pipeline import run as run_module
from tests import docs
from transforms.failures import is_deterministic, pipeline_version

IN_MEMORY = ["--runner", "FnApiRunner", "--direct_running_mode", "in_memory"]


@pytest.mark.parametrize("stage, message, deterministic", [
    ("convert", "corrupt or unreadable PDF: Failed to load document (PDFium: Data format error).", True),
    ("convert", "encrypted PDF: a password is required to open it", True),
    ("convert", "PDF has 60 pages, more than the limit of 50 (--max-pages)", True),
    ("convert", "unsupported file type application/x-msdownload (detected from content)", True),
    ("convert", "binary content that is not a supported document format", True),
    ("convert", "corrupt ZIP container (not a readable DOCX/PPTX/XLSX): File is not a zip file", True),
    ("convert", "no text found in the png document", True),
    ("convert", "docling could not convert the html: RecursionError: maximum recursion depth exceeded", True),
    ("convert", "timeout: conversion took longer than 120 s (--convert-timeout)", False),
    ("convert", "memory limit exceeded: the converter used over 3000 MB (--convert-memory-mb)", False),
    ("convert", "converter crashed (exit code -11) on this document", False),
    ("convert", "timeout: conversion of corrupt.pdf took longer than 120 s", False),  # transient wins
    ("read", "file is larger than the limit of 1000 bytes (--max-file-size)", False),  # the limit may change
    ("read", "file is empty", False),
    ("embed", "corrupt vector", False),                                   # only conversion is trusted
    ("write", "connection refused", False),
    ("convert", None, False),
])
def test_which_failures_are_deterministic(stage, message, deterministic):
    assert is_deterministic(stage, message) is deterministic


def test_pipeline_version_names_the_converter():
    assert pipeline_version().startswith("convert-") and "docling-" in pipeline_version()


def _documents(pg_dsn) -> dict[str, tuple]:
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT i.path, i.status, i.run_id, d.attempts, d.error_message, d.pipeline_version "
                            "FROM inputs i JOIN documents d ON d.id = i.document_id").fetchall()
    return {os.path.basename(r[0]): r[1:] for r in rows}


def test_deterministic_failures_are_not_converted_again(tmp_path, pg_dsn, capsys):
    folder = tmp_path / "in"
    docs.write(folder, "good.txt", "Dear Ms. Smith, thank you for your letter. Yours sincerely, Bob Jones")
    invoice = docs.pdf_bytes(docs.INVOICE_TEXT)
    docs.write(folder, "truncated.pdf", invoice[: len(invoice) // 3])
    docs.write(folder, "encrypted.pdf", docs.encrypted_pdf_bytes())
    docs.write(folder, "many-pages.pdf", docs.pdf_bytes("Page after page.", pages=60))
    docs.write(folder, "timed-out.pdf", docs.pdf_bytes("A document whose conversion timed out once."))
    base = ["--input", str(folder), "--pg-dsn", pg_dsn, "--max-pages", "50", *IN_MEMORY]

    first = run_module.run(base + ["--run-id", "first"])
    assert (first["completed"], first["failed"], first["failed_before"]) == (2, 3, 0)
    before = _documents(pg_dsn)
    assert all(v[4] == pipeline_version() for v in before.values())
    # A transient failure, as a timeout would have recorded it: it must be retried.
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE documents SET status = 'failed', error_stage = 'convert', "
                     "error_message = 'timeout: conversion took longer than 120 s (--convert-timeout)' "
                     "WHERE %s = ANY(paths)", (str(folder / "timed-out.pdf"),))
        conn.execute("UPDATE inputs SET status = 'failed' WHERE path = %s", (str(folder / "timed-out.pdf"),))

    capsys.readouterr()
    second = run_module.run(base + ["--run-id", "second"])
    assert "failed before        3  (unchanged" in capsys.readouterr().out
    assert (second["paths"], second["completed"], second["skipped_unchanged"]) == (5, 1, 1)
    assert (second["failed"], second["failed_before"]) == (3, 3)
    after = _documents(pg_dsn)
    for name in ("truncated.pdf", "encrypted.pdf", "many-pages.pdf"):
        status, run_id, attempts, message, _ = after[name]
        assert (status, run_id) == ("failed", "second")       # the path's outcome in this run
        assert attempts == before[name][2] == 1                # but not converted again
        assert message == before[name][3]                      # with the reason recorded first
    assert after["timed-out.pdf"][:3] == ("completed", "second", 2)  # the transient failure was retried
    with psycopg.connect(pg_dsn) as conn:                      # no convert attempt counted for them
        stats = dict(conn.execute("SELECT stage, documents_failed FROM run_stage_stats "
                                  "WHERE run_id = 'second'").fetchall())
    assert stats.get("convert", 0) == 0
    from pipeline import status, store
    assert store.run_status(pg_dsn, "second")["failed_before"] == 3
    capsys.readouterr()
    assert status.main(["second", "--pg-dsn", pg_dsn]) == 0
    assert "failed           3 (3 failed before, unchanged: not converted again)" in capsys.readouterr().out

    # A new version of the conversion retries them once.
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE documents SET pipeline_version = 'convert-0 docling-0' "
                     "WHERE %s = ANY(paths)", (str(folder / "encrypted.pdf"),))
    third = run_module.run(base + ["--run-id", "third"])
    assert (third["failed"], third["failed_before"]) == (3, 2)
    assert _documents(pg_dsn)["encrypted.pdf"][2] == 2

    # --retry-failed converts every failed path again.
    retry = run_module.run(["--retry-failed", "--pg-dsn", pg_dsn, "--max-pages", "100", "--run-id", "retry",
                            *IN_MEMORY])
    assert (retry["paths"], retry["failed_before"], retry["completed"], retry["failed"]) == (3, 0, 1, 2)
    final = _documents(pg_dsn)
    assert final["many-pages.pdf"][0] == "completed"            # under the raised limit
    assert final["truncated.pdf"][2] == 2 and final["encrypted.pdf"][2] == 3
