"""Labelled examples teach the classifier: an --examples folder and users' corrections, through a real
pipeline run on the embedded PostgreSQL, with the examples' vectors cached in the store."""
from __future__ import annotations

import psycopg
import pytest

from pipeline import run as run_module
from pipeline import store
from transforms.config import StageConfig
from transforms.examples import ExamplesError, list_examples, prepare_examples

# Notes of a weekly meeting: nothing in the packaged descriptions says "minutes" is a letter, so
# the label has to come from the examples.
MINUTES = ("Minutes of the weekly team sync, {day}. Attendees: Ann, Bo, Chen. Agenda: release plan, hiring. "
           "Decisions: ship on Friday. Action items: Ann to send the plan, Bo to book the room.")
CATEGORIES = ["invoice", "receipt", "contract", "resume", "letter", "report", "scientific_paper", "form",
              "presentation", "spreadsheet", "email"]


def _examples_folder(tmp_path, label):
    folder = tmp_path / "examples" / label
    folder.mkdir(parents=True)
    for i, day in enumerate(["Monday", "Tuesday", "Wednesday"]):
        (folder / f"minutes-{i}.txt").write_text(MINUTES.format(day=day))
    return tmp_path / "examples"


def test_examples_folder_by_subfolder_and_labels_csv(tmp_path):
    folder = _examples_folder(tmp_path, "letter")
    assert sorted(c for _, c in list_examples(str(folder))) == ["letter"] * 3
    (folder / "labels.csv").write_text("file,category\nletter/minutes-0.txt,report\n")
    assert [c for _, c in list_examples(str(folder))] == ["report"]
    (folder / "labels.csv").write_text("file,category\nmissing.pdf,report\n")
    with pytest.raises(ExamplesError, match="not found"):
        list_examples(str(folder))


def test_example_vectors_are_cached_in_the_store(tmp_path, pg_dsn):
    store.migrate(pg_dsn)
    folder = _examples_folder(tmp_path, "letter")
    examples, counts = prepare_examples(str(folder), pg_dsn, CATEGORIES, StageConfig())
    assert len(examples) == 3 and counts["embedded"] == 3
    again, counts = prepare_examples(str(folder), pg_dsn, CATEGORIES, StageConfig())
    assert counts["embedded"] == 0 and counts["folder"] == 3
    assert all((a.vector == b.vector).all() for a, b in zip(examples, again))
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*), min(source) FROM example_vectors").fetchone() == (3, "examples")


def test_the_model_is_not_loaded_when_every_vector_is_cached(tmp_path, pg_dsn):
    """A run with no examples, or only cached ones, starts without loading the classifier's model in
    the main process (~2 s and ~150 MB): checked in a fresh interpreter, where nothing loaded it."""
    import subprocess
    import sys

    store.migrate(pg_dsn)
    folder = _examples_folder(tmp_path, "letter")
    prepare_examples(str(folder), pg_dsn, CATEGORIES, StageConfig())  # embeds and caches the 3
    script = ("import sys; from transforms.config import StageConfig; from transforms.backends import use; "
              "from transforms.examples import prepare_examples as p; "
              f"e, c = p(sys.argv[1] or None, sys.argv[2], {CATEGORIES!r}, StageConfig()); "
              "print(len(e), c['embedded'], len(use._instances))")
    for examples in (str(folder), ""):
        out = subprocess.run([sys.executable, "-c", script, examples, pg_dsn], capture_output=True, text=True,
                             check=True).stdout.split()
        assert out == (["3", "0", "0"] if examples else ["0", "0", "0"])


def test_run_with_examples_and_corrections_learns_the_label(tmp_path, pg_dsn):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "sync.txt").write_text(MINUTES.format(day="Thursday") + " Next sync on Monday.")
    base = ["--pg-dsn", pg_dsn, "--runner", "FnApiRunner", "--direct_running_mode", "in_memory"]
    run_module.run(["--input", str(docs), "--run-id", "plain", *base])
    doc = store.document_status(pg_dsn, str(docs / "sync.txt"))
    without = doc["category"]
    label = "letter" if without != "letter" else "report"

    examples = _examples_folder(tmp_path, label)
    run_module.run(["--input", str(docs), "--run-id", "taught", "--reprocess", "--examples", str(examples), *base])
    assert store.document_status(pg_dsn, str(docs / "sync.txt"))["category"] == label

    # A correction becomes an example for the next run: another such note is classified like it.
    other = "form" if label != "form" else "report"
    store.correct_category(pg_dsn, doc["id"], other, "tester")
    (docs / "sync-2.txt").write_text(MINUTES.format(day="Friday") + " Next sync on Tuesday.")
    run_module.run(["--input", str(docs), "--run-id", "corrected", *base])
    assert store.document_status(pg_dsn, str(docs / "sync-2.txt"))["category"] == other
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM example_vectors WHERE source = 'correction'").fetchone()[0] == 1
