"""The whole product as a user runs it: `pipeline.run` on the multi-process runner (one worker process
per core, the default), into the real embedded PostgreSQL, over mixed formats and bad files."""
import os

import psycopg
import pytest

from pipeline import run as run_module
from tests import docs

pytestmark = pytest.mark.slow


def table_counts(dsn):
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("documents", "chunks", "inputs")}


def test_multiprocess_run_then_rerun(tmp_path, pg_dsn):
    folder = tmp_path / "in"
    expected = docs.mixed_folder(folder)
    summary = run_module.run(["--input", str(folder), "--pg-dsn", pg_dsn, "--run-id", "first"])

    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT i.path, i.status, d.error_stage, d.error_message, i.duplicate_of "
                            "FROM inputs i JOIN documents d ON d.id = i.document_id").fetchall()
    by_name = {os.path.basename(path): row for path, *row in rows}
    assert {name: row[0] for name, row in by_name.items()} == expected  # exactly one outcome per path
    assert by_name["copy-of-invoice.pdf"][3] == str(folder / "invoice.pdf")
    assert tuple(by_name["encrypted.pdf"][1:3]) == ("convert", "encrypted PDF: a password is required to open it")
    assert tuple(by_name["empty.txt"][1:3]) == ("read", "file is empty (0 bytes)")
    assert by_name["corrupt.pdf"][1] == "convert"
    assert summary["paths"] == len(expected) and summary["duplicates"] == 1
    assert summary["failed"] == 3 and summary["failed_by_stage"] == {"convert": 2, "read": 1}
    assert summary["completed"] == len(expected) - 1 - 3

    from pipeline import status
    assert status.main(["first", "--verify", "--pg-dsn", pg_dsn]) == 0  # every listed path has its outcome
    docs.write(folder, "late-arrival.txt", "A file that appeared after the run.")
    assert status.main(["first", "--verify", "--pg-dsn", pg_dsn]) == 1
    os.remove(folder / "late-arrival.txt")

    first = table_counts(pg_dsn)
    again = run_module.run(["--input", str(folder), "--pg-dsn", pg_dsn, "--run-id", "second"])
    assert table_counts(pg_dsn) == first
    # Completed documents are skipped; failed ones fail again: the corrupt and the encrypted PDF
    # without being converted again (deterministic, unchanged: issue 19), the empty file read again.
    assert again["skipped_unchanged"] == summary["completed"] and again["failed"] == 3
    assert again["failed_before"] == 2


def test_bad_options_exit_cleanly(tmp_path, capsys):
    assert run_module.main(["--input", str(tmp_path / "nope")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert run_module.main(["--input", str(tmp_path), "--pg-dsn", "postgresql://u:pw@127.0.0.1:1/db"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to PostgreSQL" in err and "pw" not in err


def test_help_lists_the_pipelines_options(capsys):
    """Beam's own parser answered --help with a bare `usage: run.py [-h]`."""
    assert run_module.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--input" in out and "--examples" in out and "--classifier" in out
    assert "pass through to Beam" in " ".join(out.split())


def test_bad_inputs_each_get_one_clear_outcome(tmp_path, pg_dsn):
    folder = tmp_path / "bad"
    folder.mkdir()
    good = docs.write_bad_inputs(folder, too_big=400_000)  # over the --max-file-size 300000 below

    summary = run_module.run(["--input", str(folder), "--pg-dsn", pg_dsn, "--run-id", "bad",
                              "--max-file-size", "300000", "--max-pages", "50"])
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT i.path, i.status, d.error_stage, d.error_message "
                            "FROM inputs i JOIN documents d ON d.id = i.document_id").fetchall()
    outcome = {os.path.basename(path): (status, stage, message) for path, status, stage, message in rows}
    assert len(rows) == summary["paths"] == 14  # one outcome per path, none lost
    assert outcome["good.txt"][0] == outcome["docx-named.pdf"][0] == "completed"
    assert outcome["caf\\xe9-latin1.txt"][0] == "completed"  # stored readable, not lost
    expected = {
        "empty.pdf": ("read", "file is empty"), "broken-link.pdf": ("read", "broken symbolic link"),
        "too-big.txt": ("read", "larger than the limit"), "garbage.pdf": ("convert", "binary content"),
        "junk.docx": ("convert", "corrupt ZIP"), "blank.png": ("convert", "no text found"),
        "deep.html": ("convert", "docling could not convert the html"),
        "truncated.pdf": ("convert", "corrupt or unreadable PDF"),
        "encrypted.pdf": ("convert", "encrypted PDF: a password is required"),
        "many-pages.pdf": ("convert", "PDF has 60 pages, more than the limit of 50 (--max-pages)"),
        "bomb.png": ("convert", "image is too large to decode safely"),
    }
    for name, (stage, reason) in expected.items():
        status, got_stage, message = outcome[name]
        assert (status, got_stage) == ("failed", stage) and reason in message, (name, outcome[name])
    assert good


def test_retry_failed_processes_only_the_failed_paths(tmp_path, pg_dsn):
    folder = tmp_path / "retry"
    folder.mkdir()
    docs.write(folder, "letter.txt", "Dear Ms. Smith, thank you for your letter. Yours sincerely, Bob Jones")
    docs.write(folder, "long-report.txt", "Quarterly report: revenue grew by ten percent. " * 100)
    with open(os.fsencode(str(folder)) + b"/r\xe9sum\xe9.txt", "wb") as fh:  # a non-UTF-8 name, failed too
        fh.write(b"Jane Doe, software engineer. Experience: ten years of Python. " * 50)
    in_memory = ["--runner", "FnApiRunner", "--direct_running_mode", "in_memory"]
    first = run_module.run(["--input", str(folder), "--pg-dsn", pg_dsn, "--run-id", "small-limit",
                            "--max-file-size", "1000", *in_memory])
    assert (first["completed"], first["failed"]) == (1, 2)

    retry = run_module.run(["--retry-failed", "--pg-dsn", pg_dsn, "--run-id", "retry", *in_memory])
    assert (retry["paths"], retry["completed"], retry["failed"]) == (2, 2, 0)
    with psycopg.connect(pg_dsn) as conn:
        rows = dict(conn.execute("SELECT i.path, d.attempts FROM inputs i "
                                 "JOIN documents d ON d.id = i.document_id").fetchall())
        statuses = {r[0] for r in conn.execute("SELECT status FROM inputs")}
    assert len(rows) == 3 and statuses == {"completed"}  # no stray row for the non-UTF-8 name
    assert rows[str(folder / "letter.txt")] == 1  # the completed document was not touched
    from pipeline import status
    assert status.main(["retry", "--verify", "--pg-dsn", pg_dsn]) == 0

    nothing = run_module.run(["--retry-failed", "--pg-dsn", pg_dsn, "--run-id", "nothing-left", *in_memory])
    assert nothing["paths"] == 0
    assert run_module.main(["--retry-failed", "--input", str(folder), "--pg-dsn", pg_dsn]) == 2
