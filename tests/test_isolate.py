"""Converter isolation: time limit, memory limit, crash containment and recycling of the child process."""
import threading
import time

import pytest

from tests import docs
from transforms.config import StageConfig
from transforms.convert import ConversionError
from transforms.isolate import IsolatedConverter
from transforms.records import Document


def document(path):
    return Document(id="x", paths=[str(path)], filename=path.name)


@pytest.fixture
def files(tmp_path):
    return {
        "ok": docs.write(tmp_path, "ok.pdf", docs.pdf_bytes(docs.INVOICE_TEXT)),
        "hang": docs.write(tmp_path, "please-hang.txt", "this file makes the test converter hang"),
        "bad": docs.write(tmp_path, "bad.pdf", b"%PDF-1.4 garbage"),
    }


def test_good_and_bad_documents(files, tmp_path):
    converter = IsolatedConverter(StageConfig())
    try:
        doc = document(tmp_path / "ok.pdf")
        converter.convert(doc)
        assert "INV-2024-0042" in doc.text and doc.pages == 1 and doc.converter == "docling-native"
        with pytest.raises(ConversionError, match="corrupt or unreadable PDF"):
            converter.convert(document(tmp_path / "bad.pdf"))
    finally:
        converter.close()


def test_hang_is_stopped_by_the_time_limit_and_the_next_document_still_converts(files, tmp_path):
    converter = IsolatedConverter(StageConfig(convert_timeout=3, test_hang_marker="please-hang"))
    try:
        started = time.monotonic()
        with pytest.raises(ConversionError, match="timeout: conversion took longer than 3 s"):
            converter.convert(document(tmp_path / "please-hang.txt"))
        assert time.monotonic() - started < 30
        doc = document(tmp_path / "ok.pdf")
        converter.convert(doc)
        assert doc.text
    finally:
        converter.close()


def test_crash_of_the_converter_process_fails_only_that_document(files, tmp_path):
    converter = IsolatedConverter(StageConfig(convert_timeout=60, test_hang_marker="please-hang"))
    try:
        converter.convert(document(tmp_path / "ok.pdf"))  # child is up
        killer = threading.Timer(2.0, lambda: converter.process.kill())
        killer.start()
        with pytest.raises(ConversionError, match="converter crashed"):
            converter.convert(document(tmp_path / "please-hang.txt"))
        doc = document(tmp_path / "ok.pdf")
        converter.convert(doc)
        assert doc.text
    finally:
        converter.close()


def test_memory_limit(files, tmp_path):
    converter = IsolatedConverter(StageConfig(convert_memory_mb=40, test_hang_marker="please-hang"))
    try:
        with pytest.raises(ConversionError, match="memory limit exceeded"):
            converter.convert(document(tmp_path / "please-hang.txt"))
    finally:
        converter.close()


def test_recycling_replaces_the_child_process(files, tmp_path):
    converter = IsolatedConverter(StageConfig(recycle_after=2))
    try:
        pids = []
        for _ in range(5):
            converter.convert(document(tmp_path / "ok.pdf"))
            pids.append(converter.process.pid)
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    finally:
        converter.close()


def test_memory_stays_flat_over_hundreds_of_documents_with_recycling(tmp_path):
    """300 conversions of mixed formats; the converter is recycled every 100 documents. The memory of
    the converter process is sampled after each document: later generations peak no higher than the
    first one (+10 %), so a long run does not creep towards the memory limit."""
    import psutil

    sources = [
        docs.write(tmp_path, "invoice.pdf", docs.pdf_bytes(docs.INVOICE_TEXT, pages=3)),
        docs.write(tmp_path, "contract.docx", docs.docx_bytes("Service Agreement", docs.CONTRACT_TEXT.split("\n"))),
        docs.write(tmp_path, "resume.html", "<html><body><h1>Jane Doe</h1><p>"
                   + "</p><p>".join(docs.RESUME_TEXT.split("\n")) + "</p></body></html>"),
    ]
    per_generation = 100
    converter = IsolatedConverter(StageConfig(recycle_after=per_generation))
    peaks: dict[int, int] = {}
    try:
        for i in range(3 * per_generation):
            path = sources[i % len(sources)]
            doc = Document(id="x", paths=[path], filename=path.rsplit("/", 1)[-1])
            converter.convert(doc)
            assert doc.text
            generation = i // per_generation
            rss = psutil.Process(converter.process.pid).memory_info().rss
            peaks[generation] = max(peaks.get(generation, 0), rss)
    finally:
        converter.close()
    assert len(peaks) == 3
    assert max(peaks[1], peaks[2]) <= 1.10 * peaks[0], {g: round(p / 2**20) for g, p in peaks.items()}


def test_the_converter_process_does_not_import_the_workers_main_module(tmp_path):
    """A Beam worker runs as `python -m apache_beam...sdk_worker_main`; a spawned child would import
    that main module (and all of Beam) again. Here a main module run with -m counts its imports in a
    file: the parent's is the only one, also after a conversion in the child."""
    import os
    import subprocess
    import sys

    marker = tmp_path / "imports.txt"
    docs.write(tmp_path, "note.txt", "a short plain text note")
    docs.write(tmp_path, "fake_worker_main.py", f"""
import os
with open({str(marker)!r}, "a") as fh:
    fh.write(str(os.getpid()) + "\\n")
if __name__ == "__main__":
    from transforms.config import StageConfig
    from transforms.isolate import IsolatedConverter
    from transforms.records import Document
    converter = IsolatedConverter(StageConfig())
    doc = Document(id="x", paths=[{str(tmp_path / "note.txt")!r}], filename="note.txt")
    converter.convert(doc)
    print(doc.text, converter.process.pid)
    converter.close()
""")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), repo]))
    out = subprocess.run([sys.executable, "-m", "fake_worker_main"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "a short plain text note" in out.stdout
    child_pid = out.stdout.split()[-1]
    imported_in = marker.read_text().split()
    assert len(imported_in) == 1 and child_pid not in imported_in, (imported_in, child_pid)


def test_the_converter_process_ends_without_the_interpreters_clean_up(tmp_path):
    """The converter ends with os._exit after flushing its output (transforms.isolate._exit_now):
    tearing down docling's modules cost ~1 s of CPU at the end of every run. Checked in a child
    interpreter: what it printed arrives, its atexit handlers do not run, its exit status is 0."""
    import subprocess
    import sys

    marker = tmp_path / "atexit-ran"
    code = ("import atexit, pathlib\n"
            f"atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('ran'))\n"
            "from transforms.isolate import _exit_now\n"
            "print('converted', end='')\n"
            "_exit_now()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "converted"
    assert not marker.exists()


def test_submit_returns_at_once_and_the_limits_hold_while_the_caller_is_busy(files, tmp_path):
    """submit() hands the document to the converter process and returns; a watching thread keeps the
    time limit while the caller does other work, so a hang is stopped on time, not when collected."""
    converter = IsolatedConverter(StageConfig(convert_timeout=3, test_hang_marker="please-hang"))
    try:
        ok = document(tmp_path / "ok.pdf")
        converter.submit(ok)
        with pytest.raises(RuntimeError, match="already being converted"):
            converter.submit(document(tmp_path / "bad.pdf"))
        assert converter.collect(ok) > 0 and "INV-2024-0042" in ok.text
        with pytest.raises(RuntimeError, match="no document is being converted"):
            converter.collect(ok)

        started = time.monotonic()
        converter.submit(document(tmp_path / "please-hang.txt"))
        assert time.monotonic() - started < 2
        hung = converter.process
        time.sleep(6)  # the caller busy with other documents' stages
        assert not hung.is_alive()  # stopped at its limit, while nobody was collecting
        collected = time.monotonic()
        with pytest.raises(ConversionError, match="timeout: conversion took longer than 3 s"):
            converter.collect(document(tmp_path / "please-hang.txt"))
        assert time.monotonic() - collected < 1
        assert 3 <= converter.last_seconds < 6
        again = document(tmp_path / "ok.pdf")
        converter.convert(again)  # a fresh converter process takes over
        assert again.text
    finally:
        converter.close()


def test_closing_with_a_document_in_conversion_ends_it(files, tmp_path):
    converter = IsolatedConverter(StageConfig(convert_timeout=60, test_hang_marker="please-hang"))
    converter.submit(document(tmp_path / "please-hang.txt"))
    process = converter.process
    started = time.monotonic()
    converter.close()
    assert time.monotonic() - started < 10
    assert not process.is_alive() and converter.process is None


def test_the_convert_stage_converts_one_document_ahead(files, tmp_path):
    """ConvertDocument hands document n+1 to the converter process before it passes document n on
    to the next stages, and the bundle's last document comes out of finish_bundle, converted."""
    from apache_beam.transforms.window import GlobalWindow
    from apache_beam.utils.timestamp import MIN_TIMESTAMP

    from transforms.dofns import ConvertDocument

    stage = ConvertDocument(StageConfig())
    stage.setup()
    try:
        stage.start_bundle()
        first, second, bad = (document(tmp_path / name) for name in ("ok.pdf", "ok.pdf", "bad.pdf"))
        window = GlobalWindow()
        assert list(stage.process(first, window, MIN_TIMESTAMP)) == []  # converting; nothing to pass on yet
        out = list(stage.process(second, window, MIN_TIMESTAMP))
        assert out == [first] and first.text and first.status != "failed"
        assert stage.ahead[0] is second  # in the converter process while `first` goes on
        assert list(stage.process(bad, window, MIN_TIMESTAMP)) == [second] and second.text
        last = list(stage.finish_bundle())
        assert [v.value for v in last] == [bad] and last[0].windows == [window]
        assert bad.status == "failed" and "corrupt or unreadable PDF" in bad.error_message
        assert first.timings["convert"] > 0
    finally:
        stage.teardown()


def test_documents_converted_ahead_all_come_out_of_a_pipeline(files, tmp_path):
    """The same through Beam (FnApiRunner, TestPipeline): every document comes out once, converted
    or failed with its reason, including each bundle's last one."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from transforms.dofns import ConvertDocument

    names = ["ok.pdf", "bad.pdf", "ok.pdf", "ok.pdf", "bad.pdf"]
    docs_in = [Document(id=f"d{i}", paths=[str(tmp_path / n)], filename=n) for i, n in enumerate(names)]
    with TestPipeline(runner="FnApiRunner") as p:
        out = (p | beam.Create(docs_in) | beam.ParDo(ConvertDocument(StageConfig()))
               | beam.Map(lambda d: (d.id, d.status == "failed", "INV-2024-0042" in (d.text or ""))))
        assert_that(out, equal_to([(f"d{i}", n == "bad.pdf", n == "ok.pdf") for i, n in enumerate(names)]))


def test_recycling_a_kept_warm_converter_ends_the_old_process_and_parks_nothing(files, tmp_path, monkeypatch):
    """With KEEP_WARM (the small cycles of --watch), recycling stops the old converter process
    instead of parking the converter that is still in use."""
    from transforms import isolate

    monkeypatch.setattr(isolate, "KEEP_WARM", True)
    converter = IsolatedConverter(StageConfig(recycle_after=1))
    try:
        converter.convert(document(tmp_path / "ok.pdf"))
        first = converter.process
        converter.convert(document(tmp_path / "ok.pdf"))
        assert converter.process is not first and not first.is_alive()
        assert isolate._parked == []
    finally:
        converter.shutdown()
        isolate.close_parked()


def test_a_converter_started_early_is_taken_over_by_the_convert_stage(files, tmp_path, monkeypatch):
    """start_early starts the process and returns before docling is up; the next IsolatedConverter
    with the same settings takes that process over (no second start) and waits for it at its first
    document. Once per process: a second call starts nothing."""
    from transforms import isolate

    monkeypatch.setattr(isolate, "_started_early", False)
    config = StageConfig()
    started = time.monotonic()
    isolate.start_early(config)
    assert time.monotonic() - started < 1.5  # did not wait for docling's import (2-3 s)
    try:
        assert len(isolate._parked) == 1 and isolate._parked[0].starting
        early = isolate._parked[0].process
        isolate.start_early(config)
        assert len(isolate._parked) == 1 and isolate._parked[0].process is early
        converter = IsolatedConverter(config)
        assert converter.process is early and converter.starting and isolate._parked == []
        doc = document(tmp_path / "ok.pdf")
        converter.convert(doc)
        assert "INV-2024-0042" in doc.text and converter.process is early and not converter.starting
        converter.close()
    finally:
        isolate.close_parked()


def test_a_converter_that_dies_while_starting_early_is_replaced(files, tmp_path, monkeypatch):
    from transforms import isolate

    monkeypatch.setattr(isolate, "_started_early", False)
    isolate.start_early(StageConfig())
    converter = IsolatedConverter(StageConfig())
    try:
        dead = converter.process
        dead.kill()
        dead.join(10)
        doc = document(tmp_path / "ok.pdf")
        converter.convert(doc)
        assert "INV-2024-0042" in doc.text and converter.process is not dead
    finally:
        converter.close()
        isolate.close_parked()


def test_a_pipeline_of_unchanged_documents_starts_no_converter(files, tmp_path, monkeypatch):
    """StartConverterEarly starts the converter at the first document to convert, and only then."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from transforms import isolate
    from transforms.dofns import StartConverterEarly
    from transforms.records import SKIPPED

    monkeypatch.setattr(isolate, "_started_early", False)
    calls = []
    monkeypatch.setattr(isolate, "start_early", calls.append)
    skipped = Document(id="s", paths=[str(tmp_path / "ok.pdf")], filename="ok.pdf", status=SKIPPED)
    with TestPipeline(runner="DirectRunner") as p:
        out = p | beam.Create([skipped]) | beam.ParDo(StartConverterEarly(StageConfig())) | beam.Map(lambda d: d.id)
        assert_that(out, equal_to(["s"]))
    assert calls == []
    pending = Document(id="p", paths=[str(tmp_path / "ok.pdf")], filename="ok.pdf")
    with TestPipeline(runner="DirectRunner") as p:
        out = p | beam.Create([skipped, pending]) | beam.ParDo(StartConverterEarly(StageConfig())) | beam.Map(lambda d: d.id)
        assert_that(out, equal_to(["s", "p"]))
    assert len(calls) == 1
