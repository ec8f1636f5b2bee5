"""A portable run whose workers cannot start fails within a minute, with one clear line (issue 19).

Real Beam job services and worker pools on loopback ports, as in tests/test_portable.py. Before
pipeline.startup existed, the same runs waited 5 minutes (--job_server_timeout) for a job service
that was not there, and 5 minutes then ended in DEADLINE_EXCEEDED tracebacks when the worker pool's
workers could not start.
"""
import os
import subprocess
import sys
import time

import psycopg
import pytest

from pipeline import run as run_module
from pipeline import store
from tests import docs
from tests.test_portable import free_port, wait_for_port

pytestmark = pytest.mark.slow


def start(args, env=None):
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)


@pytest.fixture
def job_service():
    port = free_port()
    process = start(["apache_beam.runners.portability.local_job_service_main", "--port", str(port)])
    try:
        wait_for_port(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def worker_pool(python_dir):
    """A worker pool that starts its workers with the `python` found first in python_dir."""
    port = free_port()
    env = dict(os.environ, PATH=str(python_dir) + os.pathsep + os.environ.get("PATH", ""))
    process = start(["apache_beam.runners.worker.worker_pool_main", "--service_port", str(port)], env=env)
    wait_for_port(port, process)
    return port, process


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "in"
    docs.write(folder, "letter.txt", "Dear Ms. Smith, thank you for your letter of 3 May. Yours sincerely, Bob Jones")
    return folder


def pipeline_run(args, seconds=240):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline.run", *args], capture_output=True, text=True,
                          timeout=seconds)
    return done.returncode, done.stderr, time.monotonic() - started


def run_on_worker_pool(python_dir, folder, job_service, pg_dsn, run_id, startup_timeout):
    """pipeline.run on PortableRunner with EXTERNAL workers from a pool whose `python` is python_dir's;
    the pool is stopped afterwards. Returns (exit code, stderr, seconds, the pool's port)."""
    pool, process = worker_pool(python_dir)
    try:
        code, err, seconds = pipeline_run([
            "--input", str(folder), "--pg-dsn", pg_dsn, "--run-id", run_id, "--startup-timeout", str(startup_timeout),
            "--runner=PortableRunner", f"--job_endpoint=localhost:{job_service}",
            "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool}"])
    finally:
        process.terminate()
        process.wait(10)
    return code, err, seconds, pool


def test_no_job_service_is_refused_at_once(folder, capsys):
    port = free_port()  # nothing listens there
    code = run_module.main(["--input", str(folder), "--runner=PortableRunner", f"--job_endpoint=localhost:{port}",
                            "--environment_type=EXTERNAL", f"--environment_config=localhost:{free_port()}"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no job service at localhost:{port} (--job_endpoint): Connection refused. Start it there "
        f"(Beam's `python -m apache_beam.runners.portability.local_job_service_main --port {port}`, or the "
        "Flink/Spark job server), or correct --job_endpoint")


def test_no_worker_pool_is_refused_at_once(folder, job_service, capsys):
    pool = free_port()
    code = run_module.main(["--input", str(folder), "--runner=PortableRunner", f"--job_endpoint=localhost:{job_service}",
                            "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool}"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no worker pool at localhost:{pool} (--environment_config, EXTERNAL workers): "
                          "Connection refused.") and err.count("\n") == 1


def test_workers_that_cannot_start_fail_the_run_within_the_startup_timeout(folder, job_service, pg_dsn, tmp_path):
    # The pool is there, but the `python` it starts workers with exits at once (as one without Beam or
    # this project installed would).
    bad = tmp_path / "bad-bin"
    bad.mkdir()
    (bad / "python").write_text("#!/bin/sh\necho 'this python cannot run a Beam worker' >&2\nexit 1\n")
    (bad / "python").chmod(0o755)
    code, err, seconds, pool = run_on_worker_pool(bad, folder, job_service, pg_dsn, "no-workers", 10)
    assert code == 1
    assert err.strip() == (
        f"error: no worker started within 10 s (--startup-timeout) of the job's submission on PortableRunner (job service "
        f"localhost:{job_service}, EXTERNAL worker pool localhost:{pool}); check that the worker pool runs and "
        "can start workers: the `python` on its PATH must have Beam and this project installed (its log shows "
        f"the worker's error), and that the workers reach PostgreSQL at {store.mask_dsn(pg_dsn)} (they record "
        "their start there); or give the workers longer with --startup-timeout")
    assert seconds < 60  # the limit plus start-up and cancelling, instead of Beam's 300 s deadline
    with psycopg.connect(pg_dsn) as conn:
        status, started = conn.execute("SELECT status, work_started_at FROM runs WHERE id = 'no-workers'").fetchone()
    assert (status, started) == ("failed", None)


def test_workers_that_start_are_not_stopped(folder, job_service, pg_dsn):
    """The same set-up with a worker pool whose python is this project's: the watch sees the workers
    begin and the run completes."""
    code, err, _, _ = run_on_worker_pool(os.path.dirname(sys.executable), folder, job_service, pg_dsn, "workers", 30)
    assert code == 0, err
    with psycopg.connect(pg_dsn) as conn:
        status, started = conn.execute("SELECT status, work_started_at FROM runs WHERE id = 'workers'").fetchone()
        completed = conn.execute("SELECT count(*) FROM inputs WHERE run_id = 'workers' AND status = 'completed'"
                                 ).fetchone()[0]
    assert status == "completed" and started is not None and completed == 1


def test_a_job_service_that_does_not_answer_fails_the_run_within_the_startup_timeout(folder, pg_dsn):
    """Something accepts TCP connections at --job_endpoint but never speaks gRPC (a wrong port, a
    proxy): the pre-flight connection succeeds, and Beam alone would wait --job_server_timeout (300 s)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.extend(listener.accept() for _ in range(8)), daemon=True).start()
    port = listener.getsockname()[1]
    try:
        code, err, seconds = pipeline_run([
            "--input", str(folder), "--pg-dsn", pg_dsn, "--run-id", "silent", "--startup-timeout", "10",
            "--runner=PortableRunner", f"--job_endpoint=localhost:{port}",
            "--environment_type=EXTERNAL", f"--environment_config=localhost:{port}"])
    finally:
        listener.close()
    assert code == 1
    assert err.strip() == (
        f"error: the job was not accepted within 10 s (--startup-timeout) by PortableRunner (job service "
        f"localhost:{port}, EXTERNAL worker pool localhost:{port}); check that the job service runs and answers "
        "(a Flink/Spark job server started from its jar may first download it), or give it longer with "
        "--startup-timeout")
    assert seconds < 60
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT status FROM runs WHERE id = 'silent'").fetchone()[0] == "failed"


@pytest.mark.parametrize("argv, watched", [
    (["--runner=PortableRunner", "--job_endpoint=localhost:8099"], True),
    (["--runner=FlinkRunner", "--flink_master=flink.example:8081"], True),
    (["--runner=SparkRunner", "--spark_master_url=spark://spark.example:7077"], True),
    (["--runner=FnApiRunner"], False),                   # local: pipeline.watch handles dead workers
    (["--runner=DataflowRunner"], False),                # provisions VMs for minutes; reports its own errors
    (["--runner=apache_beam.runners.dask.dask_runner.DaskRunner"], False),
])
def test_which_runners_are_watched(argv, watched):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline import startup

    assert startup.watched(PipelineOptions(argv)) is watched


def test_flink_on_a_cluster_is_not_checked_from_here_and_is_described():
    """An EXTERNAL pool on a Flink cluster sits beside each task manager: localhost there is not
    localhost here, so the pre-flight leaves it alone (nothing listens here on that port)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline import startup

    options = PipelineOptions(["--runner=FlinkRunner", "--flink_master=flink.example:8081",
                               "--environment_type=EXTERNAL", f"--environment_config=localhost:{free_port()}"])
    startup.preflight(options)  # no error: not checkable from here
    where, check = startup.describe(options)
    assert where.startswith("FlinkRunner (the runner's own job server, EXTERNAL worker pool localhost:")
    assert "worker pool runs and can start workers" in check
    docker = PipelineOptions(["--runner=SparkRunner", "--environment_type=DOCKER"])
    assert "SDK container image" in startup.describe(docker)[1]
