"""Users correct a document's category: the store functions, PATCH /api/documents/{id} and the
document page's form over real HTTP (uvicorn on a loopback port), pipeline.status and /metrics, and
the PostgreSQL writer (row by row and staged) keeping a corrected category when the document is
written again; all on the real embedded PostgreSQL. OpenSearch's copy is checked on osmem-server
(the in-memory imitation tests/test_opensearch.py uses)."""
from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline import status as status_cli
from pipeline import store
from pipeline.serve import category_names
from tests.test_write_postgres_staging import doc as make_doc
from tests.test_write_postgres_staging import snapshot
from tests.webserver import free_port, serve
from transforms.records import INDEX_PENDING, SKIPPED, Document
from transforms.write_postgres import PostgresWriter

CATEGORIES = category_names()


def write(dsn, docs, *, staged: bool, run_id="run-1", **kwargs):
    writer = PostgresWriter(dsn, run_id, **kwargs)
    writer.staged_min_batch = 1 if staged else 10 ** 9
    writer.write_batch(docs)
    writer.close()
    return docs


def row(dsn, doc_id):
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT category, confidence, status, attempts FROM documents WHERE id = %s",
                            (doc_id,)).fetchone()


@pytest.fixture
def dsn(pg_dsn):
    """A store with two processed invoices (a, b) and a failed document (f)."""
    failed = Document(id="f", paths=["/x/bad.pdf"], filename="bad.pdf").fail("convert", "corrupt PDF")
    write(pg_dsn, [make_doc("a", ["/x/a.pdf"]), make_doc("b", ["/x/b.pdf"]), failed], staged=False)
    return pg_dsn


def call(url, method="GET", body=None, headers=None, raw: bytes | None = None):
    """(status, parsed JSON or text) of one request; errors are answers too."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def post_form(url, fields: dict, headers=None):
    """A browser's form POST (urlencoded); urllib follows the 303 back to the page like a browser."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.url, err.read().decode()


# -- store ------------------------------------------------------------------------------------------

def test_correct_category_records_previous_once_and_sets_the_document(dsn):
    assert store.correction_counts(dsn) == {} and store.corrected_categories(dsn) == []
    first = store.correct_category(dsn, "a", "contract", "alice")
    assert (first["id"], first["category"], first["confidence"]) == ("a", "contract", 1.0)
    [c] = first["corrections"]
    assert (c["field"], c["value"], c["previous"], c["corrected_by"]) == ("category", "contract", "invoice", "alice")
    # Corrected again: the new value and who, but `previous` stays what the pipeline had given.
    second = store.correct_category(dsn, "a", "receipt", "bob")
    [c2] = second["corrections"]
    assert (c2["value"], c2["previous"], c2["corrected_by"]) == ("receipt", "invoice", "bob")
    assert c2["corrected_at"] >= c["corrected_at"]
    assert row(dsn, "a")[:2] == ("receipt", 1.0)
    assert store.correction_counts(dsn) == {"category": 1}
    [example] = store.corrected_categories(dsn)
    assert example["document_id"] == "a" and example["category"] == "receipt"
    assert example["text"] == "body text" and example["corrected_by"] == "bob" and example["corrected_at"]
    assert set(example) == {"document_id", "category", "text", "corrected_by", "corrected_at"}
    # The document's status and detail carry the corrections (API, page and pipeline.status show them).
    assert store.document_status(dsn, "a")["corrections"][0]["previous"] == "invoice"
    assert store.document_status(dsn, "b")["corrections"] == []


def test_correct_category_refuses_unknown_documents_and_nul(dsn):
    with pytest.raises(store.DocumentNotFound):
        store.correct_category(dsn, "nope", "invoice", "alice")
    with pytest.raises(store.DocumentNotFound):
        store.correct_category(dsn, "a\x00", "invoice", "alice")
    for category, by in (("inv\x00oice", "alice"), ("invoice", "al\x00ice"), ("", "alice"), ("invoice", "  ")):
        with pytest.raises(store.InvalidCorrection):
            store.correct_category(dsn, "a", category, by)
    assert store.correction_counts(dsn) == {} and row(dsn, "a")[:2] == ("invoice", 0.75)
    assert store.document_status(dsn, "a\x00") is None  # was a DataError (a 500 over HTTP)


# -- the writer keeps corrected values ----------------------------------------------------------------

@pytest.mark.parametrize("staged", [False, True], ids=["row-by-row", "staged"])
def test_a_corrected_document_written_again_keeps_its_category(dsn, staged):
    store.correct_category(dsn, "a", "contract", "alice")
    # Reprocessed (--reprocess, --retry-failed, a new version) with the classifier's category again,
    # together with an uncorrected document, as one batch.
    again = write(dsn, [make_doc("a", ["/x/a.pdf"], 1), make_doc("b", ["/x/b.pdf"], 1)], staged=staged, run_id="run-2")
    assert row(dsn, "a") == ("contract", 1.0, "completed", 2)
    assert row(dsn, "b") == ("invoice", 0.75, "completed", 2)
    # The Documents leaving the writer carry it too: the OpenSearch sink indexes those.
    assert [(d.id, d.category, d.confidence) for d in again] == [("a", "contract", 1.0), ("b", "invoice", 0.75)]
    # Same content seen under a new path, and processed again.
    write(dsn, [make_doc("a", ["/new/a.pdf"], 1), make_doc("c", ["/x/c.pdf"], 1)], staged=staged, run_id="run-3")
    assert row(dsn, "a")[:2] == ("contract", 1.0)
    # A skipped (unchanged) document keeps everything; only its paths grow.
    write(dsn, [Document(id="a", paths=["/other/a.pdf"], status=SKIPPED)], staged=staged, run_id="run-4")
    assert row(dsn, "a")[:2] == ("contract", 1.0)
    # Deleted and inserted again: corrections are kept by document id, so the insert takes it too.
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM documents WHERE id = 'a'")
    write(dsn, [make_doc("a", ["/x/a.pdf"], 1), make_doc("d", ["/x/d.pdf"], 1)], staged=staged, run_id="run-5")
    assert row(dsn, "a") == ("contract", 1.0, "completed", 1)
    assert store.document_status(dsn, "a")["corrections"][0]["previous"] == "invoice"


def test_both_write_paths_write_identical_rows_with_corrections(pg_server, pg_dsn):
    from pipeline.embedded import fresh_database

    other = fresh_database(pg_server, "t_corrections_row_by_row")
    store.migrate(other)
    for target, staged in ((pg_dsn, True), (other, False)):
        write(target, [make_doc("a", ["/x/a.pdf"]), make_doc("b", ["/x/b.pdf"])], staged=staged, run_id="run-1")
        store.correct_category(target, "a", "letter", "alice")
        with psycopg.connect(target) as conn:  # corrected before this document ever reached the store
            conn.execute("INSERT INTO corrections (document_id, field, value, previous, corrected_by) "
                         "VALUES ('c', 'category', '\"report\"', NULL, 'bob')")
        write(target, [make_doc("a", ["/x/a.pdf"], 1), make_doc("b", ["/y/b.pdf"], 3),
                       make_doc("c", ["/x/c.pdf"])], staged=staged, run_id="run-2")
    staged_rows, row_rows = snapshot(pg_dsn), snapshot(other)
    assert staged_rows == row_rows
    by_id = {d[0]: d for d in staged_rows[0]}
    assert (by_id["a"][7], by_id["a"][8]) == ("letter", 1.0)
    assert (by_id["b"][7], by_id["b"][8]) == ("invoice", 0.75)
    assert (by_id["c"][7], by_id["c"][8]) == ("report", 1.0)


# -- HTTP API -------------------------------------------------------------------------------------

@pytest.fixture
def api(dsn):
    with serve(dsn) as url:
        yield url


def test_patch_records_who_when_and_previous(api, dsn):
    status, body = call(f"{api}/api/documents/a", "PATCH", {"category": "contract", "corrected_by": "alice"})
    assert status == 200, body
    assert (body["id"], body["category"], body["confidence"], body["status"]) == ("a", "contract", 1.0, "completed")
    [c] = body["corrections"]
    assert (c["field"], c["value"], c["previous"], c["corrected_by"]) == ("category", "contract", "invoice", "alice")
    assert c["corrected_at"].startswith(time.strftime("%Y-"))
    # Who: the body, else the X-User header, else "api".
    status, body = call(f"{api}/api/documents/a", "PATCH", {"category": "other"}, headers={"X-User": "bob"})
    assert status == 200 and body["corrections"][0]["corrected_by"] == "bob"
    assert body["corrections"][0]["previous"] == "invoice" and body["category"] == "other"
    status, body = call(f"{api}/api/documents/b", "PATCH", {"category": "receipt"})
    assert status == 200 and body["corrections"][0]["corrected_by"] == "api"
    # The GET views show it.
    status, detail = call(f"{api}/api/documents/a")
    assert status == 200 and detail["category"] == "other" and detail["corrections"][0]["corrected_by"] == "bob"
    status, summary = call(f"{api}/api/status/a")
    assert summary["corrections"][0]["value"] == "other"
    assert store.correction_counts(dsn) == {"category": 2}


def test_patch_refusals_are_4xx_with_clear_messages(api, dsn):
    status, body = call(f"{api}/api/documents/nope", "PATCH", {"category": "invoice"})
    assert status == 404 and "nope" in body["detail"]
    status, body = call(f"{api}/api/documents/a", "PATCH", {"category": "banana"})
    assert status == 422
    message = json.dumps(body)
    assert "category" in message and all(f"'{c}'" in message for c in CATEGORIES), message  # lists the valid ones
    for bad in ({"category": "invoice", "corrected_by": "al\x00ice"}, {"category": "inv\x00oice"},
                {"category": "invoice", "corrected_by": ""}, {"category": "invoice", "extra": 1}, {},
                {"category": "invoice", "corrected_by": "  "}):
        status, body = call(f"{api}/api/documents/a", "PATCH", bad)
        assert status == 422, (bad, status, body)
        assert isinstance(body["detail"], list) and body["detail"][0]["msg"], body  # FastAPI's error shape
    assert call(f"{api}/api/documents/a", "PATCH", raw=b"{not json")[0] == 422
    # A NUL in the path is a declared 422 (the path parameter's schema excludes it), as on every endpoint.
    assert call(f"{api}/api/documents/a%00", "PATCH", {"category": "invoice"})[0] == 422
    assert call(f"{api}/api/documents/a%00")[0] == 422  # the GET too (was a 500)
    assert call(f"{api}/api/status/a%00")[0] == 422
    assert store.correction_counts(dsn) == {} and row(dsn, "a")[:2] == ("invoice", 0.75)


def test_patch_needs_the_token_when_one_is_set(api, monkeypatch):
    monkeypatch.setenv("DOCPIPE_API_TOKEN", "s3cret")
    assert call(f"{api}/api/documents/a", "PATCH", {"category": "letter"})[0] == 401
    assert call(f"{api}/api/documents/a", "PATCH", {"category": "letter"},
                headers={"Authorization": "Bearer wrong"})[0] == 401
    status, body = call(f"{api}/api/documents/a", "PATCH", {"category": "letter"},
                        headers={"Authorization": "Bearer s3cret"})
    assert status == 200 and body["category"] == "letter"


def test_openapi_declares_the_patch(api):
    status, spec = call(f"{api}/openapi.json")
    operation = spec["paths"]["/api/documents/{doc_id}"]["patch"]
    assert {"200", "401", "404", "422"} <= set(operation["responses"])
    for code in ("200", "401", "404", "422"):
        assert operation["responses"][code]["content"]["application/json"]["schema"], code
    body = spec["components"]["schemas"][operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                                         .rsplit("/", 1)[-1]]
    category = body["properties"]["category"]   # optional: one of the categories, or null
    assert [s["enum"] for s in category.get("anyOf", [category]) if "enum" in s] == [CATEGORIES]
    assert "other" in CATEGORIES and "fields" in body["properties"]
    # A method the path does not have: 405, and Allow names both of its routes' methods.
    request = urllib.request.Request(f"{api}/api/documents/a", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 405 and {"GET", "PATCH"} <= set(refused.value.headers["Allow"].split(", "))
    # A body that is not UTF-8: the declared 400.
    status, body = call(f"{api}/api/documents/a", "PATCH", raw=b'{"category": "\xff"}')
    assert status in (400, 422) and str(status) in operation["responses"]


def test_serve_categories_option(tmp_path, dsn):
    from pipeline.serve import create_app

    path = tmp_path / "cats.yaml"
    path.write_text("memo: A short internal note.\nquote: A price offer.\n")
    assert category_names(str(path)) == ["memo", "quote", "other"]
    with pytest.raises(ValueError, match="--categories"):
        category_names(str(tmp_path / "missing.yaml"))
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(dsn, categories=category_names(str(path))),
                                           host="127.0.0.1", port=port, log_level="error"))
    with _running(server):
        url = f"http://127.0.0.1:{port}"
        assert call(f"{url}/api/documents/a", "PATCH", {"category": "invoice"})[0] == 422  # not configured here
        assert call(f"{url}/api/documents/a", "PATCH", {"category": "memo"})[1]["category"] == "memo"


@contextlib.contextmanager
def _running(server):
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


# -- web page -------------------------------------------------------------------------------------

def test_document_page_form_corrects_without_javascript(api, dsn):
    status, page = call(f"{api}/documents/a")
    assert status == 200 and 'action="/documents/a/category"' in page and 'id="correct-category"' in page
    assert all(f'<option value="{c}"' in page for c in CATEGORIES) and "Corrected by" not in page
    status, url, page = post_form(f"{api}/documents/a/category", {"category": "contract", "corrected_by": "carol"})
    assert status == 200 and url.endswith("/documents/a?corrected=1#category")
    assert "Category corrected." in page and 'id="category-badge">contract<' in page
    assert "Corrected by <strong>carol</strong> on" in page and "(was invoice)" in page
    assert '<option value="contract" selected>' in page
    assert row(dsn, "a")[:2] == ("contract", 1.0)
    # Without a name: the X-User header a proxy may set, else "web".
    post_form(f"{api}/documents/b/category", {"category": "letter"})
    assert store.document_status(dsn, "b")["corrections"][0]["corrected_by"] == "web"
    # The search page marks corrected results.
    status, listing = call(f"{api}/?q=")
    assert status == 200 and listing.count('class="badge corrected"') == 2


def test_document_page_form_refusals(api, dsn, monkeypatch):
    status, _, page = post_form(f"{api}/documents/a/category", {"category": "banana"})
    assert status == 422 and "Unknown category" in page and "invoice" in page
    status, _, page = post_form(f"{api}/documents/a/category", {"category": "letter", "corrected_by": "x\x00y"})
    assert status == 422 and "NUL" in page
    assert post_form(f"{api}/documents/nope/category", {"category": "letter"})[0] == 404
    # A form posted from another site (CSRF) is refused, token or not.
    status, _, page = post_form(f"{api}/documents/a/category", {"category": "letter"},
                                headers={"Origin": "http://evil.example"})
    assert status == 403
    assert post_form(f"{api}/documents/a/category", {"category": "letter"},
                     headers={"Origin": api})[0] == 200
    assert row(dsn, "a")[0] == "letter"
    # With a token, the form is protected like the pages: no cookie, no correction.
    monkeypatch.setenv("DOCPIPE_API_TOKEN", "s3cret")
    status, url, page = post_form(f"{api}/documents/a/category", {"category": "report"})
    assert "/login" in url and row(dsn, "a")[0] == "letter"
    status, url, page = post_form(f"{api}/documents/a/category", {"category": "report"},
                                  headers={"Cookie": "docpipe_token=s3cret"})
    assert status == 200 and row(dsn, "a")[0] == "report"


# -- status and metrics ---------------------------------------------------------------------------

def test_status_and_metrics_count_corrections(api, dsn, capsys):
    assert status_cli.main(["--pg-dsn", dsn]) == 0
    assert "Corrections: 0 categories" in capsys.readouterr().out
    with urllib.request.urlopen(f"{api}/metrics", timeout=30) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    assert [(s.labels, s.value) for s in families["docpipe_corrections"].samples] == [({"field": "category"}, 0)]
    store.correct_category(dsn, "a", "contract", "alice")
    store.correct_category(dsn, "b", "report", "bob")
    store.correct_category(dsn, "b", "letter", "carol")
    assert status_cli.main(["--pg-dsn", dsn]) == 0
    assert "Corrections: 2 categories (used as labelled examples by the next run's classifier)" in capsys.readouterr().out
    assert status_cli.main(["--doc", "b", "--pg-dsn", dsn]) == 0
    out = capsys.readouterr().out
    assert "category      letter (confidence 1.00)" in out and "corrected     by carol at " in out and "(was invoice)" in out
    with urllib.request.urlopen(f"{api}/metrics", timeout=30) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    assert [(s.labels, s.value) for s in families["docpipe_corrections"].samples] == [({"field": "category"}, 2)]


# -- OpenSearch -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def osmem():
    from osmem_server import OsmemServer

    server = OsmemServer.start(japanese=False, addr="127.0.0.1:0")
    yield server
    server.close()


def test_corrections_reach_opensearch(pg_dsn, osmem, embedder):
    """A correction through the API updates OpenSearch's document and chunks (partial updates); a
    corrected document written again is indexed with the corrected category."""
    import uvicorn

    from pipeline.serve import create_app
    from transforms import write_opensearch as wos
    from transforms.embed import Embedder

    settings = wos.OpenSearchSettings.from_env(osmem.url, index="corrections", backoff=0.01, retries=2)
    stage = Embedder(embedder, 200, 32, 10)
    docs = []
    for doc_id, text in (("a", " ".join(f"Invoice 7, line {i}: espresso machine model E{i} delivered." for i in range(40))), ("b", "Dear Sir, thank you.")):
        d = Document(id=doc_id, paths=[f"/x/{doc_id}.txt"], filename=f"{doc_id}.txt", text=text, status="pending",
                     category="invoice", confidence=0.8, metadata={"title": doc_id, "fields": {}})
        stage.chunk(d)
        docs.append(d)
    stage.embed_batch(docs)
    writer = PostgresWriter(pg_dsn, "run-1", index_after=True)
    indexer = wos.OpenSearchIndexer(settings, "run-1")
    client = settings.client()

    def index(batch):
        writer.write_batch(batch)
        assert all(d.status == INDEX_PENDING for d in batch)
        outcome = indexer.write(batch)
        writer.record_indexing(outcome.indexed, outcome.failed, outcome.missing)
        assert sorted(outcome.indexed) == sorted(d.id for d in batch), outcome
        client.indices.refresh(index=settings.layout.documents)
        client.indices.refresh(index=settings.layout.chunks)

    def in_opensearch(doc_id):
        source = client.get(index=settings.layout.documents, id=doc_id)["_source"]
        hits = client.search(index=settings.layout.chunks, body={
            "size": 100, "query": {"term": {"document_id": doc_id}}})["hits"]["hits"]
        return source["category"], source["confidence"], sorted({h["_source"]["category"] for h in hits}), len(hits)

    try:
        wos.ensure_indices(client, settings.layout, 384)
        index(docs)
        chunks_a = in_opensearch("a")[3]
        assert chunks_a > 1 and in_opensearch("a")[:3] == ("invoice", 0.8, ["invoice"])
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(pg_dsn, opensearch=settings), host="127.0.0.1",
                                               port=port, log_level="error"))
        with _running(server):
            status, body = call(f"http://127.0.0.1:{port}/api/documents/a", "PATCH", {"category": "contract"})
        assert status == 200 and body["opensearch"] == "updated", body
        client.indices.refresh(index=settings.layout.documents)
        client.indices.refresh(index=settings.layout.chunks)
        assert in_opensearch("a") == ("contract", 1.0, ["contract"], chunks_a)
        # Reprocessed: the pipeline's classifier says invoice again, both stores keep the correction.
        rerun = [Document(id="a", paths=["/x/a.txt"], filename="a.txt", text=docs[0].text, status="pending",
                          category="invoice", confidence=0.8, metadata={"title": "a", "fields": {}})]
        stage.chunk(rerun[0])
        stage.embed_batch(rerun)
        index(rerun)
        assert in_opensearch("a")[:3] == ("contract", 1.0, ["contract"]) and row(pg_dsn, "a")[:2] == ("contract", 1.0)
        assert wos.update_category(settings, "zzz", "letter") == "not indexed"
    finally:
        client.close()
        indexer.close()
        writer.close()


# -- browser (optional: skipped where Chromium is not installed) ----------------------------------------

def test_browser_corrects_the_category(api, dsn):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.webserver import chromium, screenshot

    with chromium() as browser:
        browser.get(f"{api}/documents/a")
        Select(browser.find_element(By.ID, "correct-category")).select_by_value("contract")
        browser.find_element(By.ID, "corrected-by").send_keys("dana")
        browser.find_element(By.CSS_SELECTOR, "form.correct button").click()
        WebDriverWait(browser, 30).until(lambda b: "corrected=1" in b.current_url)
        assert browser.find_element(By.ID, "category-badge").text == "contract"
        assert "Corrected by dana" in browser.find_element(By.ID, "correction").text
        assert "(was invoice)" in browser.find_element(By.ID, "correction").text
        screenshot(browser, "document-corrected.png")
    assert row(dsn, "a")[:2] == ("contract", 1.0)


# -- extracted fields ---------------------------------------------------------------------------

def metadata(dsn, doc_id):
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT metadata FROM documents WHERE id = %s", (doc_id,)).fetchone()[0]


def test_correct_fields_records_previous_and_marks_the_source(dsn):
    answer = store.correct_fields(dsn, "a", {"total_amount": 1190.0, "issuer": " Muster GmbH "}, "alice")
    assert answer["fields"] == {"n": 1, "total_amount": 1190.0, "issuer": "Muster GmbH"}
    saved = metadata(dsn, "a")
    assert saved["fields"]["issuer"] == "Muster GmbH" and saved["title"] == "T a"   # the rest is untouched
    assert saved["field_sources"]["issuer"] == {"source": "correction", "confidence": 1.0}
    # Corrected again: the value changes, `previous` stays what the pipeline had given.
    store.correct_fields(dsn, "a", {"n": 2}, "bob")
    store.correct_fields(dsn, "a", {"n": 3}, "carol")
    by_field = {c["field"]: c for c in store.document_status(dsn, "a")["corrections"]}
    assert (by_field["fields.n"]["value"], by_field["fields.n"]["previous"]) == (3, 1)
    assert by_field["fields.n"]["corrected_by"] == "carol"
    assert store.correction_counts(dsn) == {"fields.issuer": 1, "fields.n": 1, "fields.total_amount": 1}


@pytest.mark.parametrize("fields", [{}, {"Total": 1}, {"a b": 1}, {"x": "a\x00b"}, {"x": {"nested": 1}},
                                    {"x": [1, 2]}, {"x": "y" * 1001}])
def test_correct_fields_refuses_bad_names_and_values(dsn, fields):
    with pytest.raises(store.InvalidCorrection):
        store.correct_fields(dsn, "a", fields, "alice")
    assert store.correction_counts(dsn) == {}


@pytest.mark.parametrize("staged", [False, True], ids=["row-by-row", "staged"])
def test_a_corrected_field_survives_the_document_being_written_again(dsn, staged):
    store.correct_fields(dsn, "a", {"issuer": "Muster GmbH"}, "alice")
    again = write(dsn, [make_doc("a", ["/x/a.pdf"], 1), make_doc("b", ["/x/b.pdf"], 1)], staged=staged, run_id="run-2")
    saved = metadata(dsn, "a")
    assert saved["fields"] == {"n": 1, "issuer": "Muster GmbH"}
    assert saved["field_sources"] == {"issuer": {"source": "correction", "confidence": 1.0}}
    assert metadata(dsn, "b")["fields"] == {"n": 1} and "field_sources" not in metadata(dsn, "b")
    # What leaves the writer for OpenSearch carries the correction too.
    assert again[0].metadata["fields"]["issuer"] == "Muster GmbH"
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM documents WHERE id = 'a'")
    write(dsn, [make_doc("a", ["/x/a.pdf"], 1)], staged=staged, run_id="run-3")
    assert metadata(dsn, "a")["fields"]["issuer"] == "Muster GmbH"


def test_patch_corrects_fields_and_category_together(api, dsn):
    status, body = call(f"{api}/api/documents/a", "PATCH",
                        {"fields": {"total_amount": 99.5, "parties": ["A", "B"]}, "category": "contract"},
                        headers={"X-User": "dora"})
    assert status == 200, body
    assert body["category"] == "contract" and body["fields"]["total_amount"] == 99.5
    assert {c["field"] for c in body["corrections"]} == {"category", "fields.total_amount", "fields.parties"}
    assert all(c["corrected_by"] == "dora" for c in body["corrections"])
    status, body = call(f"{api}/api/documents/a", "PATCH", {"fields": {"Bad Name": 1}})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "fields"], body
    assert call(f"{api}/api/documents/nope", "PATCH", {"fields": {"x": 1}})[0] == 404


def test_document_page_shows_field_sources_and_corrects_fields(api, dsn):
    store.correct_fields(dsn, "b", {"parties": ["Acme, Inc.", "Globex"], "total_amount": 10.0}, "seed")
    status, page = call(f"{api}/documents/b")
    assert status == 200 and 'action="/documents/b/fields"' in page
    assert 'name="field.parties" value="Acme, Inc.; Globex"' in page and "correction (1.00)" in page
    # Only the changed boxes are recorded, typed like the field was: a number, a list, a cleared value.
    status, url, page = post_form(f"{api}/documents/b/fields", {
        "field.n": "1", "field.parties": "Acme, Inc.; Initech", "field.total_amount": "1,250.50",
        "corrected_by": "erin"})
    assert status == 200 and url.endswith("/documents/b?fields_corrected=1#meta-heading"), url
    assert "Fields corrected." in page
    fields = metadata(dsn, "b")["fields"]
    assert fields == {"n": 1, "parties": ["Acme, Inc.", "Initech"], "total_amount": 1250.5}
    by_field = {c["field"]: c for c in store.document_status(dsn, "b")["corrections"]}
    assert "fields.n" not in by_field and by_field["fields.parties"]["corrected_by"] == "erin"
    post_form(f"{api}/documents/b/fields", {"field.total_amount": ""})
    assert metadata(dsn, "b")["fields"]["total_amount"] is None
    status, _, page = post_form(f"{api}/documents/b/fields", {"field.n": "x\x00y"})
    assert status == 422 and "NUL" in page
    assert post_form(f"{api}/documents/b/fields", {"field.n": "2"}, headers={"Origin": "http://evil.example"})[0] == 403
