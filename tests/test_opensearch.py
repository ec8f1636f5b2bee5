"""OpenSearch sink, reindex and search backend.

No real OpenSearch can run on these machines. The sink and the non-vector search run against
osmem-server (PyPI `osmem-server`, an in-memory IMITATION of the OpenSearch REST API: index
templates, aliases, bulk with per-item errors, mget, BM25 match queries, filters, sort), started here
on a free loopback port. osmem rejects every k-NN query, so the k-NN and hybrid request bodies are
checked offline against the shapes of the OpenSearch documentation ("Efficient k-NN filtering",
"k-NN vector" mapping); tests/test_opensearch_real.py runs them on a real cluster (OPENSEARCH_URL).
PostgreSQL and MiniLM are the real ones.
"""
from __future__ import annotations

import http.server
import itertools
import json
import threading
import urllib.request

import numpy as np
import psycopg
import pytest
from osmem_server import OsmemServer

from pipeline import search_opensearch as sos
from pipeline import store
from transforms import write_opensearch as wos
from transforms.records import COMPLETED, FAILED, INDEX_PENDING, SKIPPED, Chunk, Document, content_id
from transforms.write_postgres import PostgresWriter

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def osmem():
    """The imitation OpenSearch on a free loopback port (the server picks it), for this module."""
    server = OsmemServer.start(japanese=False, addr="127.0.0.1:0")
    yield server
    server.close()


@pytest.fixture
def settings(osmem):
    """Settings with an index prefix of this test's own, fast retries."""
    return wos.OpenSearchSettings.from_env(osmem.url, index=f"t{next(_prefixes)}", backoff=0.01, retries=2)


@pytest.fixture
def client(settings):
    c = settings.client()
    yield c
    c.close()


def make_doc(embedder, text: str, *, category="invoice", fields=None, path=None, n_chunks=2) -> Document:
    """A processed document with real MiniLM vectors (one per chunk)."""
    doc = Document(id=content_id(text.encode()), paths=[path or f"/in/{content_id(text.encode())[:8]}.txt"],
                   size=len(text), status=INDEX_PENDING, filename="x.txt", mime="text/plain", text=text,
                   category=category, confidence=0.9,
                   metadata={"title": text.split(".")[0], "dates": ["2024-03-15"], "fields": fields or {}})
    parts = [text[i::n_chunks] if n_chunks > 1 else text for i in range(n_chunks)]
    vectors = embedder.embed(parts)
    doc.chunks = [Chunk(i, part, 0, vectors[i]) for i, part in enumerate(parts)]
    return doc


def ids_in(client, index: str) -> list[str]:
    client.indices.refresh(index=index)
    hits = client.search(index=index, body={"size": 1000, "_source": False, "query": {"match_all": {}}})
    return sorted(h["_id"] for h in hits["hits"]["hits"])


# -- settings ------------------------------------------------------------------------------------

def test_credentials_from_url_or_env_are_never_shown(monkeypatch):
    s = wos.OpenSearchSettings.from_env("https://admin:s3cret@search.example:9200")
    assert (s.user, s.password, s.url) == ("admin", "s3cret", "https://search.example:9200")
    assert "s3cret" not in repr(s) and wos.mask_url("https://admin:s3cret@h:9200") == "https://admin:***@h:9200"
    monkeypatch.setenv(wos.ENV_USER, "bob")
    monkeypatch.setenv(wos.ENV_PASSWORD, "pw")
    monkeypatch.setenv(wos.ENV_VERIFY_CERTS, "false")
    monkeypatch.setenv(wos.ENV_CA_CERTS, "/etc/ca.pem")
    s = wos.OpenSearchSettings.from_env("https://h:9200")
    assert (s.user, s.password, s.verify_certs, s.ca_certs) == ("bob", "pw", False, "/etc/ca.pem")
    with pytest.raises(wos.OpenSearchError):
        wos.OpenSearchSettings.from_env("h:9200")


def test_batches_respect_count_and_bytes():
    actions = [wos.Action.make(str(i), "index", "ix", str(i), {"t": "x" * 100}) for i in range(10)]
    size = len(actions[0].lines)
    by_count = list(wos.batches(actions, 3, 10**6))
    assert [len(b) for b in by_count] == [3, 3, 3, 1]
    by_bytes = list(wos.batches(actions, 100, size * 4 + 1))
    assert [len(b) for b in by_bytes] == [4, 4, 2]
    assert [a for b in by_bytes for a in b] == actions


# -- index layout --------------------------------------------------------------------------------

def test_indices_behind_aliases_with_embedder_dimension(client, settings, embedder):
    layout = settings.layout
    assert wos.ensure_indices(client, layout, embedder.dimension) is True
    assert wos.ensure_indices(client, layout, embedder.dimension) is False  # idempotent
    for alias in layout.aliases:
        (index,) = client.indices.get_alias(name=alias)
        assert index.startswith(alias + "-")
    mapping = next(iter(client.indices.get_mapping(index=layout.chunks).values()))["mappings"]
    vector = mapping["properties"]["embedding"]
    assert vector["type"] == "knn_vector" and vector["dimension"] == embedder.dimension
    assert vector["method"]["name"] == "hnsw" and vector["method"]["space_type"] == "cosinesimil"
    with pytest.raises(wos.OpenSearchError, match="dimensional"):
        wos.ensure_indices(client, layout, embedder.dimension * 2)


def test_refresh_relaxed_during_a_run_and_restored(client, settings, embedder):
    previous = wos.start_run(settings, embedder.dimension)
    aliases = ",".join(settings.layout.aliases)
    current = client.indices.get_settings(index=aliases, name="index.refresh_interval")
    assert len(current) == 2 and {b["settings"]["index"]["refresh_interval"] for b in current.values()} == {"-1"}
    wos.finish_run(settings, previous)
    current = client.indices.get_settings(index=aliases, name="index.refresh_interval")
    assert all("refresh_interval" not in b.get("settings", {}).get("index", {}) for b in current.values())


def test_unreachable_opensearch_is_not_fatal_at_start():
    dead = wos.OpenSearchSettings.from_env(f"http://127.0.0.1:{_free_port()}", retries=0)
    assert wos.start_run(dead, 384) is None


# -- the sink ------------------------------------------------------------------------------------

def test_rerun_overwrites_and_one_bad_document_fails_alone(client, settings, embedder):
    wos.ensure_indices(client, settings.layout, embedder.dimension)
    docs = [make_doc(embedder, f"Invoice {i}. Payment terms net {i} days.", n_chunks=2) for i in range(3)]
    bad = make_doc(embedder, "Broken vectors. This one has the wrong dimension.")
    bad.chunks[1].vector = bad.chunks[1].vector[:10]
    indexer = wos.OpenSearchIndexer(settings, run_id="r1", client=client)

    outcome = indexer.write(docs + [bad])
    assert sorted(outcome.indexed) == sorted(d.id for d in docs)
    assert list(outcome.failed) == [bad.id] and "dimension" in outcome.failed[bad.id].lower()
    expected_docs = sorted(d.id for d in docs)
    expected_chunks = sorted(wos.chunk_id(d.id, i) for d in docs for i in range(2))
    assert ids_in(client, settings.layout.documents) == expected_docs
    # The bad document's good chunk went in; its document entry did not, so search never lists it.
    assert ids_in(client, settings.layout.chunks) == sorted(expected_chunks + [wos.chunk_id(bad.id, 0)])

    for doc in docs:
        doc.status = INDEX_PENDING
    again = indexer.write(docs)  # a rerun: same ids, no duplicates
    assert sorted(again.indexed) == expected_docs and not again.failed
    assert ids_in(client, settings.layout.documents) == expected_docs
    assert client.count(index=settings.layout.documents)["count"] == 3

    shorter = docs[0]
    shorter.chunks, shorter.status = shorter.chunks[:1], INDEX_PENDING  # reprocessed into fewer chunks
    docs[1].status = FAILED                                              # failed when reprocessed
    docs[2].status, docs[2].paths = SKIPPED, ["/other/place.txt"]        # seen under a new path
    indexer.write([shorter, docs[1], docs[2]])
    assert ids_in(client, settings.layout.documents) == sorted([shorter.id, docs[2].id])
    assert wos.chunk_id(shorter.id, 1) not in ids_in(client, settings.layout.chunks)
    assert not [c for c in ids_in(client, settings.layout.chunks) if c.startswith(docs[1].id)]
    paths = client.get(index=settings.layout.documents, id=docs[2].id)["_source"]["paths"]
    assert "/other/place.txt" in paths and len(paths) == 2


class _FlakyProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to osmem; the first bulk gets a 503, the second has its first item turned into a 429."""
    target = ""
    bulks = 0

    def do_GET(self):
        self._forward()

    def do_POST(self):
        self._forward()

    def do_PUT(self):
        self._forward()

    def do_HEAD(self):
        self._forward()

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        is_bulk = self.path.startswith("/_bulk")
        if is_bulk:
            type(self).bulks += 1
            if type(self).bulks == 1:
                return self._reply(503, b'{"error":"unavailable"}')
        req = urllib.request.Request(self.target + self.path, data=body or None, method=self.command,
                                     headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
        try:
            with urllib.request.urlopen(req) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        if is_bulk and type(self).bulks == 2:
            reply = json.loads(data)
            first = next(iter(reply["items"][0].values()))
            first.update(status=429, error={"type": "es_rejected_execution_exception", "reason": "queue full"})
            reply["errors"] = True
            data = json.dumps(reply).encode()
        self._reply(status, data)

    def _reply(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_bulk_retries_503_and_429_items(osmem, settings, embedder):
    _FlakyProxy.target, _FlakyProxy.bulks = osmem.url, 0
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        via_proxy = wos.OpenSearchSettings.from_env(f"http://127.0.0.1:{proxy.server_port}",
                                                    index=settings.index, backoff=0.01, retries=3)
        indexer = wos.OpenSearchIndexer(via_proxy, client=via_proxy.client())
        wos.ensure_indices(indexer.client, via_proxy.layout, embedder.dimension)
        docs = [make_doc(embedder, f"Receipt {i}. Paid by card.", category="receipt") for i in range(2)]
        outcome = indexer.write(docs)
        assert sorted(outcome.indexed) == sorted(d.id for d in docs) and not outcome.failed
        # Chunks: a 503, then one item rejected with 429, then that item again; then the document entries.
        assert _FlakyProxy.bulks == 4 and indexer.sender.retried == 1
    finally:
        proxy.shutdown()
    direct = settings.client()
    assert ids_in(direct, settings.layout.documents) == sorted(d.id for d in docs)


def test_unreachable_opensearch_fails_each_document_with_the_reason(embedder):
    dead = wos.OpenSearchSettings.from_env(f"http://u:pw@127.0.0.1:{_free_port()}", retries=1, backoff=0.01)
    outcome = wos.OpenSearchIndexer(dead).write([make_doc(embedder, "Letter. Dear Sir.")])
    (reason,) = outcome.failed.values()
    assert "unreachable" in reason and "pw" not in reason


# -- statuses in PostgreSQL and reindex ----------------------------------------------------------

def test_index_pending_until_indexed_then_reindex_backfills(pg_dsn, settings, client, embedder, capsys):
    from pipeline import reindex, status

    docs = [make_doc(embedder, f"Contract {i}. The parties agree.", category="contract") for i in range(3)]
    for d in docs:
        d.status = "pending"
    writer = PostgresWriter(pg_dsn, "run-os", index_after=True)
    store.start_run(pg_dsn, "run-os", "/in", {})
    writer.write_batch(docs)
    assert {d.status for d in docs} == {INDEX_PENDING}

    # OpenSearch down: every document stays index_pending, with stage `index` and the reason.
    dead = wos.OpenSearchSettings.from_env(f"http://127.0.0.1:{_free_port()}", retries=0)
    outcome = wos.OpenSearchIndexer(dead).write(docs)
    writer.record_indexing(outcome.indexed, outcome.failed)
    counts = store.run_counts(pg_dsn, "run-os")
    assert counts["index_pending"] == 3 and counts["completed"] == 0
    assert status.main(["run-os", "--pg-dsn", pg_dsn]) == 0
    shown = capsys.readouterr().out
    assert "waiting index    3" in shown and "index: OpenSearch unreachable" in shown
    # SkipCompleted does not skip them: they are not completed until both stores have them.
    assert writer.completed_ids([d.id for d in docs]) == set()

    assert reindex.main(["--pg-dsn", pg_dsn, "--opensearch-url", settings.url,
                         "--opensearch-index", settings.index]) == 0
    assert "indexed 3 documents" in capsys.readouterr().out
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT status, error_stage FROM documents").fetchall()
        inputs = conn.execute("SELECT DISTINCT status FROM inputs").fetchall()
    assert set(rows) == {(COMPLETED, None)} and inputs == [(COMPLETED,)]
    assert ids_in(client, settings.layout.documents) == sorted(d.id for d in docs)
    chunk = client.get(index=settings.layout.chunks, id=wos.chunk_id(docs[0].id, 0))["_source"]
    assert np.allclose(chunk["embedding"], docs[0].chunks[0].vector, atol=1e-6)  # vectors from PostgreSQL

    # A mapping change: rebuild into new indices, switch the aliases, drop the old ones.
    old = sorted(client.indices.get_alias(name=settings.layout.documents))
    result = reindex.reindex(pg_dsn, settings, new_index=True, delete_old=True)
    assert result["indexed"] == 3
    new = sorted(client.indices.get_alias(name=settings.layout.documents))
    assert new != old and not client.indices.exists(index=old[0])
    assert ids_in(client, settings.layout.documents) == sorted(d.id for d in docs)


# -- search --------------------------------------------------------------------------------------

def test_listing_matches_postgres_search(pg_dsn, settings, client, embedder):
    """An empty query with filters and pages: the same rows from OpenSearch as from PostgreSQL."""
    docs = [make_doc(embedder, "Invoice 1. Total due EUR 100.", fields={"currency": "EUR", "total_amount": 100.0}),
            make_doc(embedder, "Invoice 2. Total due USD 250.", fields={"currency": "USD"}),
            make_doc(embedder, "Invoice 3. Total due EUR 7.", fields={"currency": "EUR", "issue_date": "2023-05-01"}),
            make_doc(embedder, "Letter. Dear Sir, thank you.", category="letter")]
    for d in docs:
        d.status = "pending"
    writer = PostgresWriter(pg_dsn, "r", index_after=True)
    for d in docs:  # one at a time: distinct processed_at, so "newest first" is well defined
        writer.write_batch([d])
    wos.ensure_indices(client, settings.layout, embedder.dimension)
    with psycopg.connect(pg_dsn) as conn:
        stamps = {r[0]: (r[1].isoformat(), "r") for r in conn.execute("SELECT id, processed_at FROM documents")}
    outcome = wos.OpenSearchIndexer(settings, client=client).write(docs, stamps)
    writer.record_indexing(outcome.indexed, outcome.failed)
    client.indices.refresh(index=",".join(settings.layout.aliases))
    backend = sos.OpenSearchBackend(settings, client=client)
    cases = [dict(), dict(category="invoice"), dict(fields={"currency": "EUR"}),
             dict(fields={"total_amount": "100.0"}), dict(date_from="2024-01-01"), dict(date_to="2023-12-31"),
             dict(category="invoice", limit=1, offset=1), dict(category="letter", fields={"currency": "EUR"})]
    for case in cases:
        case = {"limit": 10, **case}
        expected = store.search(pg_dsn, "", None, **case)
        got = backend.search("", None, **case)
        assert [r["id"] for r in got] == [r["id"] for r in expected], case
        for mine, theirs in zip(got, expected):
            assert mine.keys() == theirs.keys()
            assert (mine["category"], mine["doc_date"], mine["fields"], mine["path"]) == (
                theirs["category"], theirs["doc_date"], theirs["fields"], theirs["path"])
    assert len(backend.search("", None, limit=10)) == 4


def test_web_page_and_api_list_from_opensearch_when_configured(pg_dsn, settings, client, embedder):
    """pipeline.serve with --opensearch-url: the page's search box and /api/search both read OpenSearch.
    One document is only in OpenSearch, one only in PostgreSQL: only the first may be listed."""
    from fastapi.testclient import TestClient

    from pipeline.serve import create_app

    only_opensearch = make_doc(embedder, "Invoice 77. Kept only in the search index.")
    only_postgres = make_doc(embedder, "Invoice 78. Kept only in the database.")
    only_postgres.status = "pending"
    PostgresWriter(pg_dsn, "r").write_batch([only_postgres])
    wos.ensure_indices(client, settings.layout, embedder.dimension)
    wos.OpenSearchIndexer(settings, client=client).write([only_opensearch])
    client.indices.refresh(index=",".join(settings.layout.aliases))
    with TestClient(create_app(pg_dsn, settings)) as http:
        page = http.get("/", params={"category": "invoice"})
        assert page.status_code == 200
        assert "Invoice 77" in page.text and "Invoice 78" not in page.text
        listed = http.get("/api/search", params={"category": "invoice"}).json()
        assert [r["id"] for r in listed["results"]] == [only_opensearch.id]
    with TestClient(create_app(pg_dsn)) as http:  # without OpenSearch: the database answers
        page = http.get("/", params={"category": "invoice"})
        assert "Invoice 78" in page.text and "Invoice 77" not in page.text


def test_word_ranking_runs_on_the_imitation(settings, client, embedder):
    """The BM25 half of the hybrid search (the k-NN half needs a real cluster)."""
    wos.ensure_indices(client, settings.layout, embedder.dimension)
    docs = [make_doc(embedder, "Service agreement. Termination with ninety days notice.", category="contract"),
            make_doc(embedder, "Invoice 9. Payment terms net 30 days.", fields={"currency": "EUR"}),
            make_doc(embedder, "Invoice 10. Payments are due on receipt.")]
    wos.OpenSearchIndexer(settings, client=client).write(docs)
    client.indices.refresh(index=",".join(settings.layout.aliases))
    filters = sos.filter_clauses()
    hits = client.search(index=settings.layout.documents, body=sos.text_body("payment terms", filters, 10))
    assert [h["_id"] for h in hits["hits"]["hits"]] == [docs[1].id]  # all words required
    hits = client.search(index=settings.layout.documents, body=sos.text_body("payment", filters, 10))
    assert sorted(h["_id"] for h in hits["hits"]["hits"]) == sorted([docs[1].id, docs[2].id])  # stemmed
    only_eur = sos.filter_clauses(fields={"currency": "EUR"})
    hits = client.search(index=settings.layout.documents, body=sos.text_body("payment", only_eur, 10))
    assert [h["_id"] for h in hits["hits"]["hits"]] == [docs[1].id]
    with pytest.raises(wos.OpenSearchError, match="knn"):  # the imitation's limit, reported in one line
        sos.OpenSearchBackend(settings, client=client).search("payment", embedder.embed(["payment"])[0])


def test_knn_bodies_follow_the_documented_shape():
    """Offline: OpenSearch's efficient k-NN filtering takes
    {"size": n, "query": {"knn": {FIELD: {"vector": [...], "k": k, "filter": {<query>}}}}}."""
    filters = sos.filter_clauses(category="invoice", date_from="2024-01-01", fields={"currency": "EUR"})
    body = sos.knn_body(np.array([0.5, -0.25], dtype=np.float32), filters, 40)
    assert set(body) == {"size", "query", "_source"} and body["size"] == 40
    (field, spec), = body["query"]["knn"].items()
    assert field == "embedding" and set(spec) == {"vector", "k", "filter"}
    assert spec["vector"] == [0.5, -0.25] and spec["k"] == 40
    assert spec["filter"] == {"bool": {"filter": [
        {"term": {"status": "completed"}}, {"term": {"category": "invoice"}},
        {"range": {"doc_date": {"gte": "2024-01-01"}}}, {"term": {"field_pairs": "currency=EUR"}}]}}
    json.dumps(body)  # plain JSON, no numpy values
    snippet = sos.snippet_body([0.1, 0.2], "abc")["query"]["knn"]["embedding"]
    assert snippet["k"] == 1 and snippet["filter"] == {"term": {"document_id": "abc"}}
    # The knn_vector mapping as documented: type, dimension, method {name, space_type, engine, parameters}.
    vector = wos.chunks_mapping(384)["properties"]["embedding"]
    assert vector == {"type": "knn_vector", "dimension": 384, "method": {
        "name": "hnsw", "engine": "lucene", "space_type": "cosinesimil",
        "parameters": {"m": 16, "ef_construction": 128}}}


def test_reciprocal_rank_fusion_matches_postgres_formula():
    fused = dict(sos.fuse(["a", "b", "c"], ["c", "a"]))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62) and fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert [d for d, _ in sos.fuse(["a", "b", "c"], ["c", "a"])] == ["a", "c", "b"]
    assert [d for d, _ in sos.fuse(["y"], ["x"])] == ["x", "y"]  # ties by id
    order, best = sos.rank_documents([{"_source": {"document_id": "d1", "text": "t1"}},
                                      {"_source": {"document_id": "d2", "text": "t2"}},
                                      {"_source": {"document_id": "d1", "text": "t3"}}], 10)
    assert order == ["d1", "d2"] and best == {"d1": "t1", "d2": "t2"}


# -- end to end ----------------------------------------------------------------------------------

def test_pipeline_run_into_postgres_and_opensearch_then_rerun(tmp_path, pg_dsn, settings, client):
    """pipeline.run (in-process FnApiRunner) into the real embedded PostgreSQL and the imitation."""
    from pipeline import run as run_module
    from tests import docs as samples

    folder = tmp_path / "in"
    samples.write(folder, "invoice.txt", samples.INVOICE_TEXT)
    samples.write(folder, "contract.txt", samples.CONTRACT_TEXT)
    samples.write(folder, "copy.txt", samples.CONTRACT_TEXT)
    samples.write(folder, "empty.txt", "")
    argv = ["--input", str(folder), "--pg-dsn", pg_dsn, "--runner=FnApiRunner", "--no-isolate-convert",
            "--opensearch-url", settings.url, "--opensearch-index", settings.index]
    first = run_module.run(argv + ["--run-id", "first"])
    assert first["completed"] == 2 and first["failed"] == 1 and first["index_pending"] == 0
    documents = ids_in(client, settings.layout.documents)
    chunks = ids_in(client, settings.layout.chunks)
    with psycopg.connect(pg_dsn) as conn:
        assert documents == sorted(r[0] for r in conn.execute("SELECT id FROM documents WHERE status = 'completed'"))
        assert len(chunks) == conn.execute(
            "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE d.status = 'completed'").fetchone()[0]
    from pipeline import status
    assert status.main(["first", "--verify", "--pg-dsn", pg_dsn]) == 0

    again = run_module.run(argv + ["--run-id", "again", "--reprocess"])
    assert again["completed"] == 2
    assert ids_in(client, settings.layout.documents) == documents
    assert ids_in(client, settings.layout.chunks) == chunks
    skipped = run_module.run(argv + ["--run-id", "skip"])
    assert skipped["skipped_unchanged"] == 2 and ids_in(client, settings.layout.documents) == documents


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
