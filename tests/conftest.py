"""Shared fixtures: one real embedded PostgreSQL (pgvector) per test session, a fresh database per test."""
from __future__ import annotations

import itertools
import os
import re

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """DSN of the embedded PostgreSQL server (the real thing the product starts, not a mock)."""
    from pipeline import embedded

    return embedded.start(str(tmp_path_factory.mktemp("pgdata")))


@pytest.fixture
def pg_dsn(pg_server, request):
    """A new, empty database on the embedded server, with the schema in place."""
    from pipeline import store

    from pipeline.embedded import fresh_database

    name = "t_" + re.sub(r"\W", "_", request.node.name)[:40].lower() + f"_{next(_counter)}"
    dsn = fresh_database(pg_server, name)
    store.migrate(dsn)
    return dsn


@pytest.fixture(scope="session")
def embedder():
    from transforms.backends.minilm import get_embedder

    return get_embedder()
