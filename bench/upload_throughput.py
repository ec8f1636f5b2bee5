"""Documents per second through uploads and the server's watch, against pipeline.run over the same folder.

    python -m bench.upload_throughput [--docs 100] [--seed 7] [--scanned-share 0.1] [--json FILE]

Generates a labelled corpus (bench.corpus), then into two fresh databases of one embedded PostgreSQL:
1. `python -m pipeline.run --input DIR` (default runner: one worker process per core), timed from
   start to exit;
2. pipeline.serve's app with an inbox (uvicorn on a loopback port), its watch (`pipeline.run --watch`,
   a child process, as `pipeline.serve` starts it) and `python -m pipeline.upload DIR`, timed from the
   client's start until every uploaded file has its outcome in the store. The watch is started first
   and has loaded its models by then, as a running server's watch has.
Both count documents with an outcome (completed or failed) per wall-clock second.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def _server(dsn: str, inbox: str):
    import socket

    import uvicorn

    from pipeline.serve import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(dsn, inbox_dir=inbox), host="127.0.0.1", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _outcomes(dsn: str) -> tuple[int, int]:
    """(files uploaded, files whose document has a final outcome)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE u.arrival = 'refused' OR d.status IN ('completed', 'failed'))
               FROM uploads u LEFT JOIN documents d ON d.id = u.document_id""").fetchone()


def _documents(dsn: str) -> dict:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM documents GROUP BY 1").fetchall())


def measure(docs: int, seed: int, scanned_share: float, workdir: str) -> dict:
    from pipeline import embedded, store, sync
    from pipeline.embedded import fresh_database

    corpus = os.path.join(workdir, "corpus")
    subprocess.run([sys.executable, "-m", "bench.corpus", "--out", corpus, "--docs", str(docs), "--seed", str(seed),
                    "--scanned-share", str(scanned_share)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    folder = os.path.join(corpus, "docs")
    server = embedded.start(os.path.join(workdir, "data"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    report = {"documents": docs, "scanned_share": scanned_share, "cores": os.cpu_count()}

    dsn = fresh_database(server, "bench_run")
    store.migrate(dsn)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pipeline.run", "--input", folder, "--pg-dsn", dsn,
                    "--data-dir", os.path.join(workdir, "data")], check=True, cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    report["pipeline_run"] = {"seconds": round(seconds, 1), "documents_per_second": round(docs / seconds, 2),
                              "outcomes": _documents(dsn)}

    dsn = fresh_database(server, "bench_upload")
    store.migrate(dsn)
    inbox = os.path.join(workdir, "inbox")
    with _server(dsn, inbox) as url, sync.watch_process(inbox, dsn, interval=1.0,
                                                        data_dir=os.path.join(workdir, "data")):
        # let the watch load its models on a first document, as a running server's watch has
        subprocess.run([sys.executable, "-m", "pipeline.upload", os.path.join(ROOT, "samples", "copies"), "--url", url, "--state", os.path.join(workdir, "warm.jsonl"),
                        "--no-progress"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        while _outcomes(dsn)[1] < 1:
            time.sleep(0.5)
        warm = _outcomes(dsn)[0]
        started = time.monotonic()
        client = subprocess.run([sys.executable, "-m", "pipeline.upload", folder, "--url", url, "--json",
                                 "--no-progress", "--state", os.path.join(workdir, "state.jsonl")],
                                check=True, cwd=ROOT, capture_output=True, text=True)
        sent = time.monotonic() - started
        while True:
            total, done = _outcomes(dsn)
            if done >= total:
                break
            time.sleep(0.5)
        seconds = time.monotonic() - started
    summary = json.loads(client.stdout)
    report["upload_and_watch"] = {"seconds": round(seconds, 1), "upload_seconds": round(sent, 1),
                                  "documents_per_second": round((total - warm) / seconds, 2),
                                  "stored": summary["stored"], "duplicates": summary["duplicate"],
                                  "outcomes": _documents(dsn)}
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scanned-share", type=float, default=0.1)
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as workdir:
        report = measure(args.docs, args.seed, args.scanned_share, workdir)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
