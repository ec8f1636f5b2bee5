"""What the commands (status, search, health, serve) share: finding the store, printing errors."""
from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import sys

from pipeline import embedded, store
from pipeline.options import DEFAULT_DATA_DIR


def add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pg-dsn", default=None,
                        help="External PostgreSQL; default: PG_DSN, else the embedded one in --data-dir")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help="Folder of the embedded PostgreSQL (default: %(default)s)")


def dsn_from_args(args: argparse.Namespace) -> str:
    dsn = args.pg_dsn or os.environ.get("PG_DSN")
    if dsn:
        return dsn
    if not os.path.exists(os.path.join(args.data_dir, "pg")):
        raise store.StoreError(f"no embedded database in {os.path.abspath(args.data_dir)}: run "
                               "`python -m pipeline.run --input ...` first, or give --pg-dsn / --data-dir")
    return embedded.start(args.data_dir)


def to_json(value) -> str:
    def default(obj):
        if isinstance(obj, (dt.datetime, dt.date)):
            return obj.isoformat()
        if isinstance(obj, decimal.Decimal):
            return float(obj)
        return str(obj)
    return json.dumps(value, default=default, indent=2, ensure_ascii=False)


def run_command(main_fn, argv=None) -> int:
    """Run a command's body; known failures become one clear line and exit status 2."""
    try:
        return main_fn(argv)
    except (store.StoreError, embedded.EmbeddedPostgresError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
