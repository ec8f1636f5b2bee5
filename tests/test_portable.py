"""The portable path for real: Beam's Python job service and an EXTERNAL worker pool on loopback
ports, the pipeline submitted with PortableRunner (what Flink and Spark runners also do), into the
real embedded PostgreSQL. Its results must equal the local multi-process run's."""
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
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT i.path, i.status, i.duplicate_of IS NOT NULL, d.category, d.error_stage, "
            "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) "
            "FROM inputs i JOIN documents d ON d.id = i.document_id ORDER BY i.path").fetchall()
    return [(os.path.basename(r[0]), *r[1:]) for r in rows]


def test_portable_runner_equals_local_run(tmp_path, pg_server, portable_services):
    folder = tmp_path / "in"
    docs.mixed_folder(folder)
    dsns = {name: fresh_database(pg_server, f"portable_{name}") for name in ("local", "portable")}
    local = run_module.run(["--input", str(folder), "--pg-dsn", dsns["local"]])
    portable = run_module.run(["--input", str(folder), "--pg-dsn", dsns["portable"], *portable_services])
    assert portable["status"] == "completed"
    assert outcomes(dsns["portable"]) == outcomes(dsns["local"])
    assert {k: portable[k] for k in ("paths", "completed", "failed", "duplicates")} == {
        k: local[k] for k in ("paths", "completed", "failed", "duplicates")}
