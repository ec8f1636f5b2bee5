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
    # Completed documents are skipped; failed ones are tried again (and fail again).
    assert again["skipped_unchanged"] == summary["completed"] and again["failed"] == 3


def test_bad_options_exit_cleanly(tmp_path, capsys):
    assert run_module.main(["--input", str(tmp_path / "nope")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert run_module.main(["--input", str(tmp_path), "--pg-dsn", "postgresql://u:pw@127.0.0.1:1/db"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to PostgreSQL" in err and "pw" not in err


def test_bad_inputs_each_get_one_clear_outcome(tmp_path, pg_dsn):
    folder = tmp_path / "bad"
    folder.mkdir()
    good = docs.write(folder, "good.txt", "Dear Ms. Smith, thank you for your letter. Yours sincerely, Bob Jones")
    docs.write(folder, "empty.pdf", b"")
    docs.write(folder, "garbage.pdf", bytes(range(256)) * 40)
    docs.write(folder, "junk.docx", b"PK\x03\x04" + b"\x00not a zip" * 100)
    docs.write(folder, "too-big.txt", "x" * 200_000)
    docs.write(folder, "blank.png", docs.png_bytes(""))
    docs.write(folder, "deep.html", "<html><body>" + "<div>" * 5000 + "deep" + "</div>" * 5000 + "</body></html>")
    docs.write(folder, "docx-named.pdf", docs.docx_bytes("Renamed", ["A Word file with a .pdf name."]))
    os.symlink(folder / "nowhere.pdf", folder / "broken-link.pdf")
    with open(os.fsencode(str(folder)) + b"/caf\xe9-latin1.txt", "wb") as fh:  # not a UTF-8 file name
        fh.write(b"Quarterly report: revenue grew by ten percent.")

    summary = run_module.run(["--input", str(folder), "--pg-dsn", pg_dsn, "--run-id", "bad",
                              "--max-file-size", "100000"])
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT i.path, i.status, d.error_stage, d.error_message "
                            "FROM inputs i JOIN documents d ON d.id = i.document_id").fetchall()
    outcome = {os.path.basename(path): (status, stage, message) for path, status, stage, message in rows}
    assert len(rows) == summary["paths"] == 10  # one outcome per path, none lost
    assert outcome["good.txt"][0] == outcome["docx-named.pdf"][0] == "completed"
    assert outcome["caf\\xe9-latin1.txt"][0] == "completed"  # stored readable, not lost
    expected = {
        "empty.pdf": ("read", "file is empty"), "broken-link.pdf": ("read", "broken symbolic link"),
        "too-big.txt": ("read", "larger than the limit"), "garbage.pdf": ("convert", "binary content"),
        "junk.docx": ("convert", "corrupt ZIP"), "blank.png": ("convert", "no text found"),
        "deep.html": ("convert", "docling could not convert the html"),
    }
    for name, (stage, reason) in expected.items():
        status, got_stage, message = outcome[name]
        assert (status, got_stage) == ("failed", stage) and reason in message, (name, outcome[name])
    assert good
