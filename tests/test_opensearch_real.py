"""OpenSearch on a REAL cluster: index, hybrid search with k-NN, reindex. Runs only when OPENSEARCH_URL
is set (no real OpenSearch can run on the build machines; tests/test_opensearch.py covers what an
imitation can). On a workstation with Docker:

    docker run -d -p 9200:9200 -e discovery.type=single-node -e DISABLE_SECURITY_PLUGIN=true \\
        opensearchproject/opensearch:2.19.1
    OPENSEARCH_URL=http://localhost:9200 .venv/bin/python -m pytest tests/test_opensearch_real.py -m opensearch_real

With the security plugin on: OPENSEARCH_URL=https://localhost:9200, OPENSEARCH_USER/OPENSEARCH_PASSWORD,
and OPENSEARCH_CA_CERTS (or OPENSEARCH_VERIFY_CERTS=false for the demo certificate).
Every test works under its own index prefix and deletes it afterwards.
"""
from __future__ import annotations

import os
import secrets

import pytest

from pipeline import search_opensearch as sos
from pipeline import store
from transforms import write_opensearch as wos
from transforms.records import Chunk, Document, content_id
from transforms.write_postgres import PostgresWriter

URL = os.environ.get("OPENSEARCH_URL")
pytestmark = [pytest.mark.opensearch_real,
              pytest.mark.skipif(not URL, reason="needs a real OpenSearch: set OPENSEARCH_URL "
                                                 "(see the module docstring for a one-line container)")]

TEXTS = {
    "invoice": "Invoice INV-7. Invoice date 2024-03-15. Payment terms: net 30 days. Total due EUR 1,428.00.",
    "contract": "Service agreement between Acme and Globex. Either party may terminate with ninety days notice.",
    "letter": "Dear Sir, thank you for your letter of last week. Yours sincerely, Bob.",
}


@pytest.fixture
def settings():
    s = wos.OpenSearchSettings.from_env(URL, index=f"docpipe-test-{secrets.token_hex(4)}")
    yield s
    client = s.client()
    client.indices.delete(index=f"{s.index}-*", ignore_unavailable=True)
    for alias in s.layout.aliases:
        client.indices.delete_index_template(name=alias, ignore=[404])
    client.close()


def processed(embedder, category: str) -> Document:
    text = TEXTS[category]
    doc = Document(id=content_id(text.encode()), paths=[f"/in/{category}.txt"], size=len(text), status="pending",
                   filename=f"{category}.txt", text=text, category=category, confidence=0.9,
                   metadata={"title": text.split(".")[0], "dates": ["2024-03-15"], "fields": {}})
    doc.chunks = [Chunk(0, text, 0, embedder.embed([text])[0])]
    return doc


def test_index_hybrid_search_and_reindex(pg_dsn, settings, embedder):
    from pipeline import reindex

    docs = [processed(embedder, c) for c in TEXTS]
    writer = PostgresWriter(pg_dsn, "real", index_after=True)
    writer.write_batch(docs)
    previous = wos.start_run(settings, embedder.dimension)
    outcome = wos.OpenSearchIndexer(settings, client=settings.client()).write(docs)
    writer.record_indexing(outcome.indexed, outcome.failed)
    wos.finish_run(settings, previous)
    assert sorted(outcome.indexed) == sorted(d.id for d in docs)

    backend = sos.OpenSearchBackend(settings)
    query = "when can the agreement be terminated"
    results = backend.search(query, embedder.embed([query])[0], limit=3)
    assert results[0]["category"] == "contract"
    expected = store.search(pg_dsn, query, embedder.embed([query])[0], limit=3)
    assert results[0]["id"] == expected[0]["id"] and results[0].keys() == expected[0].keys()
    only = backend.search(query, embedder.embed([query])[0], category="invoice")
    assert [r["category"] for r in only] == ["invoice"]  # the filter holds inside the k-NN search

    result = reindex.reindex(pg_dsn, settings, new_index=True, delete_old=True)
    assert result["indexed"] == 3 and result["failed"] == 0
    client = settings.client()
    client.indices.refresh(index=",".join(settings.layout.aliases))
    assert client.count(index=settings.layout.documents)["count"] == 3
    again = backend.search(query, embedder.embed([query])[0], limit=3)
    assert [r["id"] for r in again] == [r["id"] for r in results]
