"""Other runners, for real, against the local multi-process run (the reference, run once here):

- the portable path: Beam's Python job service and an EXTERNAL worker pool on loopback ports, the
  pipeline submitted with PortableRunner (what the Flink and Spark runners also do);
- a real distributed engine: a Dask distributed cluster (a scheduler and two worker processes on
  loopback) through Beam's DaskRunner. Beam's DaskRunner drops what a DoFn emits in finish_bundle,
  so pipeline/graph.py batches with a GroupByKey on it (before that, most documents were lost).

Each run writes into its own database on the real embedded PostgreSQL; every input path's results
must equal the local run's, and the local run's must be the expected ones.
"""
import os
import socket
import subprocess
import sys
import time

import psycopg
import pytest

from pipeline import run as run_module
from pipeline.embedded import fresh_database
from tests import docs

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


@pytest.fixture
def portable_services(tmp_path):
    job_port, pool_port = free_port(), free_port()
    # The worker pool starts each SDK worker as `python -c ...` found on PATH: it must be the
    # interpreter that has this project installed (on a cluster: the worker image's).
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    procs = [
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                          "--port", str(job_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                          "--service_port", str(pool_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=env),
    ]
    try:
        wait_for_port(job_port, procs[0])
        wait_for_port(pool_port, procs[1])
        yield ["--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}",
               "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool_port}"]
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def outcomes(dsn):
    """Per input path: status, duplicate flag, document id (content hash), category, failing stage,
    extracted fields, and the chunks (count and a digest of their text). Vectors and confidences are
    left out: thread counts differ between runners and move them in the last float digits."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT i.path, i.status, i.duplicate_of IS NOT NULL, d.id, d.category, d.error_stage, "
            "d.metadata -> 'fields', "
            "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id), "
            "(SELECT md5(string_agg(c.text, '|' ORDER BY c.idx)) FROM chunks c "
            " WHERE c.document_id = d.id) "
            "FROM inputs i JOIN documents d ON d.id = i.document_id ORDER BY i.path").fetchall()
    return [(os.path.basename(r[0]), *r[1:]) for r in rows]


def runner_of(dsn, run_id):
    """The runner a run was submitted with, as recorded in its run row."""
    with psycopg.connect(dsn) as conn:
        options = conn.execute("SELECT options FROM runs WHERE id = %s", (run_id,)).fetchone()[0]
    return options.get("runner")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, pg_server):
    """The mixed folder, its expected statuses, and the local run's summary and database."""
    folder = tmp_path_factory.mktemp("runners") / "in"
    expected = {os.path.basename(k): v for k, v in docs.mixed_folder(folder).items()}
    dsn = fresh_database(pg_server, "runners_local")
    summary = run_module.run(["--input", str(folder), "--pg-dsn", dsn])
    return {"folder": folder, "expected": expected, "dsn": dsn, "summary": summary}


def assert_same_results(reference, dsn, summary):
    """Both runs processed every path of the folder, with identical results."""
    rows = outcomes(reference["dsn"])
    assert {r[0]: r[1] for r in rows} == reference["expected"]  # the reference itself is right
    assert sum(1 for r in rows if r[7]) >= 6                    # and embedded real chunks
    assert outcomes(dsn) == rows
    keys = ("paths", "completed", "failed", "duplicates")
    assert {k: summary[k] for k in keys} == {k: reference["summary"][k] for k in keys}


def test_portable_runner_equals_local_run(reference, pg_server, portable_services):
    dsn = fresh_database(pg_server, "runners_portable")
    portable = run_module.run(["--input", str(reference["folder"]), "--pg-dsn", dsn, *portable_services])
    assert portable["status"] == "completed"
    assert runner_of(dsn, portable["run_id"]) == "PortableRunner"
    assert_same_results(reference, dsn, portable)


@pytest.fixture
def dask_cluster():
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    # Dask's worker processes are daemonic by default, and daemonic processes may not start the
    # converter's child process (transforms/isolate.py): the worker image sets what the test sets.
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, memory_limit="6GiB")
    try:
        yield cluster
    finally:
        try:  # the DaskRunner opens a client it never closes; close it before its scheduler goes
            distributed.default_client().close()
        except ValueError:
            pass
        cluster.close()


def dofn_task_workers():
    """A scheduler plugin that collects the workers that completed tasks running Beam DoFns."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class DoFnTaskWorkers(SchedulerPlugin):
        def __init__(self):
            self.workers = set()

        def transition(self, key, start, finish, *args, **kwargs):
            if start == "processing" and finish == "memory" and "apply_dofn_to_bundle" in str(key):
                self.workers.add(kwargs.get("worker"))

    return DoFnTaskWorkers()


def test_dask_runner_equals_local_run(reference, pg_server, dask_cluster):
    dsn = fresh_database(pg_server, "runners_dask")
    seen = dofn_task_workers()
    dask_cluster.scheduler.add_plugin(seen, name="docpipe-test")
    on_dask = run_module.run(["--input", str(reference["folder"]), "--pg-dsn", dsn, "--profile", "dask",
                              f"--dask_client_address={dask_cluster.scheduler_address}",
                              "--dask_npartitions=2"])
    assert on_dask["status"] == "completed"
    assert runner_of(dsn, on_dask["run_id"]).endswith("DaskRunner")
    # The DoFns ran as tasks of this cluster, on both its workers (the paths are listed at
    # submission so that the run is spread over partitions: see pipeline/graph.py).
    assert seen.workers == set(dask_cluster.scheduler.workers)
    assert_same_results(reference, dsn, on_dask)
