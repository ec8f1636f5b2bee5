"""A run whose process is gone is not shown as running forever (issue 19): pipeline.progress refreshes
runs.heartbeat_at while the run's process lives; a 'running' run silent for longer than
store.HEARTBEAT_STALE_SECONDS is reported 'gone' by status, the API's run listing and the web page's data.
On the real embedded PostgreSQL."""
from __future__ import annotations

import time

import psycopg

from pipeline import status as status_cli
from pipeline import store
from pipeline.progress import ProgressReporter


def set_clock(dsn, run_id, column, seconds_ago):
    with psycopg.connect(dsn) as conn:
        conn.execute(f"UPDATE runs SET {column} = now() - make_interval(secs => %s) WHERE id = %s",
                     (seconds_ago, run_id))


def test_a_silent_running_run_is_gone_and_a_live_one_is_running(pg_dsn, capsys):
    store.start_run(pg_dsn, "alive", "/in", {})
    store.start_run(pg_dsn, "killed", "/in", {})
    store.start_run(pg_dsn, "done", "/in", {})
    store.finish_run(pg_dsn, "done", "completed", store.run_counts(pg_dsn, "done"))
    for run_id in ("alive", "killed", "done"):
        set_clock(pg_dsn, run_id, "started_at", 3600)
    set_clock(pg_dsn, "killed", "heartbeat_at", store.HEARTBEAT_STALE_SECONDS + 60)
    # The live one's process reports: ProgressReporter beats while the run goes on.
    with ProgressReporter(pg_dsn, "alive", interval=0.05):
        time.sleep(0.5)
    by_id = {r["id"]: r for r in store.list_runs(pg_dsn)}
    assert by_id["alive"]["status"] == "running"
    assert by_id["killed"]["status"] == "gone" and by_id["killed"]["last_seen_at"] is not None
    assert by_id["done"]["status"] == "completed"
    assert store.run_status(pg_dsn, "killed")["run"]["status"] == "gone"
    # A run of an older version (no heartbeat at all) counts from its start.
    store.start_run(pg_dsn, "old", "/in", {})
    set_clock(pg_dsn, "old", "started_at", 3600)
    assert store.run_status(pg_dsn, "old")["run"]["status"] == "gone"
    assert status_cli.main(["--pg-dsn", pg_dsn, "killed"]) == 0
    out = capsys.readouterr().out
    assert "(gone): its process has not been heard of since" in out and "run it again" in out
