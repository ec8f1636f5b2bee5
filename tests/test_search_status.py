"""Search, status and the HTTP API against the real embedded PostgreSQL and the real MiniLM model;
the API is checked over real HTTP (uvicorn on a loopback port)."""
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from pipeline import search as search_cli
from pipeline import status as status_cli
from pipeline import store
from transforms.embed import Embedder
from transforms.records import Document
from transforms.write_postgres import PostgresWriter

CORPUS = [
    ("invoice", "2024-03-15", "EUR", "Invoice INV-1 from Northwind for espresso machines and coffee grinders."),
    ("invoice", "2024-05-01", "USD", "Invoice INV-2 for cloud hosting, storage and bandwidth in April."),
    ("invoice", "2023-11-20", "EUR", "Invoice INV-3 for office chairs and standing desks."),
    ("contract", "2024-01-01", None, "Lease agreement for a warehouse in Rotterdam between two companies."),
    ("letter", "2024-02-10", None, "Dear customer, we are moving our bakery to a new address next month."),
    ("report", "2024-04-30", None, "Quarterly report: solar panel installations grew forty percent."),
    ("resume", None, None, "Curriculum vitae of a marine biologist who studied coral reefs."),
    ("receipt", "2024-03-16", "EUR", "Receipt from a bicycle shop: inner tube and brake pads, paid by card."),
]


@pytest.fixture(scope="module")
def store_dsn(pg_server, embedder):
    from pipeline.embedded import fresh_database

    dsn = fresh_database(pg_server, "search_tests")
    store.migrate(dsn)
    store.start_run(dsn, "r1", "/data", {})
    stage = Embedder(embedder, 200, 32, 10)
    docs = []
    for i, (category, date, currency, text) in enumerate(CORPUS):
        fields = {"currency": currency} if currency else {}
        if date:
            fields["issue_date" if category in ("invoice", "receipt") else "date"] = date
        doc = Document(id=f"doc{i}", paths=[f"/data/{i}.txt"], filename=f"{i}.txt", text=text, status="pending",
                       category=category, confidence=0.9, metadata={"title": text.split(":")[0][:40], "fields": fields})
        stage.chunk(doc)
        docs.append(doc)
    stage.embed_batch(docs)
    failed = Document(id="bad", paths=["/data/bad.pdf"], filename="bad.pdf").fail("convert", "encrypted PDF")
    PostgresWriter(dsn, "r1").write_batch(docs + [failed])
    store.finish_run(dsn, "r1", "completed", {})
    return dsn


def ids(results):
    return [r["id"] for r in results]


def test_known_answer_ranks_first(store_dsn, embedder):
    for query, expected in [("espresso machine invoice", "doc0"), ("coral reef biologist", "doc6"),
                            ("bakery relocation", "doc4"), ("renewable energy growth", "doc5")]:
        results = search_cli.run_search(store_dsn, query, embedder=lambda q: embedder.embed([q])[0])
        assert results[0]["id"] == expected, (query, ids(results))
        assert results[0]["snippet"] and results[0]["score"] > 0


def test_filters_are_exact(store_dsn, embedder):
    embed = lambda q: embedder.embed([q])[0]  # noqa: E731
    assert set(ids(search_cli.run_search(store_dsn, "invoice", category="invoice", embedder=embed))) == {"doc0", "doc1", "doc2"}
    assert ids(search_cli.run_search(store_dsn, "", category="invoice", fields={"currency": "USD"})) == ["doc1"]
    dated = search_cli.run_search(store_dsn, "", date_from="2024-03-01", date_to="2024-03-31")
    assert set(ids(dated)) == {"doc0", "doc7"}
    assert "bad" not in ids(search_cli.run_search(store_dsn, "", limit=100))  # failed documents are not results


def test_pagination_is_stable(store_dsn, embedder):
    embed = lambda q: embedder.embed([q])[0]  # noqa: E731
    full = ids(search_cli.run_search(store_dsn, "invoice for equipment", limit=6, embedder=embed))
    pages = ids(search_cli.run_search(store_dsn, "invoice for equipment", limit=3, embedder=embed)) + ids(
        search_cli.run_search(store_dsn, "invoice for equipment", limit=3, offset=3, embedder=embed))
    assert pages == full and len(set(full)) == 6
    with pytest.raises(ValueError, match="limit"):
        search_cli.run_search(store_dsn, "x", limit=1000)


def test_status_counts_add_up(store_dsn, capsys):
    s = store.run_status(store_dsn, "r1")
    assert s["paths_done"] == len(CORPUS) + 1
    assert s["completed"] + s["failed"] + s["skipped"] + s["duplicates"] == s["paths_done"]
    assert s["failures"][0]["stage"] == "convert" and s["failures"][0]["reason"] == "encrypted PDF"
    assert sum(s["by_category"].values()) == s["completed"]
    assert status_cli.main(["r1", "--pg-dsn", store_dsn]) == 0
    assert "1  convert: encrypted PDF" in capsys.readouterr().out
    assert status_cli.main(["--doc", "/data/3.txt", "--pg-dsn", store_dsn, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["category"] == "contract"


@pytest.fixture(scope="module")
def api(store_dsn):
    """The real HTTP API under uvicorn on a loopback port."""
    from tests.webserver import serve

    with serve(store_dsn) as url:
        yield url


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_http_api_answers_like_the_cli(api, store_dsn, embedder):
    status, body = get(f"{api}/api/search?" + urllib.parse.urlencode({"q": "espresso machine invoice", "limit": 3}))
    cli_results = search_cli.run_search(store_dsn, "espresso machine invoice", limit=3,
                                        embedder=lambda q: embedder.embed([q])[0])
    assert status == 200 and [r["id"] for r in body["results"]] == ids(cli_results)
    status, body = get(f"{api}/api/batch-status/r1")
    assert status == 200 and body["progress_percent"] == 100.0 and body["failed"] == 1
    status, body = get(f"{api}/api/status/doc3")
    assert status == 200 and body["category"] == "contract"
    status, body = get(f"{api}/api/status?path=/data/3.txt")
    assert status == 200 and body["id"] == "doc3"
    status, body = get(f"{api}/health")
    assert status == 200 and body["healthy"] is True
    status, spec = get(f"{api}/openapi.json")
    assert status == 200 and "/api/search" in spec["paths"]


@pytest.mark.parametrize("query, message", [
    ("limit=0", "greater than or equal to 1"), ("limit=500", "less than or equal to 100"),
    ("date_from=yesterday", "date"), ("field=nokey", "key=value"), ("offset=-1", "greater than or equal to 0"),
])
def test_bad_parameters_get_a_4xx_with_a_clear_message(api, query, message):
    status, body = get(f"{api}/api/search?q=x&{query}")
    assert 400 <= status < 500 and message in json.dumps(body)


def test_unknown_ids_are_404(api):
    assert get(f"{api}/api/status/nope")[0] == 404
    assert get(f"{api}/api/batch-status/nope")[0] == 404
