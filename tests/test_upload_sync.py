"""Uploads over HTTP, the folder watch and the upload client (issue 17), against the real embedded
PostgreSQL, real docling and the real models: the server runs under uvicorn on a loopback port, the
watch is the real `python -m pipeline.run --watch` (a child process, as `pipeline.serve` starts it)
or, for the watch's own test, FolderWatch cycles in this process."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from pipeline import inbox, sync
from tests.webserver import serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "samples")
SAMPLE_FILES = sorted(n for n in os.listdir(SAMPLES) if os.path.isfile(os.path.join(SAMPLES, n)))
CORRUPT = "truncated-download.pdf"


# -- plain logic ----------------------------------------------------------------------------------

def test_safe_filename_keeps_the_name_and_drops_folders_and_dots():
    assert inbox.safe_filename("../../etc/passwd") == "passwd"
    assert inbox.safe_filename("C:\\Users\\x\\Rechnung März.pdf") == "Rechnung März.pdf"
    assert inbox.safe_filename(".hidden.txt") == "hidden.txt"  # a dot-name would be ignored by the watch
    assert inbox.safe_filename("a\x00b\nc.md") == "abc.md"
    assert inbox.safe_filename("") == inbox.safe_filename(None) == "upload"
    long = inbox.safe_filename("x" * 500 + ".pdf")
    assert len(long) <= inbox.MAX_FILENAME and long.endswith(".pdf")


def test_sniffing_takes_documents_and_refuses_other_binaries():
    assert inbox.sniff(b"%PDF-1.7\n...", "a.pdf") == "pdf"
    assert inbox.sniff(b"PK\x03\x04rest", "a.docx") == "office"
    assert inbox.sniff(open(os.path.join(SAMPLES, "contract-1.png"), "rb").read(4096), "c.png") == "image"
    assert inbox.sniff("Grüße, € 12,00\n".encode(), "a.txt") == "text"
    assert inbox.sniff("café".encode("latin-1") * 10, "a.txt") == "text"
    for head in (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, b"\x00\x01\x02\x03" * 100):
        with pytest.raises(inbox.UploadRefused) as refused:
            inbox.sniff(head, "x.bin")
        assert refused.value.status == 415


def test_changes_wait_for_files_still_being_written():
    seen = {"/a": (1, 100.0), "/gone": (1, 100.0)}
    listed = {"/a": (1, 100.0), "/b": (2, 200.0), "/c": (3, 299.5), "/a2": (5, 150.0)}
    changed, deleted, waiting = sync.changes(listed, seen, now=300.0, settle=1.0)
    assert changed == {"/b": (2, 200.0), "/a2": (5, 150.0)} and deleted == ["/gone"] and waiting == 1
    settings, rest = sync.split_args(["--watch", "--input", "/x", "--watch-interval=0.5", "--watch-settle", "0",
                                      "--ocr", "off"])
    assert settings == {"interval": 0.5, "settle": 0.0, "small": 20} and rest == ["--input", "/x", "--ocr", "off"]


def test_a_burst_of_files_is_gathered_into_one_run(tmp_path):
    watch = sync.FolderWatch(["--input", str(tmp_path), "--watch-small", "3"], run_fn=lambda argv: None)
    assert not watch._still_arriving(2)  # a few files: processed at once
    assert watch._still_arriving(10) and watch._still_arriving(15)  # more at each listing: wait
    assert not watch._still_arriving(15)  # no more arriving: one run for all of them


# -- the watch, cycle by cycle ----------------------------------------------------------------------

def _statuses(dsn: str, paths) -> dict:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT i.path, i.status, d.status, d.id FROM inputs i JOIN documents d "
                            "ON d.id = i.document_id WHERE i.path = ANY(%s)", (list(paths),)).fetchall()
    return {r[0]: r[1:] for r in rows}


def _runs(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY started_at").fetchall()]


@pytest.mark.slow
def test_watch_processes_new_and_changed_files_marks_deleted_ones_and_resumes_without_reprocessing(
        pg_dsn, tmp_path):
    from transforms import isolate

    folder = tmp_path / "inbox"
    folder.mkdir()
    shutil.copy(os.path.join(SAMPLES, "receipt-1.txt"), folder / "receipt.txt")
    shutil.copy(os.path.join(SAMPLES, "meeting-notes.md"), folder / "notes.md")
    (folder / ".partial-upload").write_text("half written")  # dot-names are never processed
    import zipfile

    with zipfile.ZipFile(folder / "memos.zip", "w") as archive:
        archive.writestr("memo.txt", "Memo: the warehouse in Delft closes on 2024-06-30 for inventory.\n")
    argv = ["--watch", "--input", str(folder), "--pg-dsn", pg_dsn, "--data-dir", str(tmp_path / "data"),
            "--watch-settle", "0"]
    isolate.KEEP_WARM = True
    try:
        watch = sync.FolderWatch(argv)
        watch.start()
        first = watch.cycle()
        assert first["changed"] == 3 and first["run"]["failed"] == 0
        member = str(folder / "memos.zip") + "!/memo.txt"
        assert _statuses(pg_dsn, [member])[member][:2] == ("completed", "completed")
        receipt, notes = str(folder / "receipt.txt"), str(folder / "notes.md")
        before = _statuses(pg_dsn, [receipt, notes])
        assert {v[:2] for v in before.values()} == {("completed", "completed")}

        # A file written after the watch started, and one changed in place (new content, new id).
        shutil.copy(os.path.join(SAMPLES, "letter-1.html"), folder / "letter.html")
        with open(notes, "a") as fh:
            fh.write("\nAdded later: the budget was approved on 2024-03-01.\n")
        old = time.time() - 5
        os.utime(notes, (old, old))
        second = watch.cycle()
        assert second["changed"] == 2 and second["run"]["completed"] == 2 and second["run"]["skipped_unchanged"] == 0
        after = _statuses(pg_dsn, [receipt, notes, str(folder / "letter.html")])
        assert after[notes][0] == "completed" and after[notes][2] != before[notes][2]  # the new content
        assert second["run"]["documents_replaced"] == 1  # the old content is no longer searchable
        with psycopg.connect(pg_dsn) as conn:
            assert conn.execute("SELECT status FROM documents WHERE id = %s", (before[notes][2],)).fetchone() == \
                ("deleted",)
        assert after[str(folder / "letter.html")][:2] == ("completed", "completed")
        assert after[receipt] == before[receipt]  # untouched

        # Deleted files: their paths are marked (an archive's members with it), and their documents
        # are no longer searchable.
        os.unlink(receipt)
        os.unlink(folder / "memos.zip")
        third = watch.cycle()
        assert third["deleted"] == 2 and third["documents_deleted"] == 3 and third["run"] is None
        gone = _statuses(pg_dsn, [receipt, member])
        assert gone[receipt][:2] == gone[member][:2] == ("deleted", "deleted")
        runs = _runs(pg_dsn)
        watch.close()

        # Restarted: what it saw is in the store, so nothing is processed again.
        again = sync.FolderWatch(argv)
        again.start()
        assert again.cycle() == {"changed": 0, "deleted": 0, "waiting": 0, "run": None}
        assert _runs(pg_dsn) == runs and all(r.startswith("watch-") for r in runs)
        # Two watches on one folder would race: the second is refused while the first holds it.
        with pytest.raises(sync.WatchError, match="another watch"):
            sync.FolderWatch(argv).start()
        again.close()
    finally:
        isolate.KEEP_WARM = False
        isolate.close_parked()


# -- uploads over HTTP, processed by the server's watch --------------------------------------------

def _one_page_pdf(path, text: str) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def _wait_finished(client: httpx.Client, batch_ids, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        batches = {b: client.get(f"/api/batch-status/{b}").json() for b in batch_ids}
        if all(b["finished"] for b in batches.values()) or time.monotonic() > deadline:
            return batches
        time.sleep(1)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_thirty_uploads_reach_one_outcome_each_without_starting_a_run(pg_dsn, tmp_path):
    inbox_dir = str(tmp_path / "inbox")
    limit = 1_000_000
    originals = [(n, open(os.path.join(SAMPLES, n), "rb").read()) for n in SAMPLE_FILES]  # 20 files
    assert len(originals) == 20 and CORRUPT in SAMPLE_FILES
    too_large = ("huge.txt", b"lorem ipsum dolor sit amet\n" * (limit // 20))
    duplicates = [("invoice copy.pdf", dict(originals)["invoice-1.pdf"]),
                  ("receipt again.txt", dict(originals)["receipt-1.txt"]),
                  ("resume (2).pdf", dict(originals)["resume-2.pdf"])]
    notes = [(f"note-{i}.md", f"# Note {i}\n\nShipment {secrets.token_hex(4)} left the warehouse on day {i}.\n"
              .encode()) for i in range(6)]
    with serve(pg_dsn, inbox_dir=inbox_dir, max_upload_bytes=limit) as url, \
            sync.watch_process(inbox_dir, pg_dsn, ["--watch-settle", "0.2"], interval=0.5,
                               data_dir=str(tmp_path / "data")), \
            httpx.Client(base_url=url, timeout=60) as client:
        # 21 files in one multipart request (the too-large one is refused alone), 9 as streamed bodies
        answer = client.post("/api/documents", files=[("files", f) for f in originals + [too_large]])
        assert answer.status_code == 202, answer.text
        files = answer.json()["files"]
        assert [f["arrival"] for f in files] == ["stored"] * 20 + ["refused"]
        assert "upload limit" in files[-1]["error"]
        batch_ids = [answer.json()["batch_id"]]
        by_name = {f["filename"]: f for f in files}
        for name, data in duplicates + notes:
            single = client.post("/api/documents", params={"filename": name}, content=data,
                                 headers={"Content-Type": "application/octet-stream"})
            assert single.status_code == 202, single.text
            entry = single.json()["files"][0]
            batch_ids.append(single.json()["batch_id"])
            if (name, data) in duplicates:  # recognised on arrival, with the original's id
                original = {"invoice copy.pdf": "invoice-1.pdf", "receipt again.txt": "receipt-1.txt",
                            "resume (2).pdf": "resume-2.pdf"}[name]
                assert entry["arrival"] == "duplicate" and entry["document_id"] == by_name[original]["document_id"]
            else:
                assert entry["arrival"] == "stored"
        assert len(batch_ids) == 10

        batches = _wait_finished(client, batch_ids, timeout=600)
        outcomes = [f for b in batches.values() for f in b["files"]]
        assert len(outcomes) == 30
        unfinished = [f for f in outcomes if f["status"] not in inbox.FINAL]
        assert not unfinished, unfinished
        failed = [f for f in outcomes if f["status"] == "failed"]
        assert [f["filename"] for f in failed] == [CORRUPT] and failed[0]["error_stage"] == "convert"
        assert [f["filename"] for f in outcomes if f["status"] == "refused"] == ["huge.txt"]
        assert sum(f["status"] == "completed" for f in outcomes) == 28
        assert all(f["run_id"].startswith("watch-") for f in outcomes if f["status"] != "refused")
        # Nobody started a run: the only runs are the watch's.
        runs = client.get("/api/runs").json()
        assert runs and all(r["id"].startswith("watch-") for r in runs)
        # Nothing half written anywhere, and every stored file under its content hash.
        assert os.listdir(os.path.join(inbox_dir, inbox.PARTIAL)) == []
        for f in outcomes:
            if f["arrival"] == "stored":
                assert inbox.in_inbox(inbox_dir, f["document_id"]).endswith(f["filename"])

        # Seconds from upload to searchable for one small PDF, the watch idle (its last run ended).
        client.get("/api/search", params={"q": "warm up the query model"})
        deadline = time.monotonic() + 120
        while any(r["status"] == "running" for r in client.get("/api/runs").json()) and time.monotonic() < deadline:
            time.sleep(0.5)
        word = "zanzibar" + secrets.token_hex(3)
        _one_page_pdf(tmp_path / "small.pdf", f"Delivery note\n\nThe parcel {word} was delivered to Leiden.")
        started = time.monotonic()
        sent = client.post("/api/documents", params={"filename": "small.pdf"},
                           content=(tmp_path / "small.pdf").read_bytes())
        doc_id = sent.json()["files"][0]["document_id"]
        while time.monotonic() - started < 120:
            hits = client.get("/api/search", params={"q": word}).json()["results"]
            if any(h["id"] == doc_id for h in hits):
                break
            time.sleep(0.2)
        latency = time.monotonic() - started
        print(f"\nupload to searchable, one small PDF: {latency:.1f} s")
        assert any(h["id"] == doc_id for h in hits), "the uploaded PDF never became searchable"
        assert latency < 60


def test_upload_client_resumes_after_being_stopped_half_way(pg_dsn, tmp_path):
    folder = tmp_path / "outbox"
    (folder / "sub").mkdir(parents=True)
    for i in range(12):
        where = folder / "sub" if i % 3 == 0 else folder
        (where / f"memo-{i:02d}.txt").write_text(f"Memo {i}: order {secrets.token_hex(6)} is ready.\n")
    state = tmp_path / "state.jsonl"
    command = [sys.executable, "-m", "pipeline.upload", str(folder), "--state", str(state), "--workers", "3",
               "--json", "--no-progress"]
    with serve(pg_dsn, inbox_dir=str(tmp_path / "inbox")) as url:
        first = subprocess.run(command + ["--url", url, "--limit", "5"], capture_output=True, text=True, cwd=ROOT)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["stored"] == 5
        with open(state, "a") as fh:
            fh.write('{"path": "cut short by a ki')  # a client killed while writing its state
        second = subprocess.run(command + ["--url", url], capture_output=True, text=True, cwd=ROOT)
        assert second.returncode == 0, second.stderr
        summary = json.loads(second.stdout)
        assert (summary["already_sent"], summary["stored"], summary["failed"]) == (5, 7, 0)
        third = subprocess.run(command + ["--url", url], capture_output=True, text=True, cwd=ROOT)
        assert json.loads(third.stdout)["already_sent"] == 12
        # A file changed since it was sent goes again.
        (folder / "memo-01.txt").write_text("Memo 1, revised.\n")
        fourth = json.loads(subprocess.run(command + ["--url", url], capture_output=True, text=True,
                                           cwd=ROOT).stdout)
        assert (fourth["already_sent"], fourth["stored"]) == (11, 1)
        # The server saw each file once (the first run's five were not sent again).
        with psycopg.connect(pg_dsn) as conn:
            assert conn.execute("SELECT count(*), count(DISTINCT document_id) FROM uploads").fetchone() == (13, 13)
        # A server that is not there: the files are reported failed (exit 1), and stay to be sent.
        (folder / "memo-new.txt").write_text("Memo new.\n")
    down = subprocess.run(command + ["--url", url, "--retries", "1"], capture_output=True, text=True, cwd=ROOT)
    assert down.returncode == 1 and json.loads(down.stdout)["failed"] == 1


def test_inbox_and_watch_work_through_a_beam_filesystem(pg_dsn, tmp_path):
    """The paths for a bucket (gs://, s3://, hdfs://): no os calls, only Beam's FileSystems. Run over
    Beam's LocalFileSystem reached as `localtest://` (tests/beam_fs.py), not a real bucket; the watch's
    run is in this process (where the scheme is registered), the converter too."""
    from tests import beam_fs

    (tmp_path / "bucket").mkdir()
    box = beam_fs.PREFIX + str(tmp_path / "bucket" / "inbox")
    memo = b"Memo: the loading dock in Gouda is closed on 2024-07-01 for repairs.\n"
    stored = inbox.store_upload(box, "memo.txt", [memo[:20], memo[20:]], 10_000, pg_dsn)
    assert stored["arrival"] == "stored" and stored["path"] == f"{box}/{stored['document_id'][:2]}/" \
        f"{stored['document_id']}/memo.txt"
    again = inbox.store_upload(box, "memo (copy).txt", [memo], 10_000, pg_dsn)
    assert (again["arrival"], again["path"]) == ("duplicate", stored["path"])
    with pytest.raises(inbox.UploadRefused):
        inbox.store_upload(box, "big.txt", [b"x" * 6000, b"x" * 6000], 10_000, pg_dsn)
    assert list(sync.list_folder(box)) == [stored["path"]]  # nothing half written, no .partial

    watch = sync.FolderWatch(["--watch", "--input", box, "--pg-dsn", pg_dsn, "--watch-settle", "0",
                              "--no-isolate-convert", "--runner=FnApiRunner", "--direct_running_mode=in_memory"])
    watch.start()
    try:
        report = watch.cycle()
        assert report["changed"] == 1 and report["run"]["completed"] == 1
        assert _statuses(pg_dsn, [stored["path"]])[stored["path"]] == ("completed", "completed",
                                                                        stored["document_id"])
        assert watch.cycle()["run"] is None  # the manifest in .docpipe-watch/ is not a new file
    finally:
        watch.close()
